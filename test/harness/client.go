package harness

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Client is a raw SMTP client for tests: it sends exactly the bytes given,
// so tests can send what well-behaved clients never do (bare LF, smuggling
// sequences, trickled data).
type Client struct {
	t    testing.TB
	Conn net.Conn
	r    *bufio.Reader
}

// Dial connects from local address from (e.g. "127.0.0.5"; "" for any) and
// reads the greeting.
func Dial(t testing.TB, addr, from string) *Client {
	t.Helper()
	c := DialRaw(t, addr, from)
	if code, text := c.Reply(); code != 220 {
		t.Fatalf("greeting: %d %s", code, text)
	}
	return c
}

// DialRaw connects without reading the greeting.
func DialRaw(t testing.TB, addr, from string) *Client {
	t.Helper()
	d := net.Dialer{Timeout: 15 * time.Second} // bounded; generous for a loaded make test
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{t: t, Conn: nc, r: bufio.NewReader(nc)}
	t.Cleanup(func() { nc.Close() })
	return c
}

// Reply reads one (possibly multi-line) reply: its code and its lines
// joined by "\n" (each line without the "NNN-"/"NNN " prefix).
func (c *Client) Reply() (int, string) {
	c.t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if len(lines) == 0 && line == "" {
				return 0, "EOF: " + err.Error()
			}
			c.t.Fatalf("reading reply: %v (got %q)", err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 {
			c.t.Fatalf("short reply line %q", line)
		}
		lines = append(lines, line[4:])
		if line[3] == ' ' {
			code, _ := strconv.Atoi(line[:3])
			return code, strings.Join(lines, "\n")
		}
	}
}

// Send writes raw bytes.
func (c *Client) Send(s string) {
	c.t.Helper()
	if _, err := c.Conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// Cmd sends one command line (CRLF added) and returns the reply.
func (c *Client) Cmd(format string, args ...any) (int, string) {
	c.t.Helper()
	c.Send(fmt.Sprintf(format, args...) + "\r\n")
	return c.Reply()
}

// Expect sends a command and fails unless the reply has the given code.
func (c *Client) Expect(code int, format string, args ...any) string {
	c.t.Helper()
	got, text := c.Cmd(format, args...)
	if got != code {
		c.t.Fatalf("%s: got %d %s, want %d", fmt.Sprintf(format, args...), got, text, code)
	}
	return text
}

// Closed reports whether the server closed the connection (reads EOF
// within a second).
func (c *Client) Closed() bool {
	c.Conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err := c.r.ReadByte()
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
