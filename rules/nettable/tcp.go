package nettable

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"postgate/rules"
)

// tcpTable is tcp:host:port (Postfix tcp_table(5)): "get KEY\n", answered
// "200 VALUE", "500 ..." (not found) or "400 ..." (failure), key and
// value %XX-encoded, one persistent connection reused.
type tcpTable struct {
	spec string
	pool *pool
}

// Postfix waits 100 s for a tcp: or socketmap: server; postgate bounds a
// lookup tighter, since an SMTP client waits on it.
const serverTimeout = 10 * time.Second

// tcpMaxReply is Postfix's reply length limit.
const tcpMaxReply = 4096

func openTCP(typ, name string, _ rules.OpenOptions) (rules.Table, error) {
	addr, err := hostPort(name)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", typ, name, err)
	}
	t := &tcpTable{spec: typ + ":" + name, pool: &pool{network: "tcp", addr: addr, timeout: serverTimeout}}
	runtime.AddCleanup(t, (*pool).closeIdle, t.pool)
	return t, nil
}

func (t *tcpTable) String() string { return t.spec }

// Lookup sends the key as it is: tcp tables are pattern tables in Postfix
// (the server sees each key once, in its original case).
func (t *tcpTable) Lookup(ctx context.Context, key string) (value string, found bool, err error) {
	err = t.pool.exchange(ctx, func(c *conn) (bool, error) {
		if _, err := io.WriteString(c, "get "+hexQuote(key)+"\n"); err != nil {
			return false, err
		}
		line, err := c.readLine(tcpMaxReply)
		if err != nil {
			return false, err
		}
		var keep bool
		value, found, keep, err = parseTCPReply(line)
		return keep, err
	})
	if err != nil {
		return "", false, fmt.Errorf("tcp table server %s: %w", t.pool.addr, err)
	}
	return value, found, nil
}

// parseTCPReply reads "NNN text": 2xx found (text %XX-decoded), 5xx not
// found, 4xx and anything else a failure after which Postfix drops the
// connection.
func parseTCPReply(line string) (value string, found, keep bool, err error) {
	if len(line) < 4 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) || !isSpace(line[3]) {
		return "", false, false, fmt.Errorf("malformed reply %.100q", line)
	}
	text, ok := hexUnquote(line[4:])
	if !ok {
		return "", false, false, fmt.Errorf("malformed reply %.100q", line)
	}
	switch line[0] {
	case '2':
		return text, true, true, nil
	case '5':
		return "", false, true, nil
	case '4':
		return "", false, false, fmt.Errorf("temporary error: %.100q", line)
	}
	return "", false, false, fmt.Errorf("bad status code: %.100q", line)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// hexQuote is Postfix's hex_quote: '%', white space and bytes that are not
// printable ASCII become %XX.
func hexQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' && c > ' ' && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// hexUnquote is Postfix's hex_unquote: %XX (either case) decoded, other
// bytes as they are; a '%' without two hex digits is malformed.
func hexUnquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		c, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", false
		}
		b.Write(c)
		i += 2
	}
	return b.String(), true
}
