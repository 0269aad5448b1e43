package nettable

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"postgate/rules"
	"postgate/rules/dbcommon"
)

// redisTable is redis:/path/file.cf, a postgate extension: a key built
// from key_format is read with GET, or with HGET of hash_field when set.
type redisTable struct {
	spec      string
	addr      string
	client    *redis.Client
	key       *dbcommon.Templates
	hashField string
	domain    *dbcommon.DomainFilter
	timeout   time.Duration
}

var redisParams = []string{"address", "db", "user", "password", "key_format", "hash_field", "timeout", "domain"}

func openRedis(typ, name string, o rules.OpenOptions) (rules.Table, error) {
	f, err := dbcommon.ReadConfig(name, redisParams, o.Warn)
	if err != nil {
		return nil, err
	}
	t := &redisTable{spec: typ + ":" + name, hashField: f.Str("hash_field", "")}
	ro := &redis.Options{Network: "tcp", Addr: f.Str("address", "localhost:6379"),
		Username: f.Str("user", ""), Password: f.Str("password", "")}
	if strings.HasPrefix(ro.Addr, "/") {
		ro.Network = "unix"
	} else if ro.Addr, err = hostPort(ro.Addr); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Where("address"), err)
	}
	if ro.DB, err = f.Int("db", 0, 0); err != nil {
		return nil, err
	}
	if t.timeout, err = f.Seconds("timeout", 2); err != nil {
		return nil, err
	}
	if t.key, err = keyFormat(f); err != nil {
		return nil, err
	}
	if t.domain, err = f.DomainFilter(o); err != nil {
		return nil, err
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = t.timeout, t.timeout, t.timeout, t.timeout
	ro.ContextTimeoutEnabled = true
	// A failed lookup answers 451 and the client retries later; retrying
	// inside it would only keep the client waiting.
	ro.MaxRetries = -1
	ro.ConnMaxIdleTime = maxIdle
	t.addr = ro.Addr
	t.client = redis.NewClient(ro)
	runtime.AddCleanup(t, func(c *redis.Client) { c.Close() }, t.client)
	return t, nil
}

// FixedString: keys are literal, as in memcache: tables.
func (t *redisTable) FixedString() bool { return true }

func (t *redisTable) String() string { return t.spec }

// Lookup reads the key's value; a missing key or hash field is "not
// found", anything else that goes wrong is a lookup error.
func (t *redisTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	key = strings.ToLower(key)
	if ok, err := t.domain.Allows(ctx, key); err != nil || !ok {
		return "", false, err
	}
	key, ok, _ := t.key.ExpandQuery(key, nil)
	if !ok {
		return "", false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var cmd *redis.StringCmd
	if t.hashField != "" {
		cmd = t.client.HGet(ctx, key, t.hashField)
	} else {
		cmd = t.client.Get(ctx, key)
	}
	v, err := cmd.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("redis server %s: %w", t.addr, err)
	}
	return v, true, nil
}
