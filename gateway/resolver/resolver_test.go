package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"postgate/test/dnstest"
)

// TestMain makes any read of resolv.conf a failure: every test names its servers, so none can
// reach the machine's resolver.
func TestMain(m *testing.M) {
	readResolvConf = func(path string) (*dns.ClientConfig, error) {
		panic("resolver test read " + path)
	}
	os.Exit(m.Run())
}

var bigTXT = strings.Repeat("a", 255) + strings.Repeat("b", 255) + strings.Repeat("c", 255) +
	strings.Repeat("d", 255) + strings.Repeat("e", 255) + strings.Repeat("f", 255)

var zone = `
$ORIGIN example.test.
$TTL 300
@          SOA   ns hostmaster 1 3600 600 86400 60
@          MX    20 mx2
@          MX    10 mx1b
@          MX    10 mx1a
@          MX    30 mx3
mx1a       A     192.0.2.1
mx1a       A     192.0.2.2
mx1a       AAAA  2001:db8::1
v4only     A     192.0.2.4
v6only     AAAA  2001:db8::6
alias      CNAME mx1a
nullmx     MX    0 .
zone2      NS    ns2.example.test.
zone2      NS    ns1.example.test.
spf        TXT   "v=spf1 " "ip4:192.0.2.0/24 " "-all"
spf        TXT   "second record"
big        TXT   "` + splitTXT(bigTXT) + `"
short      30    A 192.0.2.30
tiny       1     A 192.0.2.31
long       3600  A 192.0.2.32
broken     A     192.0.2.99
1.2.0.192.in-addr.arpa.  PTR mx1a.example.test.
1.2.0.192.in-addr.arpa.  PTR other.example.test.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR mx1a.example.test.
`

func splitTXT(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, s[:255])
		s = s[255:]
	}
	return strings.Join(append(parts, s), `" "`)
}

