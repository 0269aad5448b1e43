package gateway

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// conn wraps each accepted connection. It owns what go-smtp leaves to the
// server: the read deadline of every read (smtpd_timeout, DATA included),
// the timeout and too-many-errors replies, "reply, then hang up" for 421/521
// answers, the greeting text, Postfix's reply texts, and the connect and
// disconnect log lines with command counts.
type conn struct {
	net.Conn
	svc     *service
	client  clientInfo
	release func()

	mu         sync.Mutex
	t          tracker
	greeted    bool
	dead       bool   // postgate replied on its own and hung up: swallow go-smtp's text
	closeAfter bool   // hang up after the next final reply
	notes      bool   // bare LF seen in content (smtpd_forbid_bare_newline = note)
	out        []byte // continuation lines of the reply being written
	closeOnce  sync.Once
}

// clientInfo is what the log and the restrictions know of the client.
type clientInfo struct {
	addr netip.Addr
	port int
	name string // verified name or "unknown"
}

// String formats the client as Postfix logs it: name[addr].
func (c clientInfo) String() string {
	return c.name + "[" + c.addr.String() + "]"
}

func newConn(nc net.Conn, svc *service, release func()) *conn {
	c := &conn{Conn: nc, svc: svc, release: release}
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	c.client = clientInfo{addr: ap.Addr().Unmap(), port: int(ap.Port()), name: "unknown"}
	return c
}

var errHungUp = errors.New("connection closed by postgate")

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return 0, io.EOF
	}
	if c.t.errors >= c.svc.hardErrorLimit {
		c.hangUp("421 4.7.0 "+c.svc.hostname+" Error: too many errors", "too many errors")
		c.mu.Unlock()
		return 0, io.EOF
	}
	c.mu.Unlock()

	c.Conn.SetReadDeadline(time.Now().Add(c.svc.timeout))
	n, err := c.Conn.Read(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead { // hung up while reading (close after a reply from a BDAT goroutine)
		return 0, io.EOF
	}
	c.t.feed(p[:n])
	if c.t.tooLong {
		c.hangUp("500 5.5.2 "+c.svc.hostname+" Error: command line too long", "command line too long")
		return 0, io.EOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.hangUp("421 4.4.2 "+c.svc.hostname+" Error: timeout exceeded", "timeout")
		return 0, io.EOF
	}
	if err != nil {
		// EOF or a reset: Postfix logs both as a lost connection, and
		// go-smtp ends the session quietly on EOF.
		if !c.t.quit {
			c.svc.log.Logf("smtpd", "lost connection after %s from %s", c.t.after(), c.client)
		}
		return n, io.EOF
	}
	return n, nil
}

// hangUp sends a reply of postgate's own, logs why, and closes the socket.
// go-smtp sees EOF and ends the session; anything it still writes is dropped.
func (c *conn) hangUp(reply, why string) {
	c.svc.log.Logf("smtpd", "%s after %s from %s", why, c.t.after(), c.client)
	c.writeRaw(reply + "\r\n")
	c.dead = true
	c.Conn.Close()
}

func (c *conn) writeRaw(s string) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.svc.timeout))
	c.Conn.Write([]byte(s))
}

// Write sees every reply line go-smtp writes (textproto flushes each line).
func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return len(p), nil
	}
	if !c.greeted {
		c.greeted = true
		c.writeRaw("220 " + c.svc.banner + "\r\n")
		return len(p), nil
	}
	n := len(p) // what go-smtp wrote, whatever postgate sends instead
	code, final := replyCode(p)
	if code != 0 && !final {
		// Continuation lines wait for the final line: a multi-line reply
		// (EHLO) goes out in one write.
		c.out = append(c.out, p...)
		return len(p), nil
	}
	if code != 0 {
		verb := c.t.reply(code)
		if r, ok := postfixReply(verb, p); ok {
			p = r
		}
	}
	if code >= 400 && c.t.errors > c.svc.softErrorLimit {
		time.Sleep(c.svc.errorSleep)
	}
	out := append(c.out, p...)
	c.out = out[:0]
	c.Conn.SetWriteDeadline(time.Now().Add(c.svc.timeout))
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	if c.closeAfter || code == 421 || code == 521 {
		c.dead = true
		c.Conn.Close()
	}
	return n, nil
}

// replyCode parses "NNN " / "NNN-" at the start of a reply line (code 0:
// not a reply line).
func replyCode(p []byte) (code int, final bool) {
	if len(p) < 4 || (p[3] != ' ' && p[3] != '-') {
		return 0, false
	}
	for _, d := range p[:3] {
		if d < '0' || d > '9' {
			return 0, false
		}
		code = code*10 + int(d-'0')
	}
	return code, p[3] == ' '
}

// hangUpAfterReply makes the connection close once the next reply is sent:
// go-smtp has no way for a session method to answer and disconnect.
func (c *conn) hangUpAfterReply() {
	c.mu.Lock()
	c.closeAfter = true
	c.mu.Unlock()
}

// noteBareLF records bare LF seen in message content for the disconnect line.
func (c *conn) noteBareLF() {
	c.mu.Lock()
	c.notes = true
	c.mu.Unlock()
}

// proto is "ESMTP" after EHLO, else "SMTP".
func (c *conn) proto() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.heloVerb == "EHLO" {
		return "ESMTP"
	}
	return "SMTP"
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.mu.Lock()
		stats := c.t.stats()
		if c.notes || (c.t.bareLF && c.svc.bareLF == bareLFNote) {
			stats += " notes=bare_lf"
		}
		c.mu.Unlock()
		c.svc.log.Logf("smtpd", "disconnect from %s%s", c.client, stats)
		c.release()
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
