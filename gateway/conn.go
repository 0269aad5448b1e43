package gateway

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn wraps each accepted connection with what go-smtp leaves to the
// server: a deadline on every read and write (smtpd_timeout, so a message
// may take as long as it keeps arriving), and the service's session slot,
// given back when the connection closes. Everything about the dialogue is
// the session's (session.go).
type conn struct {
	net.Conn
	timeout time.Duration
	release func()
	once    sync.Once
	raw     syscall.RawConn // nil when the socket cannot be asked (not TCP)
}

func newConn(nc net.Conn, timeout time.Duration, release func()) *conn {
	c := &conn{Conn: nc, timeout: timeout, release: release}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// remoteAddr is the client's address and port (IPv4-mapped addresses
// unmapped).
func remoteAddr(nc net.Conn) (netip.Addr, int) {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return ap.Addr().Unmap(), int(ap.Port())
	}
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return ap.Addr().Unmap(), int(ap.Port())
}

func (c *conn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
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
