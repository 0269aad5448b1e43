package nettable

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"postgate/rules"
)

// socketmapTable is socketmap:inet:host:port:name and
// socketmap:unix:/path:name (Postfix socketmap_table(5), Sendmail's
// socket map protocol): the request "name key" and the reply are
// netstrings; replies are "OK value", "NOTFOUND ", "TEMP why",
// "TIMEOUT why" and "PERM why".
type socketmapTable struct {
	spec string
	name string
	pool *pool
}

// socketmapMaxReply is Postfix's reply size limit.
const socketmapMaxReply = 100000

func openSocketmap(typ, name string, _ rules.OpenOptions) (rules.Table, error) {
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return nil, fmt.Errorf("%s:%s: need server:name (inet:host:port:name or unix:/path:name)", typ, name)
	}
	network, addr, err := parseEndpoint(name[:i])
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", typ, name, err)
	}
	t := &socketmapTable{spec: typ + ":" + name, name: name[i+1:],
		pool: &pool{network: network, addr: addr, timeout: serverTimeout}}
	runtime.AddCleanup(t, (*pool).closeIdle, t.pool)
	return t, nil
}

func (t *socketmapTable) String() string { return t.spec }

// Lookup sends the key as it is (socketmap tables are pattern tables in
// Postfix: no parent domains, no case folding).
func (t *socketmapTable) Lookup(ctx context.Context, key string) (value string, found bool, err error) {
	var reply string
	err = t.pool.exchange(ctx, func(c *conn) (bool, error) {
		if _, err := io.WriteString(c, netstring(t.name+" "+key)); err != nil {
			return false, err
		}
		reply, err = readNetstring(c.r, socketmapMaxReply)
		return err == nil, err
	})
	if err != nil {
		return "", false, fmt.Errorf("socketmap server %s: %w", t.pool.addr, err)
	}
	value, found, err = parseSocketmapReply(reply)
	if err != nil {
		return "", false, fmt.Errorf("socketmap server %s: %w", t.pool.addr, err)
	}
	return value, found, nil
}

// parseSocketmapReply reads a reply's status word; everything but OK and
// NOTFOUND is a lookup failure.
func parseSocketmapReply(reply string) (value string, found bool, err error) {
	status, payload, _ := strings.Cut(reply, " ")
	switch status {
	case "OK":
		return payload, true, nil
	case "NOTFOUND":
		return "", false, nil
	}
	class := map[string]string{"TEMP": "temporary", "TIMEOUT": "timeout", "PERM": "permanent"}[status]
	if class == "" {
		class = "unknown"
	}
	if payload = strings.TrimSpace(payload); payload != "" {
		return "", false, fmt.Errorf("%s error: %.200q", class, payload)
	}
	return "", false, fmt.Errorf("%s error", class)
}

// netstring encodes s as "len:s,".
func netstring(s string) string {
	return strconv.Itoa(len(s)) + ":" + s + ","
}

// readNetstring reads one netstring of at most limit bytes.
func readNetstring(r *bufio.Reader, limit int) (string, error) {
	n := 0
	for digits := 0; ; digits++ {
		b, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if b == ':' && digits > 0 {
			break
		}
		if !isDigit(b) {
			return "", errors.New("netstring: bad length")
		}
		if n = n*10 + int(b-'0'); n > limit {
			return "", fmt.Errorf("netstring: reply longer than %d bytes", limit)
		}
	}
	data := make([]byte, n+1)
	if _, err := io.ReadFull(r, data); err != nil {
		return "", err
	}
	if data[n] != ',' {
		return "", errors.New("netstring: missing ','")
	}
	return string(data[:n]), nil
}
