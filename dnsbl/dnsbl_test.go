package dnsbl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// fakeResolver answers from maps; a name in fail fails for now.
type fakeResolver struct {
	a     map[string][]string
	txt   map[string][]string
	fail  map[string]bool
	asked []string
}

func (f *fakeResolver) LookupIP(_ context.Context, network, host string) ([]net.IP, error) {
	if network != "ip4" {
		return nil, errors.New("network " + network)
	}
	f.asked = append(f.asked, "A "+host)
	if f.fail[host] {
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true}
	}
	var ips []net.IP
	for _, s := range f.a[host] {
		ips = append(ips, net.ParseIP(s))
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func (f *fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.asked = append(f.asked, "TXT "+name)
	if t, ok := f.txt[name]; ok {
		return t, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func mustSite(t *testing.T, arg string) Site {
	t.Helper()
	s, err := ParseSite(arg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAddrQuery(t *testing.T) {
	cases := map[string]string{
		"127.0.0.2":         "2.0.0.127.zen.test",
		"192.0.2.10":        "10.2.0.192.zen.test",
		"::ffff:192.0.2.1":  "1.2.0.192.zen.test",
		"2001:db8::1":       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test",
		"2001:db8:abcd::fe": "e.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.8.b.d.0.1.0.0.2.zen.test",
	}
	for addr, want := range cases {
		if got := AddrQuery(netip.MustParseAddr(addr), "zen.test"); got != want {
			t.Errorf("AddrQuery(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestDomainQuery(t *testing.T) {
	cases := []struct {
		what, want string // want "" means no query
	}{
		{"spam.test", "spam.test.dbl.test"},
		{"user@spam.test", "spam.test.dbl.test"},
		{"a@b@Spam.Test", "Spam.Test.dbl.test"},
		{"user@[192.0.2.1]", ""},
		{"user@", ""},
		{"", ""},
		{"host.example.123", ""},
		{"192.0.2.1", ""},
		{"bad_-.test", ""},
		{"foo.", ""},
		{"user@bücher.test", "xn--bcher-kva.test.dbl.test"},
		{"123.example.test", "123.example.test.dbl.test"},
	}
	for _, c := range cases {
		got, ok := DomainQuery(c.what, "dbl.test")
		if ok != (c.want != "") || got != c.want {
			t.Errorf("DomainQuery(%q) = %q, %v; want %q", c.what, got, ok, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	r := &fakeResolver{
		a: map[string][]string{
			"2.0.0.127.zen.test":  {"127.0.0.2", "127.0.0.10"},
			"3.0.0.127.zen.test":  {"127.0.0.1"},
			"spam.test.dbl.test":  {"127.0.1.2"},
			"5.0.0.127.zen.test":  {"127.0.0.4"},
			"2.0.0.127.bare.test": {"127.0.0.2"},
		},
		txt: map[string][]string{
			"2.0.0.127.zen.test": {"Listed in zen.test", "see http://zen.test/q/127.0.0.2"},
			"spam.test.dbl.test": {"Domain listed"},
		},
		fail: map[string]bool{"4.0.0.127.zen.test": true},
	}
	c := New(Options{Resolver: r})
	ctx := context.Background()
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }

	res := c.CheckAddr(ctx, mustSite(t, "zen.test"), addr("127.0.0.2"))
	if res.Status != Listed || res.TXT != "Listed in zen.test / see http://zen.test/q/127.0.0.2" || len(res.Addrs) != 2 {
		t.Errorf("listed: %+v", res)
	}
	// The filter keeps only the A records it passes.
	res = c.CheckAddr(ctx, mustSite(t, "zen.test=127.0.0.[10..11]"), addr("127.0.0.2"))
	if res.Status != Listed || len(res.Addrs) != 1 || res.Addrs[0] != addr("127.0.0.10") {
		t.Errorf("filtered: %+v", res)
	}
	// No A record passes: not listed, and no TXT query.
	r.asked = nil
	res = c.CheckAddr(ctx, mustSite(t, "zen.test=127.0.0.2"), addr("127.0.0.5"))
	if res.Status != NotListed || strings.Join(r.asked, ",") != "A 5.0.0.127.zen.test" {
		t.Errorf("filter miss: %+v asked %v", res, r.asked)
	}
	// Listed without TXT: an empty reason.
	if res = c.CheckAddr(ctx, mustSite(t, "bare.test"), addr("127.0.0.2")); res.Status != Listed || res.TXT != "" {
		t.Errorf("no TXT: %+v", res)
	}
	if res = c.CheckAddr(ctx, mustSite(t, "zen.test"), addr("127.0.0.9")); res.Status != NotListed || res.Err != nil {
		t.Errorf("not listed: %+v", res)
	}
	res = c.CheckAddr(ctx, mustSite(t, "zen.test"), addr("127.0.0.4"))
	var le *LookupError
	if res.Status != Failed || !errors.As(res.Err, &le) {
		t.Fatalf("failure: %+v", res)
	}
	if want := "4.0.0.127.zen.test: RBL lookup error: Host or domain name not found. Name service error for name=4.0.0.127.zen.test type=A: Host not found, try again"; res.Err.Error() != want {
		t.Errorf("error text %q, want %q", res.Err, want)
	}
	var de *net.DNSError
	if !errors.As(res.Err, &de) || !de.IsTimeout {
		t.Errorf("the resolver's error is not kept: %v", res.Err)
	}

	if res = c.CheckDomain(ctx, mustSite(t, "dbl.test"), "user@spam.test"); res.Status != Listed || res.TXT != "Domain listed" || res.Query != "spam.test.dbl.test" {
		t.Errorf("rhsbl: %+v", res)
	}
	r.asked = nil
	if res = c.CheckDomain(ctx, mustSite(t, "dbl.test"), "user@[127.0.0.1]"); res.Status != NotListed || len(r.asked) != 0 {
		t.Errorf("literal: %+v asked %v", res, r.asked)
	}

	// Without a resolver every lookup fails for now.
	if res = New(Options{}).CheckAddr(ctx, mustSite(t, "zen.test"), addr("127.0.0.2")); res.Status != Failed {
		t.Errorf("nil resolver: %+v", res)
	}
}

func TestJoinTXT(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c"}, "a / b / c"},
		{[]string{"caf\u00e9\tbar\x00"}, "caf   bar "},
		{[]string{long, long}, long + " / " + strings.Repeat("x", 197)},
		// 498 bytes leave 2: no room for a separator, the next text runs on.
		{[]string{strings.Repeat("y", 498), "zzz"}, strings.Repeat("y", 498) + "zz"},
	}
	for _, c := range cases {
		if got := joinTXT(c.in); got != c.want {
			t.Errorf("joinTXT(%d texts) = %q (%d bytes), want %d bytes", len(c.in), got, len(got), len(c.want))
		}
	}
}
