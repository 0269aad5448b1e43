// Package resolver is postgate's one DNS stub resolver: servers from config or resolv.conf,
// retries across servers, TCP on truncation, a TTL cache and in-flight de-duplication.
//
// Names are always absolute (no search list). Failures come back as *net.DNSError, the form
// libraries such as blitiri.com.ar/go/spf type-assert: IsNotFound for NXDOMAIN and NODATA,
// IsTemporary for SERVFAIL, timeouts and unreachable servers.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults for zero Options fields.
const (
	DefaultTimeout        = 5 * time.Second
	DefaultAttempts       = 2
	DefaultCacheSize      = 10000
	DefaultMaxTTL         = 24 * time.Hour
	DefaultMaxNegativeTTL = time.Hour
	DefaultFailureTTL     = 5 * time.Second
	DefaultResolvConf     = "/etc/resolv.conf"
)

// udpSize is the EDNS0 buffer size we advertise (the DNS flag day 2020 value).
const udpSize = 1232

// Options configure a Resolver. Zero fields take the defaults above.
type Options struct {
	// Servers are "host:port" addresses (postgate_dns_servers), asked in order. A bare host
	// means port 53. Empty: the nameservers of ResolvConf, on port 53.
	Servers []string
	// Timeout bounds one exchange with one server.
	Timeout time.Duration
	// Attempts is how many rounds through the server list one lookup makes.
	Attempts int
	// CacheSize is the most answers the cache holds; negative turns the cache off.
	CacheSize int
	// MinTTL and MaxTTL clamp how long an answer stays cached; MaxNegativeTTL caps
	// NXDOMAIN and NODATA answers (whose TTL comes from the SOA, RFC 2308).
	MinTTL         time.Duration
	MaxTTL         time.Duration
	MaxNegativeTTL time.Duration
	// FailureTTL is how long a lookup that failed (no server answered, or
	// none usefully) is answered from the cache with the same failure, so
	// a DNS outage does not cost a round of queries per SMTP connection
	// (RFC 2308 allows up to 5 minutes); negative: failures are not cached.
	FailureTTL time.Duration
	// ResolvConf is read only when Servers is empty. Its timeout and attempts options are
	// used when Timeout and Attempts are zero.
	ResolvConf string
	// Now is the clock of the cache (tests inject one); nil means time.Now.
	Now func() time.Time
}

// Resolver is safe for concurrent use. Build one per process and share it.
type Resolver struct {
	servers        []string
	timeout        time.Duration
	attempts       int
	minTTL         time.Duration
	maxTTL         time.Duration
	maxNegativeTTL time.Duration
	failureTTL     time.Duration
	now            func() time.Time

	cache *cache // nil when off

	mu       sync.Mutex
	inflight map[key]*call

	stats counters
}

// key names one question.
type key struct {
	name  string // canonical (lower case, absolute)
	qtype uint16
}

// readResolvConf is replaced in tests to prove when resolv.conf is read.
var readResolvConf = dns.ClientConfigFromFile

