package greylist

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options are the settings of a store besides its address.
type Options struct {
	// Timeout bounds each store operation: connecting, sending and
	// waiting for the answer (postgate_state_timeout). 0: one second.
	Timeout time.Duration
	// LeaseTTL is how long a connection counted in Redis outlives its
	// node's last renewal (a crashed node's connections stop counting
	// after it). 0: one minute.
	LeaseTTL time.Duration
}

// Open opens the store postgate_state_store names:
//
//	memory
//	redis://[[user]:password@]host[:port][/db]
//	redis-sentinel://[[user]:password@]host[:port][,host[:port]...][/db]?master=NAME[&sentinel_password=PW]
//	redis-cluster://[[user]:password@]host[:port][,host[:port]...]
//
// The port defaults to 6379 (26379 for Sentinel), db to 0. Credentials
// given for Sentinel are the master's; the sentinels' own password is
// sentinel_password. A Cluster named by a single address is still run as
// a Cluster (the address is a seed). Nothing is dialled yet: a server
// that is down is found at the first check, and reconnected to later.
func Open(spec string, o Options) (Store, error) {
	if spec == "memory" {
		return NewMemory(), nil
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	uo, desc, err := parseURL(spec)
	if err != nil {
		return nil, err
	}
	uo.DialTimeout, uo.ReadTimeout, uo.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	uo.PoolTimeout = o.Timeout
	// A check that fails is answered per postgate_state_failure_action;
	// retrying inside one check would only make the client wait longer.
	uo.MaxRetries = -1
	uo.ContextTimeoutEnabled = true
	return &Redis{client: redis.NewUniversalClient(uo), desc: desc, leases: newLeases(o.LeaseTTL)}, nil
}

// parseURL reads a redis URL; desc is the URL without its password.
func parseURL(spec string) (*redis.UniversalOptions, string, error) {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return nil, "", fmt.Errorf("%q: want memory, redis://, redis-sentinel:// or redis-cluster://", spec)
	}
	defPort := "6379"
	switch scheme {
	case "redis", "redis-cluster":
	case "redis-sentinel":
		defPort = "26379"
	default:
		return nil, "", fmt.Errorf("%q: unknown scheme %q: want redis, redis-sentinel or redis-cluster", spec, scheme)
	}
	// The host list has commas, which net/url does not take as a host.
	rest, rawQuery, _ := strings.Cut(rest, "?")
	hosts, path, _ := strings.Cut(rest, "/")
	uo := &redis.UniversalOptions{}
	desc := scheme + "://"
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(hosts[:at], ":")
		var err error
		if uo.Username, err = url.PathUnescape(user); err != nil {
			return nil, "", fmt.Errorf("%s: user name: %w", scheme, err)
		}
		if hasPass {
			if uo.Password, err = url.PathUnescape(pass); err != nil {
				return nil, "", fmt.Errorf("%s: password: %w", scheme, err)
			}
		}
		hosts = hosts[at+1:]
		desc += user + "@"
	}
	desc += hosts
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, "", fmt.Errorf("%s: empty host in %q", scheme, desc)
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defPort)
		}
		host, port, err := net.SplitHostPort(h)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || strings.ContainsAny(host, "[]/@?#% ") || perr != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("%s: bad host[:port] %q", desc, h)
		}
		uo.Addrs = append(uo.Addrs, h)
	}
	if path != "" {
		if scheme == "redis-cluster" {
			return nil, "", fmt.Errorf("%s: a Cluster has only database 0, not %q", desc, path)
		}
		db, err := strconv.Atoi(path)
		if err != nil || db < 0 {
			return nil, "", fmt.Errorf("%s: database %q is not a number", desc, path)
		}
		uo.DB = db
		desc += "/" + path
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", desc, err)
	}
	for name := range q {
		if scheme != "redis-sentinel" || (name != "master" && name != "sentinel_password") {
			return nil, "", fmt.Errorf("%s: unknown option %q", desc, name)
		}
	}
	switch scheme {
	case "redis":
		if len(uo.Addrs) > 1 {
			return nil, "", fmt.Errorf("%s: one server only (use redis-cluster:// or redis-sentinel:// for several)", desc)
		}
	case "redis-sentinel":
		if uo.MasterName = q.Get("master"); uo.MasterName == "" {
			return nil, "", errors.New(desc + ": needs ?master=NAME")
		}
		uo.SentinelPassword = q.Get("sentinel_password")
	case "redis-cluster":
		uo.IsClusterMode = true
	}
	return uo, desc, nil
}
