package gateway

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn wraps each accepted connection with what go-smtp leaves to the
// server: smtpd_timeout on reads and writes, and the service's session
// slot, given back when the connection closes. Everything about the
// dialogue is the session's (session.go).
//
// smtpd_timeout bounds each read, so a message may take as long as it
// keeps arriving; with smtpd_per_request_deadline (on under stress) it
// bounds a whole request instead, a command line or the message content,
// and content earns one second per smtpd_min_data_rate bytes, never more
// than smtpd_timeout ahead: a client that trickles bytes is cut.
type conn struct {
	net.Conn
	svc    *service
	exempt bool // in smtpd_client_event_limit_exceptions: not counted nor limited
	once   sync.Once
	raw    syscall.RawConn // nil when the socket cannot be asked (not TCP)
	readBy atomic.Int64    // the read deadline in force, Unix nanoseconds

	// Owned by the session's goroutine: the current request's deadline
	// (zero until its first read) and whether it is message content.
	request time.Time
	content bool
}

func newConn(nc net.Conn, svc *service, exempt bool) *conn {
	c := &conn{Conn: nc, svc: svc, exempt: exempt}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// remoteAddr is the client's address and port (IPv4-mapped addresses
// unmapped).
func remoteAddr(nc net.Conn) (netip.Addr, int) { return addrPort(nc.RemoteAddr()) }

// addrPort is a socket address as an address and a port.
func addrPort(a net.Addr) (netip.Addr, int) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return ap.Addr().Unmap(), int(ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap(), int(ap.Port())
}

func (c *conn) Read(p []byte) (int, error) {
	lim := c.svc.limits()
	now := time.Now()
	by := now.Add(lim.timeout)
	if lim.deadline {
		if c.request.IsZero() {
			c.request = by
		}
		by = c.request
	}
	c.readBy.Store(by.UnixNano())
	c.Conn.SetReadDeadline(by)
	n, err := c.Conn.Read(p)
	if lim.deadline && c.content && n > 0 {
		earned := c.request.Add(time.Duration(n) * time.Second / time.Duration(lim.minDataRate))
		if most := time.Now().Add(lim.timeout); earned.After(most) {
			earned = most
		}
		c.request = earned
	}
	return n, err
}

// beginRequest starts the time of a request: the next command line, or
// message content.
func (c *conn) beginRequest(content bool) {
	c.request, c.content = time.Time{}, content
}

// shortenRead brings a pending read's deadline forward to by, when later.
func (c *conn) shortenRead(by time.Time) {
	if c.readBy.Load() > by.UnixNano() {
		c.readBy.Store(by.UnixNano())
		c.Conn.SetReadDeadline(by)
	}
}

func (c *conn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.svc.limits().timeout))
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.svc.load.give(c)
		c.svc.metrics.Sessions.WithLabelValues(c.svc.name).Dec()
	})
	return err
}

// peek returns up to n bytes the client has sent that are still in the
// kernel's socket buffer, without consuming them (Postfix's peekfd): with
// what go-smtp has buffered, it tells whether the client spoke ahead of a
// reply. The common answer, nothing, costs one ioctl and no allocation.
func (c *conn) peek(n int) []byte {
	if c.raw == nil {
		return nil
	}
	var buf []byte
	c.raw.Control(func(fd uintptr) {
		// TIOCINQ is SIOCINQ (FIONREAD) for a socket: bytes not yet read.
		if k, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err != nil || k <= 0 {
			return
		}
		buf = make([]byte, n)
		got, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err != nil {
			got = 0
		}
		buf = buf[:got]
	})
	return buf
}