// New builds a Resolver. It reads resolv.conf only when opts.Servers is empty.
func New(opts Options) (*Resolver, error) {
	r := &Resolver{
		timeout:        opts.Timeout,
		attempts:       opts.Attempts,
		minTTL:         opts.MinTTL,
		maxTTL:         opts.MaxTTL,
		maxNegativeTTL: opts.MaxNegativeTTL,
		failureTTL:     opts.FailureTTL,
		now:            opts.Now,
		inflight:       map[key]*call{},
	}
	if len(opts.Servers) > 0 {
		for _, s := range opts.Servers {
			addr, err := serverAddr(s)
			if err != nil {
				return nil, err
			}
			r.servers = append(r.servers, addr)
		}
	} else {
		path := opts.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		if err := r.useResolvConf(path); err != nil {
			return nil, err
		}
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.attempts <= 0 {
		r.attempts = DefaultAttempts
	}
	if r.maxTTL <= 0 {
		r.maxTTL = DefaultMaxTTL
	}
	if r.failureTTL == 0 {
		r.failureTTL = DefaultFailureTTL
	}
	if r.maxNegativeTTL <= 0 {
		r.maxNegativeTTL = DefaultMaxNegativeTTL
	}
	if r.minTTL < 0 || r.minTTL > r.maxTTL {
		return nil, fmt.Errorf("resolver: minimum TTL %v is outside 0..%v", r.minTTL, r.maxTTL)
	}
	if r.now == nil {
		r.now = time.Now
	}
	switch {
	case opts.CacheSize == 0:
		r.cache = newCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		r.cache = newCache(opts.CacheSize)
	}
	return r, nil
}

// useResolvConf takes servers (and timeout and attempts, unless set) from a resolv.conf.
// Like the C library, a missing file or one without nameservers means the local host.
func (r *Resolver) useResolvConf(path string) error {
	cc, err := readResolvConf(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resolver: %v", err)
	}
	if err != nil || len(cc.Servers) == 0 {
		r.servers = []string{"127.0.0.1:53", "[::1]:53"}
		return nil
	}
	port := cc.Port
	if port == "" {
		port = "53"
	}
	for _, s := range cc.Servers {
		r.servers = append(r.servers, net.JoinHostPort(s, port))
	}
	if r.timeout <= 0 && cc.Timeout > 0 {
		r.timeout = time.Duration(cc.Timeout) * time.Second
	}
	if r.attempts <= 0 && cc.Attempts > 0 {
		r.attempts = cc.Attempts
	}
	return nil
}

// serverAddr checks one configured server and gives it a port when it has none.
func serverAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare name or address, IPv6 possibly in brackets.
		host, port = s, "53"
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
	}
	if host == "" {
		return "", fmt.Errorf("resolver: DNS server %q: no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("resolver: DNS server %q: bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// Servers are the "host:port" addresses the resolver asks, in order.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// Stats are counters since the resolver was built, for metrics.
type Stats struct {
	Lookups      uint64 // questions asked of the resolver (LookupHost asks two)
	CacheHits    uint64 // questions answered from the cache
	Shared       uint64 // questions that joined an identical exchange already in flight
	Queries      uint64 // messages sent to servers (every try, UDP or TCP)
	TCPFallbacks uint64 // truncated UDP answers asked again over TCP
	Errors       uint64 // exchanges that ended in a temporary failure
	Timeouts     uint64 // of those, the ones whose last failure was a timeout
	CacheEntries int    // answers in the cache now
}

type counters struct {
	lookups, cacheHits, shared, queries, tcpFallbacks, errors, timeouts atomic.Uint64
}

// Stats reads the counters.
func (r *Resolver) Stats() Stats {
	st := Stats{
		Lookups:      r.stats.lookups.Load(),
		CacheHits:    r.stats.cacheHits.Load(),
		Shared:       r.stats.shared.Load(),
		Queries:      r.stats.queries.Load(),
		TCPFallbacks: r.stats.tcpFallbacks.Load(),
		Errors:       r.stats.errors.Load(),
		Timeouts:     r.stats.timeouts.Load(),
	}
	if r.cache != nil {
		st.CacheEntries = r.cache.len()
	}
	return st
}

// call is one exchange in flight, shared by every caller asking the same question.
type call struct {
	done    chan struct{}
	ans     *answer
	err     error
	waiters int                // callers still waiting; guarded by Resolver.mu
	cancel  context.CancelFunc // ends the exchange when the last waiter leaves
}

// resolve answers one question from the cache, an exchange in flight, or a new exchange.
// name is canonical. The error, if any, is a temporary failure or the caller's context.
func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16) (*answer, error) {
	r.stats.lookups.Add(1)
	k := key{name, qtype}
	if r.cache != nil {
		if ans, err, ok := r.cache.get(k, r.now()); ok {
			r.stats.cacheHits.Add(1)
			return ans, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r.mu.Lock()
	c, ok := r.inflight[k]
	if ok {
		c.waiters++
		r.mu.Unlock()
		r.stats.shared.Add(1)
	} else {
		// The exchange outlives the caller who started it as long as others wait for it.
		xctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call{done: make(chan struct{}), waiters: 1, cancel: cancel}
		r.inflight[k] = c
		r.mu.Unlock()
		go r.run(xctx, k, c)
	}

	select {
	case <-c.done:
		return c.ans, c.err
	case <-ctx.Done():
		r.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			c.cancel()
			if r.inflight[k] == c {
				delete(r.inflight, k)
			}
		}
		r.mu.Unlock()
		return nil, ctx.Err()
	}
}

// run does the exchange for c, caches its answer and wakes its waiters.
func (r *Resolver) run(ctx context.Context, k key, c *call) {
	defer c.cancel()
	ans, err := r.exchange(ctx, k.name, k.qtype)
	var f *failure
	switch {
	case r.cache == nil:
	case err == nil && ans.ttl > 0:
		r.cache.put(k, ans, nil, r.now().Add(ans.ttl))
	case errors.As(err, &f) && r.failureTTL > 0:
		r.cache.put(k, nil, err, r.now().Add(r.failureTTL))
	}
	c.ans, c.err = ans, err
	r.mu.Lock()
	if r.inflight[k] == c {
		delete(r.inflight, k)
	}
	r.mu.Unlock()
	close(c.done)
}
