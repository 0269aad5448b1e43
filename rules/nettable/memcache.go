package nettable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"postgate/rules"
)

// memcacheTable is memcache:/path/file.cf (Postfix memcache_table(5)),
// lookups only: "get KEY" in memcached's text protocol.
type memcacheTable struct {
	spec       string
	pool       *pool
	key        *keyFormat // nil for the default "%s": the key as is
	domain     *domainFilter
	maxTry     int
	retryPause time.Duration
	maxLine    int
	maxData    int
}

// memcacheParams are the names memcache_table(5) defines; ttl and flags
// only matter to updates, which postgate does not make.
var memcacheParams = []string{"memcache", "backup", "key_format", "ttl", "timeout", "flags",
	"max_try", "retry_pause", "line_size_limit", "data_size_limit", "domain"}

func openMemcache(typ, name string, o rules.OpenOptions) (rules.Table, error) {
	f, err := readCfgFile(name, memcacheParams, warner(o))
	if err != nil {
		return nil, err
	}
	if _, ok := f.values["backup"]; ok {
		return nil, fmt.Errorf("%s: a backup database is not supported: look the backup table up after this one instead", f.where("backup"))
	}
	t := &memcacheTable{spec: typ + ":" + name}
	network, addr, err := parseEndpoint(f.str("memcache", "inet:localhost:11211"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.where("memcache"), err)
	}
	timeout, err := f.seconds("timeout", 2)
	if err != nil {
		return nil, err
	}
	if t.maxTry, err = f.int("max_try", 2, 1); err != nil {
		return nil, err
	}
	pause, err := f.seconds("retry_pause", 1)
	if err != nil {
		return nil, err
	}
	t.retryPause = pause
	if t.maxLine, err = f.int("line_size_limit", 1024, 1); err != nil {
		return nil, err
	}
	if t.maxData, err = f.int("data_size_limit", 10240, 1); err != nil {
		return nil, err
	}
	if format := f.str("key_format", "%s"); format != "%s" {
		if t.key, err = parseKeyFormat(format); err != nil {
			return nil, fmt.Errorf("%s: %w", f.where("key_format"), err)
		}
	}
	if t.domain, err = parseDomainFilter(f.str("domain", "")); err != nil {
		return nil, fmt.Errorf("%s: %w", f.where("domain"), err)
	}
	t.pool = &pool{network: network, addr: addr, timeout: timeout}
	runtime.AddCleanup(t, (*pool).closeIdle, t.pool)
	return t, nil
}

// warner adapts OpenOptions.Warn.
func warner(o rules.OpenOptions) func(format string, args ...any) {
	return func(format string, args ...any) {
		if o.Warn != nil {
			o.Warn(fmt.Sprintf(format, args...))
		}
	}
}

// FixedString: keys are literal (Postfix opens memcache tables with
// DICT_FLAG_FIXED), so callers try parent domains and address prefixes.
func (t *memcacheTable) FixedString() bool { return true }

func (t *memcacheTable) String() string { return t.spec }

// Lookup asks memcached for the key, after Postfix's filters: keys
// outside "domain", keys the key_format cannot be filled in for, and
// keys with white space (memcached cannot take them) are not found
// without a query. A failed exchange is tried again max_try times in all,
// retry_pause apart, except when the server cannot be reached.
func (t *memcacheTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	key = strings.ToLower(key)
	if ok, err := t.domain.allows(ctx, key); err != nil || !ok {
		return "", false, err
	}
	if t.key != nil {
		var ok bool
		if key, ok = t.key.expand(key); !ok {
			return "", false, nil
		}
	}
	if key == "" || strings.ContainsAny(key, " \t\r\n\v\f") {
		return "", false, nil
	}
	var err error
	for try := 0; try < t.maxTry; try++ {
		if try > 0 {
			if err := sleep(ctx, t.retryPause); err != nil {
				break
			}
		}
		var value string
		var found bool
		err = t.pool.exchange(ctx, func(c *conn) (bool, error) {
			v, ok, keep, err := t.get(c, key)
			value, found = v, ok
			return keep, err
		})
		if err == nil {
			return value, found, nil
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			break
		}
	}
	return "", false, fmt.Errorf("memcache server %s: %w", t.pool.addr, err)
}

// get is one "get" exchange; keep=false when the connection is not in a
// known state afterwards.
func (t *memcacheTable) get(c *conn, key string) (value string, found, keep bool, err error) {
	if _, err := io.WriteString(c, "get "+key+"\r\n"); err != nil {
		return "", false, false, err
	}
	line, err := c.readLine(t.maxLine)
	if err != nil {
		return "", false, false, err
	}
	if line == "END" {
		return "", false, true, nil
	}
	// VALUE <key> <flags> <bytes> [<cas unique>]
	fields := strings.Fields(line)
	n := -1
	if len(fields) >= 4 && fields[0] == "VALUE" {
		if n, err = strconv.Atoi(fields[3]); err != nil {
			n = -1
		}
	}
	if n < 0 || n > t.maxData {
		return "", false, false, fmt.Errorf("unexpected reply %.30q (data_size_limit is %d)", line, t.maxData)
	}
	data := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, data); err != nil {
		return "", false, false, err
	}
	if string(data[n:]) != "\r\n" {
		return "", false, false, errors.New("data block not ended by CRLF")
	}
	// The value is complete; only a missing END makes the connection
	// unfit for reuse.
	end, err := c.readLine(t.maxLine)
	return string(data[:n]), true, err == nil && end == "END", nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
