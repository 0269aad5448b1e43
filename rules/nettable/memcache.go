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
	"postgate/rules/dbcommon"
)

// memcacheTable is memcache:/path/file.cf (Postfix memcache_table(5)),
// lookups only: "get KEY" in memcached's text protocol.
type memcacheTable struct {
	spec       string
	pool       *pool
	key        *dbcommon.Templates // key_format
	domain     *dbcommon.DomainFilter
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
	f, err := dbcommon.ReadConfig(name, memcacheParams, o.Warn)
	if err != nil {
		return nil, err
	}
	if f.IsSet("backup") {
		return nil, fmt.Errorf("%s: a backup database is not supported: look the backup table up after this one instead", f.Where("backup"))
	}
	t := &memcacheTable{spec: typ + ":" + name}
	network, addr, err := parseEndpoint(f.Str("memcache", "inet:localhost:11211"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Where("memcache"), err)
	}
	timeout, err := f.Seconds("timeout", 2)
	if err != nil {
		return nil, err
	}
	if t.maxTry, err = f.Int("max_try", 2, 1); err != nil {
		return nil, err
	}
	pause, err := f.Seconds("retry_pause", 1)
	if err != nil {
		return nil, err
	}
	t.retryPause = pause
	if t.maxLine, err = f.Int("line_size_limit", 1024, 1); err != nil {
		return nil, err
	}
	if t.maxData, err = f.Int("data_size_limit", 10240, 1); err != nil {
		return nil, err
	}
	if t.key, err = keyFormat(f); err != nil {
		return nil, err
	}
	if t.domain, err = f.DomainFilter(o); err != nil {
		return nil, err
	}
	t.pool = &pool{network: network, addr: addr, timeout: timeout}
	runtime.AddCleanup(t, (*pool).closeIdle, t.pool)
	return t, nil
}

// keyFormat reads key_format, a query template whose expansion is the
// key the server is asked for.
func keyFormat(f *dbcommon.Config) (*dbcommon.Templates, error) {
	return f.Templates("key_format", f.Str("key_format", "%s"))
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
	if ok, err := t.domain.Allows(ctx, key); err != nil || !ok {
		return "", false, err
	}
	key, ok, _ := t.key.ExpandQuery(key, nil) // no error without a quote function
	if !ok {
		return "", false, nil
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
