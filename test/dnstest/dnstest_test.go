package dnstest

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var testZone = `
$ORIGIN example.test.
$TTL 300
@        SOA   ns hostmaster 1 3600 600 86400 30
@        MX    10 mx
mx       A     192.0.2.1
mx       AAAA  2001:db8::1
alias    CNAME mx
dangling CNAME gone
*.wild   TXT   "wildcard"
a.b      TXT   "deep"
big      TXT   "` + strings.Repeat("x", 250) + `" "` + strings.Repeat("y", 250) + `" "` + strings.Repeat("z", 250) + `"
`

func ask(t *testing.T, s *Server, network, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return resp
}

func TestAnswers(t *testing.T) {
	s := Start(t, testZone)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr = %q, want loopback", s.Addr())
	}
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answers []string // types of the answer section, in order
		soa     bool     // a SOA in the authority section
	}{
		{"A", "mx.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"A"}, false},
		{"AAAA", "MX.Example.Test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA"}, false},
		{"MX at apex", "example.test.", dns.TypeMX, dns.RcodeSuccess, []string{"MX"}, false},
		{"CNAME followed", "alias.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"CNAME", "A"}, false},
		{"CNAME to nothing", "dangling.example.test.", dns.TypeA, dns.RcodeNameError, []string{"CNAME"}, true},
		{"NODATA", "mx.example.test.", dns.TypeTXT, dns.RcodeSuccess, nil, true},
		{"empty non-terminal", "b.example.test.", dns.TypeTXT, dns.RcodeSuccess, nil, true},
		{"NXDOMAIN", "nope.example.test.", dns.TypeA, dns.RcodeNameError, nil, true},
		{"outside the zone", "example.com.", dns.TypeA, dns.RcodeNameError, nil, true},
		{"wildcard", "any.wild.example.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := ask(t, s, "udp", tc.qname, tc.qtype, false)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			var types []string
			for _, rr := range resp.Answer {
				types = append(types, dns.TypeToString[rr.Header().Rrtype])
			}
			if strings.Join(types, " ") != strings.Join(tc.answers, " ") {
				t.Errorf("answer types %v, want %v", types, tc.answers)
			}
			gotSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA
			if gotSOA != tc.soa {
				t.Errorf("authority %v, want SOA: %v", resp.Ns, tc.soa)
			}
			if gotSOA && resp.Ns[0].Header().Ttl != 30 {
				t.Errorf("negative TTL %d, want the SOA minimum 30", resp.Ns[0].Header().Ttl)
			}
		})
	}
	if got := s.QueryCount("mx.example.test", dns.TypeA); got != 1 {
		t.Errorf("QueryCount(mx A) = %d, want 1", got)
	}
	if got := s.Queries(); got != len(tests) {
		t.Errorf("Queries = %d, want %d", got, len(tests))
	}
}

func TestTruncation(t *testing.T) {
	s := Start(t, testZone)
	if resp := ask(t, s, "udp", "big.example.test.", dns.TypeTXT, false); !resp.Truncated {
		t.Errorf("UDP without EDNS0: not truncated (%d answers)", len(resp.Answer))
	}
	if resp := ask(t, s, "udp", "big.example.test.", dns.TypeTXT, true); resp.Truncated || len(resp.Answer) != 1 {
		t.Errorf("UDP with EDNS0 1232: truncated %v, %d answers", resp.Truncated, len(resp.Answer))
	}
	if resp := ask(t, s, "tcp", "big.example.test.", dns.TypeTXT, false); resp.Truncated || len(resp.Answer) != 1 {
		t.Errorf("TCP: truncated %v, %d answers", resp.Truncated, len(resp.Answer))
	}
	if got := s.TCPQueries(); got != 1 {
		t.Errorf("TCPQueries = %d, want 1", got)
	}
}

func TestFaults(t *testing.T) {
	s := Start(t, testZone)
	s.SetServfail("mx.example.test")
	if resp := ask(t, s, "udp", "mx.example.test.", dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if resp := ask(t, s, "udp", "example.test.", dns.TypeMX, false); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("other name: rcode %s, want NOERROR", dns.RcodeToString[resp.Rcode])
	}
	s.ClearServfail("mx.example.test.")
	if resp := ask(t, s, "udp", "mx.example.test.", dns.TypeA, false); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("after ClearServfail: rcode %s", dns.RcodeToString[resp.Rcode])
	}

	s.SetDelay(300 * time.Millisecond)
	start := time.Now()
	ask(t, s, "udp", "mx.example.test.", dns.TypeA, false)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %v, want the 300ms delay", d)
	}
	s.SetDelay(time.Hour) // a query left waiting must not hold up cleanup
	c := &dns.Client{Timeout: 100 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("mx.example.test.", dns.TypeA)
	if _, _, err := c.Exchange(m, s.Addr()); err == nil {
		t.Error("answer despite an hour's delay")
	}
}

func TestMadeUpSOA(t *testing.T) {
	s := Start(t, "a.zen.test. 60 A 127.0.0.2\nb.c.zen.test. 60 A 127.0.0.3\n")
	resp := ask(t, s, "udp", "x.zen.test.", dns.TypeA, false)
	if resp.Rcode != dns.RcodeNameError || len(resp.Ns) != 1 {
		t.Fatalf("rcode %s, authority %v", dns.RcodeToString[resp.Rcode], resp.Ns)
	}
	if got := resp.Ns[0].Header().Name; got != "zen.test." {
		t.Errorf("made-up SOA at %q, want zen.test.", got)
	}
}

func TestSetZone(t *testing.T) {
	s := Start(t, "old.test. 60 A 192.0.2.1\n")
	if err := s.SetZone("new.test. 60 A 192.0.2.2\n"); err != nil {
		t.Fatal(err)
	}
	if resp := ask(t, s, "udp", "old.test.", dns.TypeA, false); resp.Rcode != dns.RcodeNameError {
		t.Errorf("old name still answered")
	}
	if err := s.SetZone("bad.test. 60 A not-an-address\n"); err == nil {
		t.Error("SetZone accepted a bad zone")
	}
	if resp := ask(t, s, "udp", "new.test.", dns.TypeA, false); len(resp.Answer) != 1 {
		t.Errorf("a bad zone replaced the good one")
	}
}

// TestStartAt: a server on a given address (here port 53, as a C-library
// resolver asks) answers there, and a second one on the same address is an
// error the caller can act on, not a failed test.
func TestStartAt(t *testing.T) {
	const addr = "127.53.255.254:53"
	s, err := StartAt(t, testZone, addr)
	if err != nil {
		t.Fatalf("StartAt(%s): %v (the tests run as root: port 53 must bind)", addr, err)
	}
	if s.Addr() != addr {
		t.Errorf("Addr = %q, want %q", s.Addr(), addr)
	}
	for _, network := range []string{"udp", "tcp"} {
		if resp := ask(t, s, network, "mx.example.test.", dns.TypeA, false); len(resp.Answer) != 1 {
			t.Errorf("%s: answer %v, want the A record", network, resp.Answer)
		}
	}
	if _, err := StartAt(t, testZone, addr); err == nil {
		t.Errorf("a second StartAt(%s) succeeded", addr)
	}
}
