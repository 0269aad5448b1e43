package nettable

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Connection reuse, as Postfix's auto_clnt: an idle connection is kept
// for the next lookup and closed after maxIdle.
const (
	maxIdle      = 10 * time.Second
	maxIdleConns = 4 // per server and table; concurrent sessions dial more
)

// pool keeps idle connections to one server.
type pool struct {
	network, addr string
	timeout       time.Duration // dial and each request/reply exchange

	mu   sync.Mutex
	idle []*conn
}

// conn is one connection and its read buffer.
type conn struct {
	net.Conn
	r       *bufio.Reader
	idleAt  time.Time
	reused  bool
	release func() bool // stops the context watch
}

// parseEndpoint reads Postfix's "inet:host:port" and "unix:/path" (also
// "local:/path") server names.
func parseEndpoint(s string) (network, addr string, err error) {
	transport, rest, _ := strings.Cut(s, ":")
	switch transport {
	case "inet":
		addr, err = hostPort(rest)
		return "tcp", addr, err
	case "unix", "local":
		if rest == "" {
			return "", "", fmt.Errorf("%q: empty socket path", s)
		}
		return "unix", rest, nil
	}
	return "", "", fmt.Errorf("%q: need inet:host:port or unix:/path", s)
}

// hostPort reads "host:port" and "[ipv6]:port".
func hostPort(s string) (string, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", fmt.Errorf("%q: need host:port", s)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	return net.JoinHostPort(host, s[i+1:]), nil
}

// exchange runs one request/reply on a connection, reused when one is
// idle. Every step has a deadline: the table's timeout, or ctx's if
// sooner, and ctx's cancellation interrupts it. do says whether the
// connection may be kept. A reused connection that the server had closed
// (server restart, idle timeout on its side) is retried once on a new
// one, as Postfix does; other failures are returned.
func (p *pool) exchange(ctx context.Context, do func(c *conn) (keep bool, err error)) error {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		keep, err := do(c)
		p.put(c, keep && err == nil)
		if err == nil || !c.reused || attempt > 0 || !brokenConn(err) || ctx.Err() != nil {
			return err
		}
		// The server restarted: its other idle connections are stale too.
		p.closeIdle()
	}
}

// brokenConn: the server closed the connection before answering.
func brokenConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (p *pool) get(ctx context.Context) (*conn, error) {
	deadline := time.Now().Add(p.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c := p.takeIdle()
	if c == nil {
		d := net.Dialer{Deadline: deadline}
		nc, err := d.DialContext(ctx, p.network, p.addr)
		if err != nil {
			return nil, err
		}
		c = &conn{Conn: nc, r: bufio.NewReader(nc)}
	}
	c.SetDeadline(deadline)
	c.release = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return c, nil
}

func (p *pool) takeIdle() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(c.idleAt) < maxIdle {
			c.reused = true
			return c
		}
		c.Close()
	}
	return nil
}

func (p *pool) put(c *conn, keep bool) {
	// A cancelled context may already have set a past deadline: such a
	// connection is not reused.
	if !c.release() || !keep {
		c.Close()
		return
	}
	c.idleAt = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= maxIdleConns {
		c.Close()
		return
	}
	p.idle = append(p.idle, c)
}

// closeIdle closes the idle connections (when the table is dropped).
func (p *pool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.Close()
	}
	p.idle = nil
}

// readLine reads one line of at most limit bytes, without its LF or
// CRLF.
func (c *conn) readLine(limit int) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > limit {
			return "", fmt.Errorf("reply line longer than %d bytes", limit)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}
