package dnsbl

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// ttlResolver answers A queries with a TTL; names in slow answer only
// when the context ends; names in fail fail.
type ttlResolver struct {
	mu    sync.Mutex
	a     map[string][]string
	ttl   map[string]time.Duration // also the negative TTL of a name not listed
	slow  map[string]bool
	fail  map[string]bool
	asked map[string]int
}

func (r *ttlResolver) LookupA(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	r.mu.Lock()
	r.asked[name]++
	r.mu.Unlock()
	if r.slow[name] {
		<-ctx.Done()
		return nil, 0, &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
	}
	if r.fail[name] {
		return nil, 0, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	ttl, ok := r.ttl[name]
	if !ok {
		ttl = 600 * time.Second
	}
	var out []netip.Addr
	for _, s := range r.a[name] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, ttl, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return out, ttl, nil
}

func (r *ttlResolver) LookupIP(ctx context.Context, _, host string) ([]net.IP, error) {
	addrs, _, err := r.LookupA(ctx, host)
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, a.AsSlice())
	}
	return ips, err
}

func (r *ttlResolver) LookupTXT(context.Context, string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

func newTTLResolver() *ttlResolver {
	return &ttlResolver{
		a: map[string][]string{
			"2.0.0.127.a.test":   {"127.0.0.2"},
			"2.0.0.127.b.test":   {"127.0.0.2"},
			"2.0.0.127.c.test":   {"127.0.0.4"},
			"2.0.0.127.zen.test": {"127.0.0.2", "127.0.0.10", "127.0.0.11"},
			"3.0.0.127.wl.test":  {"127.0.9.1"},
			"4.0.0.127.wl.test":  {"127.0.9.1"},
			"4.0.0.127.a.test":   {"127.0.0.2"},
		},
		ttl: map[string]time.Duration{
			"2.0.0.127.a.test": 300 * time.Second, "2.0.0.127.b.test": 900 * time.Second,
			"3.0.0.127.a.test": 30 * time.Second, "3.0.0.127.wl.test": 7200 * time.Second,
		},
		slow:  map[string]bool{},
		fail:  map[string]bool{},
		asked: map[string]int{},
	}
}

func mustSites(t *testing.T, list string) []WeightedSite {
	t.Helper()
	s, err := ParseWeightedSites(strings.Fields(list))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestParseWeightedSite(t *testing.T) {
	w, err := ParseWeightedSite("zen.test=127.0.0.[2..11]*-3")
	if err != nil || w.Domain != "zen.test" || w.Weight != -3 || w.Filter.String() != "127.0.0.[2..11]" || w.Arg != "zen.test=127.0.0.[2..11]" {
		t.Fatalf("%+v %v", w, err)
	}
	if w, err := ParseWeightedSite("bl.test"); err != nil || w.Weight != 1 || w.Filter != nil {
		t.Fatalf("%+v %v", w, err)
	}
	for entry, want := range map[string]string{
		"zen.test*x":     `bad DNSBL weight factor "x" in "zen.test*x"`,
		"zen.test*":      `bad DNSBL weight factor "" in "zen.test*"`,
		"zen.test=1.2.3": `bad DNSBL filter syntax: need "." at "1.2.3><"`,
		"bad..test*2":    `bad DNSBL domain name "bad..test" in "bad..test*2"`,
	} {
		if _, err := ParseWeightedSite(entry); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", entry, err, want)
		}
	}
}

func TestScoreWeights(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, sites string
		threshold   int
		allow       int
		client      string
		total       int
		list        string
		blocked     bool
		allowlisted bool
	}{
		{"three lists summed to the threshold", "a.test*2 b.test c.test=127.0.0.[2..3]", 3, 0, "127.0.0.2", 3, "a.test", true, false},
		{"one short of the threshold", "a.test*2 c.test=127.0.0.[2..3]", 3, 0, "127.0.0.2", 2, "a.test", false, false},
		{"no filter: any answer", "c.test", 1, 0, "127.0.0.2", 1, "c.test", true, false},
		{"two entries of one list, each once", "zen.test=127.0.0.2*3 zen.test=127.0.0.[10..11]", 1, 0, "127.0.0.2", 4, "zen.test", true, false},
		{"an allowlist cancels a listing", "a.test*2 wl.test*-2", 1, 0, "127.0.0.4", 0, "a.test", false, false},
		{"allowlisted below the allowlist threshold", "a.test*2 wl.test*-2", 1, -1, "127.0.0.3", -2, "wl.test", false, true},
		{"allowlist threshold off", "a.test*2 wl.test*-2", 1, 0, "127.0.0.3", -2, "wl.test", false, false},
		{"not listed", "a.test b.test", 1, -1, "127.0.0.9", 0, "", false, false},
	}
	for _, c := range cases {
		r := newTTLResolver()
		s := NewScorer(ScoreOptions{Resolver: r, Sites: mustSites(t, c.sites), Threshold: c.threshold, AllowlistThreshold: c.allow})
		sc := s.Score(ctx, netip.MustParseAddr(c.client))
		if sc.Total != c.total || sc.List != c.list || s.Blocked(sc) != c.blocked || s.Allowlisted(sc) != c.allowlisted {
			t.Errorf("%s: %+v blocked=%v allowlisted=%v; want total %d list %q blocked=%v allowlisted=%v",
				c.name, sc, s.Blocked(sc), s.Allowlisted(sc), c.total, c.list, c.blocked, c.allowlisted)
		}
		for q, n := range r.asked {
			if n != 1 {
				t.Errorf("%s: %s asked %d times", c.name, q, n)
			}
		}
	}
}

