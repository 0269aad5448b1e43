package gateway

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// listener accepts one service socket's connections within the service's
// load (below). One connection too many is told "421 4.3.2 All server
// ports are busy" (postscreen's text) and closed, where Postfix's smtpd
// would just not accept it. Accept never fails for a refused client, since
// an error from Accept stops go-smtp's Serve.
type listener struct {
	net.Listener
	// svc is the service's current runtime: a reload swaps it, and each
	// connection keeps the one it was accepted with (conn.svc).
	svc   atomic.Pointer[service]
	proxy *proxyListener // with the PROXY protocol (proxy.go), else nil
}

func newListener(nl net.Listener, s *service) *listener {
	l := &listener{Listener: nl}
	l.svc.Store(s)
	if s.proxyTimeout > 0 {
		l.proxy = newProxyListener()
	}
	return l
}

func (l *listener) Close() error {
	if l.proxy != nil {
		l.proxy.close.Do(func() { close(l.proxy.closed) })
	}
	return l.Listener.Close()
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		var nc net.Conn
		var err error
		if l.proxy != nil {
			nc, err = l.acceptProxied()
		} else {
			nc, err = l.Listener.Accept()
		}
		if err != nil {
			return nil, err
		}
		addr, _ := remoteAddr(nc)
		svc := l.svc.Load()
		exempt := svc.matchClient(svc.ctx, svc.eventLimitExceptions, addr)
		if entered := svc.load.take(exempt); entered != takeRefused {
			c := newConn(nc, svc, exempt)
			svc.load.track(c)
			svc.metrics.Connections.WithLabelValues(svc.name).Inc()
			svc.metrics.Sessions.WithLabelValues(svc.name).Inc()
			if entered == takeStress {
				svc.stressBegins()
			}
			return c, nil
		}
		go l.refuse(nc)
	}
}

func (l *listener) refuse(nc net.Conn) {
	addr, _ := remoteAddr(nc)
	svc := l.svc.Load()
	svc.log.Logf("smtpd", "NOQUEUE: reject: CONNECT from unknown[%s]: all server ports busy", addr)
	svc.metrics.Action("reject", "CONNECT", "421 4.3.2 All server ports are busy")
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte("421 4.3.2 All server ports are busy\r\n"))
	nc.Close()
}

// load is one service's sessions, shared by all its sockets: at most max
// at once (master.cf maxproc, else default_process_limit), the last
// reserved of them only for clients in smtpd_client_event_limit_exceptions,
// so a server full of outside connections still serves mynetworks. When
// the sessions reach stressAt the service is under stress, and stays so
// until 1000 s after they last did (Postfix's master keeps starting
// stress-mode smtpd processes for that long).
type load struct {
	mu       sync.Mutex
	inUse    int
	max      int
	reserved int
	stressAt int
	conns    map[*conn]struct{} // the sessions, to cut idle ones short under stress
	// stressUntil (Unix nanoseconds) is read on every socket read, so
	// without the lock.
	stressUntil atomic.Int64
}

// stressHold is how long stress lasts after the sessions last reached
// stressAt.
const stressHold = 1000 * time.Second

// newLoad keeps reserved slots (at most a tenth of max, so small services
// are not starved) and puts the service under stress at four fifths of
// what outside clients may use.
func newLoad(limit, reserved int) *load {
	reserved = min(reserved, limit/10)
	return &load{max: limit, reserved: reserved, stressAt: max(1, (limit-reserved)*4/5), conns: map[*conn]struct{}{}}
}

type takeResult int

const (
	takeRefused takeResult = iota
	takeOK
	takeStress // taken, and the service has just come under stress
)

// take claims a session slot for a client; exempt clients may use the
// reserved ones.
func (l *load) take(exempt bool) takeResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.max - l.reserved
	if exempt {
		limit = l.max
	}
	if l.inUse >= limit {
		return takeRefused
	}
	l.inUse++
	if l.inUse < l.stressAt {
		return takeOK
	}
	now := time.Now()
	was := l.stressed()
	l.stressUntil.Store(now.Add(stressHold).UnixNano())
	if was {
		return takeOK
	}
	return takeStress
}

func (l *load) track(c *conn) {
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
}

// give returns c's slot.
func (l *load) give(c *conn) {
	l.mu.Lock()
	l.inUse--
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *load) stressed() bool {
	return time.Now().UnixNano() < l.stressUntil.Load()
}

// stressBegins logs, as Postfix's master does when a service reaches its
// process limit, and at most once per stressHold.
func (s *service) stressBegins() {
	s.log.Logf("master", "warning: service %q (%s) has %d sessions, near its process limit \"%d\": stress-dependent settings apply", s.name, strings.Join(s.addrs, " "), s.load.stressAt, s.maxProc)
	s.log.Logf("master", "warning: to avoid this condition, increase the process count in master.cf or reduce the service time per client")
	s.log.Logf("master", "warning: see http://www.postfix.org/STRESS_README.html for examples of stress-adapting configuration settings")
	// Sessions waiting for a client get the stressed time limit now, not
	// after their current wait.
	by := time.Now().Add(s.stressed.timeout)
	s.load.mu.Lock()
	for c := range s.load.conns {
		c.shortenRead(by)
	}
	s.load.mu.Unlock()
}
