package dnsbl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// TTLResolver is an optional ability of a Resolver: the A records of a
// name with how long the answer may be kept (for "not found", the
// negative TTL). Without it a score is kept for ScoreOptions.MinTTL.
type TTLResolver interface {
	LookupA(ctx context.Context, name string) ([]netip.Addr, time.Duration, error)
}

// Defaults of ScoreOptions, Postfix's.
const (
	DefaultScoreTimeout = 10 * time.Second // postscreen_dnsbl_timeout
	DefaultMinTTL       = time.Minute      // postscreen_dnsbl_min_ttl
	DefaultMaxTTL       = time.Hour        // postscreen_dnsbl_max_ttl
	DefaultCacheSize    = 100000
)

// ScoreOptions configure a Scorer (postscreen's DNS list test).
type ScoreOptions struct {
	Resolver Resolver
	Sites    []WeightedSite // postscreen_dnsbl_sites
	// Threshold blocks a client whose score reaches it
	// (postscreen_dnsbl_threshold, 1); AllowlistThreshold allowlists one
	// whose score is at or below it, when it is negative
	// (postscreen_dnsbl_allowlist_threshold, 0: off).
	Threshold          int
	AllowlistThreshold int
	// Timeout bounds the queries of one client (postscreen_dnsbl_timeout);
	// a list that has not answered by then counts as not listed.
	Timeout time.Duration
	// MinTTL and MaxTTL bound how long a client's score is kept
	// (postscreen_dnsbl_min_ttl, postscreen_dnsbl_max_ttl).
	MinTTL, MaxTTL time.Duration
	CacheSize      int                  // most clients kept; 0: DefaultCacheSize
	Logf           func(string, ...any) // log lines as postscreen's and dnsblog's; nil: none
	Now            func() time.Time     // the cache's clock; nil: time.Now
}

// Scorer sums the weights of the lists that list a client, as postscreen
// does before the SMTP greeting. It is safe for concurrent use.
type Scorer struct {
	o       ScoreOptions
	domains []domainSites // one query per list domain

	mu    sync.Mutex
	cache map[netip.Addr]cachedScore
}

type domainSites struct {
	domain string
	sites  []WeightedSite
}

type cachedScore struct {
	s       Score
	expires time.Time
}

// Score is a client's result.
type Score struct {
	Total int
	// List is the domain of the listing with the highest weight, for the
	// reply ("blocked using zen.example"); "" when nothing listed.
	List string
	// TTL is how long the score is kept, within MinTTL..MaxTTL: the
	// lowest TTL of the answers that made the result.
	TTL time.Duration
	// Cached: the score came from the per-client cache.
	Cached bool
}