// clock is a settable time for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newResolver(t *testing.T, opts Options, servers ...*dnstest.Server) *Resolver {
	t.Helper()
	for _, s := range servers {
		opts.Servers = append(opts.Servers, s.Addr())
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dnsErr asserts that err is a bare *net.DNSError, as the spf library needs.
func dnsErr(t *testing.T, err error) *net.DNSError {
	t.Helper()
	de, ok := err.(*net.DNSError)
	if !ok {
		t.Fatalf("error %v (%T), want a bare *net.DNSError", err, err)
	}
	return de
}

func TestServersFromConfigNeverReadResolvConf(t *testing.T) {
	reads := 0
	saved := readResolvConf
	t.Cleanup(func() { readResolvConf = saved })
	readResolvConf = func(path string) (*dns.ClientConfig, error) {
		reads++
		return dns.ClientConfigFromFile(path)
	}

	r, err := New(Options{Servers: []string{"127.0.0.1:5353", "192.0.2.53", "[::1]:5300", "[2001:db8::53]"}})
	if err != nil {
		t.Fatal(err)
	}
	if reads != 0 {
		t.Errorf("New with Servers read resolv.conf %d times", reads)
	}
	want := []string{"127.0.0.1:5353", "192.0.2.53:53", "[::1]:5300", "[2001:db8::53]:53"}
	if got := r.Servers(); !slices.Equal(got, want) {
		t.Errorf("Servers() = %v, want %v", got, want)
	}
	for _, bad := range []string{":53", "127.0.0.1:0", "127.0.0.1:dns", "127.0.0.1:70000"} {
		if _, err := New(Options{Servers: []string{bad}}); err == nil {
			t.Errorf("New accepted server %q", bad)
		}
	}

	// Without Servers: the resolv.conf given, port 53, its timeout and attempts.
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "search example.test\nnameserver 192.0.2.10\nnameserver 2001:db8::10\noptions timeout:3 attempts:4\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = New(Options{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Errorf("resolv.conf read %d times, want 1", reads)
	}
	want = []string{"192.0.2.10:53", "[2001:db8::10]:53"}
	if got := r.Servers(); !slices.Equal(got, want) {
		t.Errorf("Servers() = %v, want %v", got, want)
	}
	if r.timeout != 3*time.Second || r.attempts != 4 {
		t.Errorf("timeout %v attempts %d, want resolv.conf's 3s and 4", r.timeout, r.attempts)
	}
	r, err = New(Options{ResolvConf: path, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.timeout != time.Second || r.attempts != 1 {
		t.Errorf("timeout %v attempts %d, want the options' 1s and 1", r.timeout, r.attempts)
	}

	// No file: the local host, as the C library does.
	r, err = New(Options{ResolvConf: filepath.Join(t.TempDir(), "missing")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Servers(), []string{"127.0.0.1:53", "[::1]:53"}; !slices.Equal(got, want) {
		t.Errorf("Servers() = %v, want %v", got, want)
	}
	if r.timeout != DefaultTimeout || r.attempts != DefaultAttempts {
		t.Errorf("defaults: timeout %v attempts %d", r.timeout, r.attempts)
	}
}

func TestLookupMX(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	ctx := t.Context()

	mxs, err := r.LookupMX(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mx := range mxs {
		got = append(got, mx.Host+"/"+string(rune('0'+mx.Pref/10)))
	}
	// Sorted by preference; the two of preference 10 keep the server's order.
	want := []string{"mx1b.example.test./1", "mx1a.example.test./1", "mx2.example.test./2", "mx3.example.test./3"}
	if !slices.Equal(got, want) {
		t.Errorf("LookupMX = %v, want %v", got, want)
	}

	mxs, err = r.LookupMX(ctx, "nullmx.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	if len(mxs) != 1 || mxs[0].Host != "." || mxs[0].Pref != 0 {
		t.Errorf("null MX = %+v, want one MX 0 .", mxs)
	}
}

func TestLookupNS(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	ctx := t.Context()

	nss, err := r.LookupNS(ctx, "zone2.example.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ns := range nss {
		got = append(got, ns.Host)
	}
	// The server's order, not sorted.
	if want := []string{"ns2.example.test.", "ns1.example.test."}; !slices.Equal(got, want) {
		t.Errorf("LookupNS = %v, want %v", got, want)
	}
	var de *net.DNSError
	if _, err := r.LookupNS(ctx, "mx1a.example.test"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("LookupNS of a name without NS: %v, want not found", err)
	}
	s.SetServfail("zone2.example.test")
	r2 := newResolver(t, Options{}, s)
	if _, err := r2.LookupNS(ctx, "zone2.example.test"); !errors.As(err, &de) || !de.IsTemporary {
		t.Errorf("LookupNS of a failing name: %v, want temporary", err)
	}
}

func TestLookupHost(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	ctx := t.Context()

	tests := []struct {
		name string
		host string
		want []string
	}{
		{"A then AAAA", "mx1a.example.test", []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}},
		{"A only", "v4only.example.test.", []string{"192.0.2.4"}},
		{"AAAA only", "v6only.example.test.", []string{"2001:db8::6"}},
		{"through a CNAME", "alias.example.test.", []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}},
		{"IPv4 literal", "198.51.100.7", []string{"198.51.100.7"}},
		{"IPv6 literal", "2001:db8::99", []string{"2001:db8::99"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addrs, err := r.LookupHost(ctx, tc.host)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range addrs {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("LookupHost(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
	if n := s.QueryCount("198.51.100.7", dns.TypeA) + s.QueryCount("7.100.51.198.in-addr.arpa", dns.TypePTR); n != 0 {
		t.Errorf("a literal address made %d queries", n)
	}

	ips, err := r.LookupIP(ctx, "ip6", "mx1a.example.test")
	if err != nil || len(ips) != 1 || !ips[0].Equal(net.ParseIP("2001:db8::1")) {
		t.Errorf("LookupIP(ip6) = %v, %v", ips, err)
	}
	ips, err = r.LookupIP(ctx, "ip4", "mx1a.example.test")
	if err != nil || len(ips) != 2 || !ips[0].Equal(net.ParseIP("192.0.2.1")) {
		t.Errorf("LookupIP(ip4) = %v, %v", ips, err)
	}
	if _, err := r.LookupIP(ctx, "ip4", "v6only.example.test"); err == nil || !dnsErr(t, err).IsNotFound {
		t.Errorf("LookupIP(ip4) of an IPv6-only host: %v, want not found", err)
	}
	if _, err := r.LookupIP(ctx, "tcp", "mx1a.example.test"); err == nil {
		t.Error("LookupIP accepted network tcp")
	}
}

func TestLookupTXT(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	txts, err := r.LookupTXT(t.Context(), "spf.example.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"v=spf1 ip4:192.0.2.0/24 -all", "second record"}
	if !slices.Equal(txts, want) {
		t.Errorf("LookupTXT = %q, want %q", txts, want)
	}
}

func TestLookupAddr(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	tests := []struct {
		addr string
		want []string
	}{
		{"192.0.2.1", []string{"mx1a.example.test.", "other.example.test."}},
		{"::ffff:192.0.2.1", []string{"mx1a.example.test.", "other.example.test."}},
		{"2001:db8::1", []string{"mx1a.example.test."}},
	}
	for _, tc := range tests {
		names, err := r.LookupAddr(t.Context(), netip.MustParseAddr(tc.addr))
		if err != nil {
			t.Errorf("LookupAddr(%s): %v", tc.addr, err)
			continue
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("LookupAddr(%s) = %v, want %v", tc.addr, names, tc.want)
		}
	}
	_, err := r.LookupAddr(t.Context(), netip.MustParseAddr("192.0.2.200"))
	if de := dnsErr(t, err); !de.IsNotFound {
		t.Errorf("unknown PTR: %+v, want not found", de)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	ctx := t.Context()
	tests := []struct {
		name   string
		lookup func() error
	}{
		{"NXDOMAIN MX", func() error { _, err := r.LookupMX(ctx, "nowhere.example.test"); return err }},
		{"NODATA MX", func() error { _, err := r.LookupMX(ctx, "mx1a.example.test"); return err }},
		{"NXDOMAIN TXT", func() error { _, err := r.LookupTXT(ctx, "nowhere.example.test"); return err }},
		{"NODATA TXT", func() error { _, err := r.LookupTXT(ctx, "v4only.example.test"); return err }},
		{"NXDOMAIN host", func() error { _, err := r.LookupHost(ctx, "nowhere.example.test"); return err }},
		{"outside the zone", func() error { _, err := r.LookupHost(ctx, "example.invalid"); return err }},
		{"bad name", func() error { _, err := r.LookupHost(ctx, "a..b"); return err }},
		{"empty name", func() error { _, err := r.LookupMX(ctx, ""); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			de := dnsErr(t, tc.lookup())
			if !de.IsNotFound || de.IsTemporary || de.IsTimeout {
				t.Errorf("%+v, want IsNotFound only", de)
			}
			if de.Err != "no such host" {
				t.Errorf("Err = %q, want the standard library's text", de.Err)
			}
		})
	}
	if n := s.QueryCount("a..b", dns.TypeA); n != 0 {
		t.Errorf("a bad name made %d queries", n)
	}
}

func TestServfail(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	s.SetServfail("broken.example.test")
	clock := time.Now()
	r := newResolver(t, Options{Attempts: 2, Now: func() time.Time { return clock }}, s)

	_, err := r.LookupHost(t.Context(), "broken.example.test")
	de := dnsErr(t, err)
	if !de.IsTemporary || de.IsNotFound || de.IsTimeout {
		t.Errorf("%+v, want IsTemporary only", de)
	}
	if de.Server != s.Addr() {
		t.Errorf("Server = %q, want %q", de.Server, s.Addr())
	}
	if n := s.QueryCount("broken.example.test", dns.TypeA); n != 2 {
		t.Errorf("%d A queries, want 2 (one per attempt)", n)
	}
	// A failure is answered from the cache for FailureTTL, with the same
	// error; then asked again.
	_, err = r.LookupHost(t.Context(), "broken.example.test")
	if de2 := dnsErr(t, err); !de2.IsTemporary || de2.Server != s.Addr() {
		t.Errorf("cached failure %+v", de2)
	}
	if n := s.QueryCount("broken.example.test", dns.TypeA); n != 2 {
		t.Errorf("%d A queries after a second lookup within FailureTTL, want 2", n)
	}
	clock = clock.Add(DefaultFailureTTL)
	r.LookupHost(t.Context(), "broken.example.test")
	if n := s.QueryCount("broken.example.test", dns.TypeA); n != 4 {
		t.Errorf("%d A queries after FailureTTL, want 4", n)
	}
	if st := r.Stats(); st.Errors != 4 || st.Timeouts != 0 {
		t.Errorf("Stats %+v, want 4 errors (A and AAAA, twice), no timeouts", st)
	}
}

func TestNextServer(t *testing.T) {
	t.Parallel()
	sick := dnstest.Start(t, zone)
	sick.SetServfail("*")
	healthy := dnstest.Start(t, zone)

	// A port where nothing listens: UDP to it is refused.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()

	r, err := New(Options{Servers: []string{closed, sick.Addr(), healthy.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	mxs, err := r.LookupMX(t.Context(), "example.test")
	if err != nil || len(mxs) != 4 {
		t.Fatalf("LookupMX = %v, %v; want the healthy server's answer", mxs, err)
	}
	if sick.Queries() != 1 || healthy.Queries() != 1 {
		t.Errorf("queries: sick %d, healthy %d; want 1 each", sick.Queries(), healthy.Queries())
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	s.SetDelay(5 * time.Second)
	r := newResolver(t, Options{Timeout: 100 * time.Millisecond, Attempts: 2}, s)

	start := time.Now()
	_, err := r.LookupMX(t.Context(), "example.test")
	elapsed := time.Since(start)
	de := dnsErr(t, err)
	if !de.IsTimeout || !de.IsTemporary || de.IsNotFound {
		t.Errorf("%+v, want IsTimeout and IsTemporary", de)
	}
	if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("gave up after %v, want about 2 × 100ms", elapsed)
	}
	if n := s.Queries(); n != 2 {
		t.Errorf("%d queries, want 2", n)
	}
	if st := r.Stats(); st.Timeouts != 1 || st.Errors != 1 {
		t.Errorf("Stats %+v, want 1 error, 1 timeout", st)
	}
}

func TestTCPFallback(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{}, s)
	txts, err := r.LookupTXT(t.Context(), "big.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(txts) != 1 || txts[0] != bigTXT {
		t.Errorf("LookupTXT gave %d records, lengths %d, want one of %d bytes", len(txts), len(txts[0]), len(bigTXT))
	}
	if s.Queries() != 2 || s.TCPQueries() != 1 {
		t.Errorf("queries %d (TCP %d), want UDP then TCP", s.Queries(), s.TCPQueries())
	}
	if st := r.Stats(); st.TCPFallbacks != 1 || st.Queries != 2 {
		t.Errorf("Stats %+v, want 1 TCP fallback of 2 queries", st)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	clk := newClock()
	r := newResolver(t, Options{Now: clk.Now}, s)
	ctx := t.Context()

	for range 3 {
		if _, err := r.LookupMX(ctx, "example.test"); err != nil {
			t.Fatal(err)
		}
	}
	// Names are case-insensitive and absolute with or without the dot.
	if _, err := r.LookupMX(ctx, "EXAMPLE.test."); err != nil {
		t.Fatal(err)
	}
	if n := s.QueryCount("example.test", dns.TypeMX); n != 1 {
		t.Errorf("%d MX queries, want 1", n)
	}
	if st := r.Stats(); st.Lookups != 4 || st.CacheHits != 3 || st.Queries != 1 {
		t.Errorf("Stats %+v, want 4 lookups, 3 cache hits, 1 query", st)
	}

	// A cached answer is the caller's to change.
	mxs, _ := r.LookupMX(ctx, "example.test")
	mxs[0].Host = "changed."
	mxs, _ = r.LookupMX(ctx, "example.test")
	if mxs[0].Host != "mx1b.example.test." {
		t.Errorf("a caller changed the cache: %q", mxs[0].Host)
	}
}

func TestNegativeCache(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	clk := newClock()
	r := newResolver(t, Options{Now: clk.Now}, s)
	ctx := t.Context()

	lookups := []struct {
		name  string
		qtype uint16
		do    func() error
	}{
		{"nowhere.example.test", dns.TypeMX, func() error { _, err := r.LookupMX(ctx, "nowhere.example.test"); return err }},
		{"v4only.example.test", dns.TypeTXT, func() error { _, err := r.LookupTXT(ctx, "v4only.example.test"); return err }},
	}
	for _, l := range lookups {
		for range 2 {
			if de := dnsErr(t, l.do()); !de.IsNotFound {
				t.Fatalf("%s: %+v", l.name, de)
			}
		}
		if n := s.QueryCount(l.name, l.qtype); n != 1 {
			t.Errorf("%s: %d queries, want 1 (negative answer cached)", l.name, n)
		}
	}
	// The SOA's minimum (60s) is the negative TTL.
	clk.Advance(59 * time.Second)
	for _, l := range lookups {
		l.do()
		if n := s.QueryCount(l.name, l.qtype); n != 1 {
			t.Errorf("%s at 59s: %d queries, want 1", l.name, n)
		}
	}
	clk.Advance(time.Second)
	for _, l := range lookups {
		l.do()
		if n := s.QueryCount(l.name, l.qtype); n != 2 {
			t.Errorf("%s at 60s: %d queries, want 2", l.name, n)
		}
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		host    string
		opts    Options
		fresh   time.Duration // still cached this long after the first lookup
		expired time.Duration // asked again this long after
	}{
		{"record TTL", "short.example.test", Options{}, 29 * time.Second, 30 * time.Second},
		{"MinTTL raises", "tiny.example.test", Options{MinTTL: 10 * time.Second}, 9 * time.Second, 10 * time.Second},
		{"MaxTTL caps", "long.example.test", Options{MaxTTL: time.Minute}, 59 * time.Second, time.Minute},
		{"CNAME TTL counts", "alias.example.test", Options{}, 299 * time.Second, 300 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := dnstest.Start(t, zone)
			clk := newClock()
			tc.opts.Now = clk.Now
			r := newResolver(t, tc.opts, s)
			lookup := func() {
				t.Helper()
				if _, err := r.LookupIP(t.Context(), "ip4", tc.host); err != nil {
					t.Fatal(err)
				}
			}
			lookup()
			clk.Advance(tc.fresh)
			lookup()
			if n := s.QueryCount(tc.host, dns.TypeA); n != 1 {
				t.Errorf("after %v: %d queries, want 1", tc.fresh, n)
			}
			clk.Advance(tc.expired - tc.fresh)
			lookup()
			if n := s.QueryCount(tc.host, dns.TypeA); n != 2 {
				t.Errorf("after %v: %d queries, want 2", tc.expired, n)
			}
		})
	}
}

func TestCacheSize(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	r := newResolver(t, Options{CacheSize: 2}, s)
	ctx := t.Context()
	hosts := []string{"v4only.example.test", "short.example.test", "long.example.test"}
	for _, h := range hosts {
		r.LookupIP(ctx, "ip4", h)
	}
	if st := r.Stats(); st.CacheEntries != 2 {
		t.Errorf("%d cache entries, want 2", st.CacheEntries)
	}
	r.LookupIP(ctx, "ip4", hosts[2]) // still cached
	r.LookupIP(ctx, "ip4", hosts[0]) // the least recently used: gone
	if n := s.QueryCount(hosts[2], dns.TypeA); n != 1 {
		t.Errorf("%s: %d queries, want 1", hosts[2], n)
	}
	if n := s.QueryCount(hosts[0], dns.TypeA); n != 2 {
		t.Errorf("%s: %d queries, want 2", hosts[0], n)
	}

	off := newResolver(t, Options{CacheSize: -1}, s)
	off.LookupIP(ctx, "ip4", hosts[1])
	off.LookupIP(ctx, "ip4", hosts[1])
	if n := s.QueryCount(hosts[1], dns.TypeA); n != 3 {
		t.Errorf("cache off: %d queries, want 3", n)
	}
}

func TestInflightDeduplication(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	s.SetDelay(200 * time.Millisecond)
	r := newResolver(t, Options{}, s)

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			mxs, err := r.LookupMX(t.Context(), "example.test")
			if err == nil && len(mxs) != 4 {
				err = errors.New("wrong answer")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if q := s.QueryCount("example.test", dns.TypeMX); q != 1 {
		t.Errorf("%d concurrent lookups made %d queries, want 1", n, q)
	}
	if st := r.Stats(); st.Lookups != n || st.Queries != 1 || st.Shared+st.CacheHits != n-1 {
		t.Errorf("Stats %+v", st)
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	s.SetDelay(time.Hour)
	r := newResolver(t, Options{Timeout: time.Hour}, s)

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.LookupMX(ctx, "example.test")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned %v after cancellation", d)
	}
	de := dnsErr(t, err)
	if !errors.Is(err, context.Canceled) || !de.IsTemporary || de.IsNotFound {
		t.Errorf("%+v, want a temporary error wrapping context.Canceled", de)
	}

	// A deadline reads as a timeout.
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = r.LookupTXT(ctx, "spf.example.test")
	if de := dnsErr(t, err); !de.IsTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%+v, want a timeout", de)
	}

	// The last caller to leave ends the exchange: nothing is left in flight.
	r.mu.Lock()
	left := len(r.inflight)
	r.mu.Unlock()
	if left != 0 {
		t.Errorf("%d exchanges still in flight", left)
	}
	s.SetDelay(0)
	if _, err := r.LookupMX(t.Context(), "example.test"); err != nil {
		t.Errorf("after cancellation: %v", err)
	}
}

func TestCancelOneWaiter(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, zone)
	s.SetDelay(300 * time.Millisecond)
	r := newResolver(t, Options{}, s)

	// The caller who started the exchange leaves; the one who joined it still gets the answer.
	early, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	firstErr := make(chan error, 1)
	go func() {
		_, err := r.LookupMX(early, "example.test")
		firstErr <- err
	}()
	for s.Queries() == 0 {
		time.Sleep(time.Millisecond)
	}
	mxs, err := r.LookupMX(t.Context(), "example.test")
	if err != nil || len(mxs) != 4 {
		t.Errorf("joined lookup: %v, %v", mxs, err)
	}
	if err := <-firstErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("first caller: %v, want its deadline", err)
	}
	if n := s.Queries(); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
}
