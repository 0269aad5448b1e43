package restrictions

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeDNS answers from maps; a name in fail gives a temporary failure for
// every type, a name in no map "not found". It counts the questions.
type fakeDNS struct {
	mx    map[string][]*net.MX
	ns    map[string][]*net.NS
	hosts map[string][]string
	fail  map[string]bool

	mu    sync.Mutex
	asked []string // "TYPE name"
}

func (f *fakeDNS) note(typ, name string) error {
	f.mu.Lock()
	f.asked = append(f.asked, typ+" "+name)
	f.mu.Unlock()
	if f.fail[name] {
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return nil
}

func notFoundErr(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// fakeAnswer is the records of name in m, after noting the question.
func fakeAnswer[T any](f *fakeDNS, typ, name string, m map[string][]T) ([]T, error) {
	if err := f.note(typ, name); err != nil {
		return nil, err
	}
	if rrs, ok := m[name]; ok {
		return rrs, nil
	}
	return nil, notFoundErr(name)
}

func (f *fakeDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return fakeAnswer(f, "MX", name, f.mx)
}

func (f *fakeDNS) LookupNS(_ context.Context, name string) ([]*net.NS, error) {
	return fakeAnswer(f, "NS", name, f.ns)
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]netip.Addr, error) {
	if err := f.note("HOST", host); err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range f.hosts[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, notFoundErr(host)
	}
	return out, nil
}

func serverTestDNS() *fakeDNS {
	return &fakeDNS{
		mx: map[string][]*net.MX{
			"byname.test":  {{Host: "mx.byname.test.", Pref: 10}},
			"byaddr.test":  {{Host: "mx.byaddr.test.", Pref: 10}},
			"parent.test":  {{Host: "mx.sub.bad.test.", Pref: 10}},
			"second.test":  {{Host: "mx.clean.test.", Pref: 10}, {Host: "mx.byname.test.", Pref: 20}},
			"clean.test":   {{Host: "mx.clean.test.", Pref: 10}},
			"literal.test": {{Host: "192.0.2.66", Pref: 10}},
			"nullmx.test":  {{Host: ".", Pref: 0}},
			"noaddr.test":  {{Host: "mx.noaddr.test.", Pref: 10}},
			"okmx.test":    {{Host: "mx.ok.test.", Pref: 10}},
			"v6.test":      {{Host: "mx.v6.test.", Pref: 10}},
		},
		ns: map[string][]*net.NS{
			"nsparent.test": {{Host: "ns.bad.test."}},
			"clean.test":    {{Host: "ns.clean.test."}},
		},
		hosts: map[string][]string{
			"mx.byname.test":    {"192.0.2.10"},
			"mx.byaddr.test":    {"192.0.2.20", "192.0.2.66"},
			"mx.sub.bad.test":   {"192.0.2.11"},
			"mx.clean.test":     {"192.0.2.12"},
			"nomx.test":         {"192.0.2.66"},
			"mx.ok.test":        {"192.0.2.13"},
			"mx.v6.test":        {"192.0.2.14", "2001:db8::66"},
			"ns.clean.test":     {"192.0.2.15"},
			"byname.test":       {"192.0.2.16"},
			"client.test":       {"192.0.2.17"},
			"c.reverse.test":    {"192.0.2.66"},
			"sub.nsparent.test": {"192.0.2.18"},
		},
		fail: map[string]bool{"fail.test": true, "nsfail.test": true},
	}
}

const serverTestTable = "inline:{ {mx.byname.test=REJECT by name}, {bad.test=REJECT parent}, {192.0.2.66=REJECT by address}, {2001:db8::66=REJECT ipv6}, {nxdomain.test=REJECT itself}, mx.ok.test=OK, {byname.test=REJECT domain name} }"

// TestServerAccess: check_*_{mx,ns,a}_access as Postfix's
// check_server_access, against a fake resolver.
func TestServerAccess(t *testing.T) {
	tests := []struct {
		name        string
		restriction string
		req         Request
		opts        func(*Options)
		want        string // reply, "" for no decision
		warn        string // a warning logged, if any
	}{
		{name: "MX by name", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@byname.test"},
			want: "554 5.7.1 <r@byname.test>: Recipient address rejected: by name"},
		{name: "MX by its second address", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@byaddr.test"},
			want: "554 5.7.1 <r@byaddr.test>: Recipient address rejected: by address"},
		{name: "MX in a parent domain", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@parent.test"},
			want: "554 5.7.1 <r@parent.test>: Recipient address rejected: parent"},
		{name: "parent domains only with the leading dot when not in parent_domain_matches_subdomains",
			restriction: "check_recipient_mx_access", req: Request{Recipient: "r@parent.test"},
			opts: func(o *Options) { o.ParentDomainMatchesSubdomains = func(string) bool { return false } }},
		{name: "the second MX matches", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@second.test"},
			want: "554 5.7.1 <r@second.test>: Recipient address rejected: by name"},
		{name: "an MX given as an address", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@literal.test"},
			want: "554 5.7.1 <r@literal.test>: Recipient address rejected: by address"},
		{name: "no MX: the domain itself", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@nomx.test"},
			want: "554 5.7.1 <r@nomx.test>: Recipient address rejected: by address"},
		{name: "no domain: still its own MX, by name", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@nxdomain.test"},
			want: "554 5.7.1 <r@nxdomain.test>: Recipient address rejected: itself"},
		{name: "an MX host without an address", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@noaddr.test"},
			warn: "Unable to look up MX host mx.noaddr.test for Recipient address r@noaddr.test: Name or service not known"},
		{name: "null MX", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@nullmx.test"}},
		{name: "MX lookup fails", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@fail.test"},
			warn: "Unable to look up MX host for fail.test: Host not found, try again"},
		{name: "no match", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@clean.test"}},
		{name: "OK is refused", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@okmx.test"},
			want: "451 4.3.5 Server configuration error", warn: "restriction check_recipient_mx_access returns OK for r@okmx.test"},
		{name: "address literal", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@[192.0.2.66]"},
			want: "554 5.7.1 <r@[192.0.2.66]>: Recipient address rejected: by address"},
		{name: "IPv6 literal", restriction: "check_recipient_a_access", req: Request{Recipient: "r@[IPv6:2001:db8::66]"},
			want: "554 5.7.1 <r@[IPv6:2001:db8::66]>: Recipient address rejected: ipv6"},
		{name: "a literal has no NS", restriction: "check_recipient_ns_access", req: Request{Recipient: "r@[192.0.2.66]"}},
		{name: "IPv6 addresses asked with inet_protocols = all", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@v6.test"},
			want: "554 5.7.1 <r@v6.test>: Recipient address rejected: ipv6"},
		{name: "not with inet_protocols = ipv4", restriction: "check_recipient_mx_access", req: Request{Recipient: "r@v6.test"},
			opts: func(o *Options) { o.InetIPv4 = true }},

		{name: "NS of the closest parent", restriction: "check_sender_ns_access", req: Request{Sender: "s@sub.nsparent.test"},
			want: "554 5.7.1 <s@sub.nsparent.test>: Sender address rejected: parent"},
		{name: "no NS up to the top-level domain: the warning names the target", restriction: "check_recipient_ns_access", req: Request{Recipient: "r@x.nons.test"},
			warn: "Unable to look up NS host for r@x.nons.test: Host not found"},
		{name: "NS lookup fails", restriction: "check_sender_ns_access", req: Request{Sender: "s@nsfail.test"},
			warn: "Unable to look up NS host for nsfail.test: Host not found, try again"},
		{name: "the null sender is not looked up", restriction: "check_sender_mx_access", req: Request{Sender: ""}},

		{name: "A: a name never matches", restriction: "check_helo_a_access", req: Request{Helo: "byname.test"}},
		{name: "A: by address", restriction: "check_helo_a_access", req: Request{Helo: "nomx.test"},
			want: "554 5.7.1 <nomx.test>: Helo command rejected: by address"},
		{name: "A: a HELO address literal", restriction: "check_helo_a_access", req: Request{Helo: "[192.0.2.66]"},
			want: "554 5.7.1 <[192.0.2.66]>: Helo command rejected: by address"},
		{name: "a numeric HELO name is its own MX, not asked in DNS", restriction: "check_helo_mx_access", req: Request{Helo: "192.0.2.66"},
			want: "554 5.7.1 <192.0.2.66>: Helo command rejected: by address"},
		{name: "no HELO", restriction: "check_helo_mx_access", req: Request{}},

		{name: "client: the verified name, reply name[addr]", restriction: "check_client_mx_access",
			req:  Request{ClientName: "byname.test", ReverseName: "byname.test"},
			want: "554 5.7.1 <byname.test[192.0.2.1]>: Client host rejected: by name"},
		{name: "client: unknown is not looked up", restriction: "check_client_a_access",
			req: Request{ClientName: "unknown", ReverseName: "c.reverse.test"}},
		{name: "reverse client: the unverified name", restriction: "check_reverse_client_hostname_a_access",
			req:  Request{ClientName: "unknown", ReverseName: "c.reverse.test"},
			want: "554 5.7.1 <c.reverse.test>: Unverified Client host rejected: by address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := serverTestDNS()
			o := Options{DNS: dns, DelayReject: true}
			if tc.opts != nil {
				tc.opts(&o)
			}
			l := mustCompile(t, map[string]string{
				"smtpd_recipient_restrictions": tc.restriction + " " + serverTestTable + ", permit",
			}, o)
			req := tc.req
			req.ClientAddr = netip.MustParseAddr("192.0.2.1")
			if req.ClientName == "" {
				req.ClientName, req.ReverseName = "unknown", "unknown"
			}
			if req.Recipient == "" {
				req.Recipient = "r@clean.test"
			}
			v := l.Check(context.Background(), Rcpt, &req, nil)
			got := ""
			if v.Decision == Reject {
				got = v.Reply.String()
			} else if v.Decision != Permit {
				t.Errorf("decision %v, want reject or permit", v.Decision)
			}
			if got != tc.want {
				t.Errorf("reply %q, want %q", got, tc.want)
			}
			if tc.req.Helo == "192.0.2.66" && len(dns.asked) > 0 {
				t.Errorf("questions %v, want none", dns.asked)
			}
			if tc.warn != "" && !hasLog(v.Log, LogWarning, tc.warn) {
				t.Errorf("no warning %q in %+v", tc.warn, v.Log)
			}
		})
	}
}

func hasLog(log []LogEvent, kind LogKind, text string) bool {
	for _, ev := range log {
		if ev.Kind == kind && strings.Contains(ev.Text, text) {
			return true
		}
	}
	return false
}

// TestServerAccessLookups: the order of the questions, and that a table
// entry for the server's name stops the search before its addresses are
// asked.
func TestServerAccessLookups(t *testing.T) {
	dns := serverTestDNS()
	l := mustCompile(t, map[string]string{
		"smtpd_recipient_restrictions": "check_recipient_mx_access " + serverTestTable + ", check_recipient_ns_access " + serverTestTable + ", permit",
	}, Options{DNS: dns, DelayReject: true})
	req := &Request{ClientAddr: netip.MustParseAddr("192.0.2.1"), ClientName: "unknown", ReverseName: "unknown", Recipient: "r@second.test"}
	l.Check(context.Background(), Rcpt, req, nil)
	want := "MX second.test,HOST mx.clean.test"
	if got := strings.Join(dns.asked, ","); got != want {
		t.Errorf("questions %s, want %s", got, want)
	}
	dns.asked = nil
	req.Recipient = "r@a.b.clean.test"
	if v := l.Check(context.Background(), Rcpt, req, nil); v.Decision != Permit {
		t.Errorf("clean: %+v", v)
	}
	// MX: none, so the domain itself (no address). NS: none at a.b, nor
	// at b, then clean.test's, whose address is asked.
	want = "MX a.b.clean.test,HOST a.b.clean.test,NS a.b.clean.test,NS b.clean.test,NS clean.test,HOST ns.clean.test"
	if got := strings.Join(dns.asked, ","); got != want {
		t.Errorf("questions %s, want %s", got, want)
	}
}

// TestServerAccessNoResolver: without a resolver the checks decide
// nothing (and say why), except for an address literal, which needs no DNS.
func TestServerAccessNoResolver(t *testing.T) {
	l := mustCompile(t, map[string]string{
		"smtpd_recipient_restrictions": "check_recipient_a_access " + serverTestTable + ", permit",
	}, Options{DelayReject: true})
	req := &Request{ClientAddr: netip.MustParseAddr("192.0.2.1"), ClientName: "unknown", ReverseName: "unknown", Recipient: "r@nomx.test"}
	if v := l.Check(context.Background(), Rcpt, req, nil); v.Decision != Permit || !hasLog(v.Log, LogWarning, "no DNS resolver") {
		t.Errorf("no resolver: %+v", v)
	}
	req.Recipient = "r@[192.0.2.66]"
	if v := l.Check(context.Background(), Rcpt, req, nil); v.Decision != Reject {
		t.Errorf("literal without a resolver: %+v", v)
	}
}