// NewScorer builds a Scorer; zero options take Postfix's defaults.
func NewScorer(o ScoreOptions) *Scorer {
	if o.Threshold == 0 {
		o.Threshold = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultScoreTimeout
	}
	if o.MinTTL <= 0 {
		o.MinTTL = DefaultMinTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Scorer{o: o, cache: map[netip.Addr]cachedScore{}}
	at := map[string]int{}
	for _, site := range o.Sites {
		i, ok := at[site.Domain]
		if !ok {
			i = len(s.domains)
			at[site.Domain] = i
			s.domains = append(s.domains, domainSites{domain: site.Domain})
		}
		s.domains[i].sites = append(s.domains[i].sites, site)
	}
	return s
}

// Blocked reports whether a score reaches the threshold.
func (s *Scorer) Blocked(sc Score) bool { return sc.Total >= s.o.Threshold }

// Allowlisted reports whether a score allowlists the client: below the
// threshold, and at or below a negative allowlist threshold.
func (s *Scorer) Allowlisted(sc Score) bool {
	return sc.Total < s.o.Threshold && s.o.AllowlistThreshold < 0 && sc.Total <= s.o.AllowlistThreshold
}

// answer is one list domain's reply to one client's query.
type answer struct {
	d     domainSites
	addrs []netip.Addr // nil: not listed, or no answer
	ttl   time.Duration
	known bool // ttl is the answer's: false after an error, or without TTLResolver
}

// Score asks every list about addr at the same time, each query bounded
// by the timeout, and sums the weights of the entries whose filter an
// answer passes; each entry counts once. The result is kept per client
// for its TTL.
func (s *Scorer) Score(ctx context.Context, addr netip.Addr) Score {
	addr = addr.Unmap()
	now := s.o.Now()
	s.mu.Lock()
	if c, ok := s.cache[addr]; ok && now.Before(c.expires) {
		s.mu.Unlock()
		c.s.Cached = true
		return c.s
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	answers := make(chan answer, len(s.domains))
	for _, d := range s.domains {
		go func() { answers <- s.ask(ctx, addr, d) }()
	}
	var (
		sc               = Score{}
		best             int
		passTTL, failTTL = ttlBound{}, ttlBound{}
	)
	for range s.domains {
		a := <-answers
		for _, site := range a.d.sites {
			listed := len(a.addrs) > 0 && matchAny(site.Filter, a.addrs)
			if listed {
				if sc.List == "" || best < site.Weight {
					sc.List, best = a.d.domain, site.Weight
				}
				sc.Total += site.Weight
			}
			// As postscreen: a reply that lists (or an allowlist that
			// does not) bounds how long a failing score is kept, the
			// others how long a passing one is.
			if (len(a.addrs) > 0) == (site.Weight > 0) {
				failTTL.add(a)
			} else {
				passTTL.add(a)
			}
		}
	}
	b := passTTL
	if sc.Total > 0 {
		b = failTTL
	}
	sc.TTL = min(max(b.ttl(s.o.MinTTL), s.o.MinTTL), s.o.MaxTTL)
	s.store(addr, sc, now)
	return sc
}

// ask queries one list, logging what dnsblog logs.
func (s *Scorer) ask(ctx context.Context, addr netip.Addr, d domainSites) answer {
	a, domain := answer{d: d}, d.domain
	query := AddrQuery(addr, domain)
	var err error
	if tr, ok := s.o.Resolver.(TTLResolver); ok {
		a.addrs, a.ttl, err = tr.LookupA(ctx, query)
		a.known = err == nil || isNotFound(err)
	} else if s.o.Resolver != nil {
		var ips []net.IP
		ips, err = s.o.Resolver.LookupIP(ctx, "ip4", query)
		for _, ip := range ips {
			if v, ok := netip.AddrFromSlice(ip); ok {
				a.addrs = append(a.addrs, v.Unmap())
			}
		}
	} else {
		err = errors.New("no resolver")
	}
	switch {
	case err == nil:
		for _, v := range a.addrs {
			s.o.Logf("addr %s listed by domain %s as %s", addr, domain, v)
		}
	case isNotFound(err):
		a.addrs = nil
	case ctx.Err() != nil:
		a.addrs = nil
		s.o.Logf("warning: dnsblog reply timeout %ds for %s", int(s.o.Timeout/time.Second), domain)
	default:
		a.addrs = nil
		s.o.Logf("warning: dnsblog_query: lookup error for DNS query %s: %v", query, err)
	}
	return a
}

func matchAny(f *Filter, addrs []netip.Addr) bool {
	if f == nil {
		return true
	}
	for _, a := range addrs {
		if f.Match(a) {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// ttlBound is the lowest TTL of the answers given to add; an answer
// without a TTL (an error, a resolver that does not say) makes it unknown,
// which ends as the minimum, as postscreen's -1.
type ttlBound struct {
	set, unknown bool
	low          time.Duration
}

func (b *ttlBound) add(a answer) {
	switch {
	case !a.known:
		b.unknown = true
	case !b.set || a.ttl < b.low:
		b.low = a.ttl
	}
	b.set = true
}

func (b ttlBound) ttl(fallback time.Duration) time.Duration {
	if !b.set || b.unknown {
		return fallback
	}
	return b.low
}

// store keeps a score for its TTL; a full cache first drops what has
// expired, then, if still full, does not keep the new score.
func (s *Scorer) store(addr netip.Addr, sc Score, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.o.CacheSize {
		for k, c := range s.cache {
			if !now.Before(c.expires) {
				delete(s.cache, k)
			}
		}
		if len(s.cache) >= s.o.CacheSize {
			return
		}
	}
	s.cache[addr] = cachedScore{s: sc, expires: now.Add(sc.TTL)}
}