func TestScoreTimeoutAndErrors(t *testing.T) {
	r := newTTLResolver()
	r.slow["2.0.0.127.b.test"], r.slow["9.0.0.127.b.test"] = true, true
	r.fail["2.0.0.127.c.test"] = true
	var l logs
	s := NewScorer(ScoreOptions{Resolver: r, Sites: mustSites(t, "a.test b.test*5 c.test*5"), Timeout: time.Second, Logf: l.logf})
	start := time.Now()
	sc := s.Score(context.Background(), netip.MustParseAddr("127.0.0.2"))
	if took := time.Since(start); took < time.Second || took > 1500*time.Millisecond {
		t.Errorf("took %v, want the 1 s timeout", took)
	}
	// A failing score is kept as long as the listing's TTL (300 s): the
	// lists that did not answer bound passing scores only, as in
	// postscreen (dnsblog's "not found" with no TTL).
	if sc.Total != 1 || sc.List != "a.test" || sc.TTL != 300*time.Second {
		t.Errorf("score %+v: want 1 from a.test, kept 300 s", sc)
	}
	// A passing score made without every answer is kept the minimum.
	if sc := s.Score(context.Background(), netip.MustParseAddr("127.0.0.9")); sc.Total != 0 || sc.TTL != DefaultMinTTL {
		t.Errorf("passing score with lists missing: %+v", sc)
	}
	for _, want := range []string{
		"addr 127.0.0.2 listed by domain a.test as 127.0.0.2",
		"warning: dnsblog reply timeout 1s for b.test",
		"warning: dnsblog_query: lookup error for DNS query 2.0.0.127.c.test: lookup 2.0.0.127.c.test: server misbehaving",
	} {
		if !strings.Contains(l.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, l.String())
		}
	}
}

func TestScoreTTLAndCache(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := newTTLResolver()
	s := NewScorer(ScoreOptions{Resolver: r, Sites: mustSites(t, "a.test b.test wl.test*-1"), MinTTL: time.Minute, MaxTTL: time.Hour, Now: clock})
	ctx := context.Background()
	listed := netip.MustParseAddr("127.0.0.2")
	// Listed by a.test (300 s) and b.test (900 s), not by wl.test (600 s,
	// an allowlist that does not list bounds a failing score too): 300 s.
	if sc := s.Score(ctx, listed); sc.Total != 2 || sc.TTL != 300*time.Second || sc.Cached {
		t.Fatalf("listed: %+v", sc)
	}
	// Passing: a.test's negative answer of 30 s is raised to the minimum.
	if sc := s.Score(ctx, netip.MustParseAddr("127.0.0.3")); sc.Total != -1 || sc.TTL != time.Minute {
		t.Errorf("allowlisted: %+v", sc)
	}
	// Kept for its TTL, then asked again.
	now = now.Add(299 * time.Second)
	if sc := s.Score(ctx, listed); !sc.Cached || sc.Total != 2 || r.asked["2.0.0.127.a.test"] != 1 {
		t.Errorf("within the TTL: %+v, asked %d", sc, r.asked["2.0.0.127.a.test"])
	}
	now = now.Add(time.Second)
	if sc := s.Score(ctx, listed); sc.Cached || r.asked["2.0.0.127.a.test"] != 2 {
		t.Errorf("after the TTL: %+v, asked %d", sc, r.asked["2.0.0.127.a.test"])
	}
	// A long TTL is cut to the maximum.
	r.ttl["2.0.0.127.a.test"], r.ttl["2.0.0.127.b.test"], r.ttl["2.0.0.127.wl.test"] = 7200*time.Second, 9000*time.Second, 8000*time.Second
	now = now.Add(time.Hour)
	if sc := s.Score(ctx, listed); sc.TTL != time.Hour {
		t.Errorf("max TTL: %+v", sc)
	}
	// A resolver that does not give TTLs: the minimum.
	s2 := NewScorer(ScoreOptions{Resolver: &fakeResolver{a: map[string][]string{"2.0.0.127.a.test": {"127.0.0.2"}}}, Sites: mustSites(t, "a.test")})
	if sc := s2.Score(ctx, listed); sc.Total != 1 || sc.TTL != DefaultMinTTL {
		t.Errorf("no TTLs: %+v", sc)
	}
}

func TestScoreCacheBound(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := newTTLResolver()
	s := NewScorer(ScoreOptions{Resolver: r, Sites: mustSites(t, "a.test"), CacheSize: 2, Now: func() time.Time { return now }})
	ctx := context.Background()
	for _, a := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		s.Score(ctx, netip.MustParseAddr(a))
	}
	if len(s.cache) != 2 {
		t.Fatalf("cache holds %d clients, want 2", len(s.cache))
	}
	// Once the kept scores expire, a new client takes their place.
	now = now.Add(2 * time.Hour)
	s.Score(ctx, netip.MustParseAddr("127.0.0.5"))
	if _, ok := s.cache[netip.MustParseAddr("127.0.0.5")]; !ok || len(s.cache) != 1 {
		t.Errorf("cache after expiry: %v", s.cache)
	}
}
