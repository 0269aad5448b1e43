package gateway

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// Behind a load balancer (smtpd_upstream_proxy_protocol = haproxy) every
// connection starts with a PROXY protocol header, v1 or v2, naming the
// real client; everything after it (the client's address in restrictions,
// logs, anvil counts, XCLIENT checks) sees that client, as with Postfix.
//
// Headers are read off the accept loop, each connection in its own
// goroutine bounded by smtpd_upstream_proxy_timeout, so one slow balancer
// connection does not hold up the others; at most the service's session
// limit wait for their header at once.

// proxyAccept is one accepted connection whose header has been read.
type proxyAccept struct {
	nc  net.Conn
	err error
}

// proxyListener reads PROXY headers for a listener: a goroutine accepts
// raw connections and reads their headers, and Accept takes the finished
// ones from ready.
type proxyListener struct {
	start  sync.Once
	ready  chan proxyAccept
	closed chan struct{}
	close  sync.Once
}

func newProxyListener() *proxyListener {
	return &proxyListener{ready: make(chan proxyAccept), closed: make(chan struct{})}
}

// acceptProxied is Accept with the PROXY protocol. The reading starts at
// the first call, when the service's context is set.
func (l *listener) acceptProxied() (net.Conn, error) {
	p := l.proxy
	p.start.Do(func() { go l.proxyLoop() })
	select {
	case pa := <-p.ready:
		return pa.nc, pa.err
	case <-p.closed:
		return nil, net.ErrClosed
	}
}

func (l *listener) proxyLoop() {
	p := l.proxy
	pending := make(chan struct{}, max(l.svc.Load().load.max, 1))
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			select {
			case p.ready <- proxyAccept{err: err}:
			case <-p.closed:
			}
			return
		}
		pending <- struct{}{}
		go func() {
			pc, err := l.readProxyHeader(nc)
			<-pending
			if err != nil {
				l.proxyFailed(nc, err)
				return
			}
			select {
			case p.ready <- proxyAccept{nc: pc}:
			case <-p.closed:
				nc.Close()
			}
		}()
	}
}

// readProxyHeader reads nc's PROXY header within the timeout. A v2 LOCAL
// header (a balancer's health check) keeps the socket's own addresses; a
// header that names no TCP client (v1 "PROXY UNKNOWN") is refused, as
// Postfix refuses it, since it would sidestep address-based access
// control. The error is worded as Postfix's haproxy_srvr words the cause.
func (l *listener) readProxyHeader(nc net.Conn) (net.Conn, error) {
	start, timeout := time.Now(), l.svc.Load().proxyTimeout
	pc := proxyproto.NewConn(nc, proxyproto.SetReadHeaderTimeout(timeout),
		proxyproto.ValidateHeader(tcpClientOnly))
	_, err := pc.Read(nil)
	var ne net.Error
	switch {
	case err == nil:
		return pc, nil
	case errors.As(err, &ne) && ne.Timeout(),
		// go-proxyproto reports a timeout as "no header".
		errors.Is(err, proxyproto.ErrNoProxyProtocol) && time.Since(start) >= timeout:
		return nil, errors.New("timeout error")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("EOF")
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return nil, errors.New("unrecognized protocol header")
	case errors.Is(err, errProxyNotTCP1), errors.Is(err, errProxyNotTCP2):
		return nil, err
	}
	return nil, errors.New(strings.TrimPrefix(err.Error(), "proxyproto: "))
}

// proxyFailed answers a connection whose header is missing or bad as
// Postfix's smtpd does: the warning, then 421 and hang up.
func (l *listener) proxyFailed(nc net.Conn, err error) {
	defer nc.Close()
	svc := l.svc.Load()
	addr, port := remoteAddr(nc)
	client := clientInfo{addr: addr, port: port, logPort: svc.clientPortLogging}
	client.name, _, _, _ = svc.lookupPeer(svc.ctx, addr)
	svc.log.Logf("smtpd", "warning: haproxy read: %v", err)
	svc.log.Logf("smtpd", "connect from %s", client)
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte("421 4.3.0 " + svc.hostname + " Server local error\r\n"))
	svc.log.Logf("smtpd", "disconnect from %s commands=0/0", client)
}

func tcpClientOnly(h *proxyproto.Header) error {
	switch {
	case h.Version == 1 && h.TransportProtocol == proxyproto.UNSPEC:
		return errProxyNotTCP1 // go-proxyproto makes UNKNOWN a LOCAL command
	case h.Command.IsLocal(), h.TransportProtocol == proxyproto.TCPv4, h.TransportProtocol == proxyproto.TCPv6:
		return nil
	case h.Version == 1:
		return errProxyNotTCP1
	}
	return errProxyNotTCP2
}

var (
	errProxyNotTCP1 = errors.New("bad or missing protocol type")
	errProxyNotTCP2 = errors.New("unsupported network protocol")
)
