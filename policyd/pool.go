package policyd

import (
	"bufio"
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// get returns an idle connection that is still good, or a new one.
func (c *Client) get(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		n := len(c.idle)
		if n == 0 {
			c.mu.Unlock()
			break
		}
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		cn.idleStop.Stop()
		c.mu.Unlock()
		if time.Since(cn.born) < c.opts.MaxTTL && cn.r.Buffered() == 0 && quiet(cn.nc) {
			return cn, nil
		}
		cn.nc.Close()
	}
	d := net.Dialer{Timeout: c.opts.Timeout}
	nc, err := d.DialContext(ctx, c.ep.network, c.ep.address)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, r: bufio.NewReader(nc), born: time.Now()}, nil
}

// put keeps a connection for the next request, unless it has served
// request_limit requests or is past max_ttl. An idle connection is closed
// after max_idle.
func (c *Client) put(cn *conn) {
	if (c.opts.RequestLimit > 0 && cn.requests >= c.opts.RequestLimit) || time.Since(cn.born) >= c.opts.MaxTTL {
		cn.nc.Close()
		return
	}
	cn.nc.SetDeadline(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = append(c.idle, cn)
	cn.idleStop = time.AfterFunc(c.opts.MaxIdle, func() { c.expire(cn) })
}

// expire closes cn if it is still idle in the pool.
func (c *Client) expire(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.idle {
		if x == cn {
			c.idle = append(c.idle[:i], c.idle[i+1:]...)
			cn.nc.Close()
			return
		}
	}
}

// quiet reports whether an idle connection has nothing to read: a server
// that closed it, or sent something unasked, makes it unusable (Postfix's
// readable() test before each request). Postfix spends an attempt on such
// a connection; postgate just opens a new one.
func quiet(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	quiet := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		quiet = rerr == unix.EAGAIN
		return true
	})
	return err == nil && quiet
}
