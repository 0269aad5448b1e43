package spf

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// fakeResolver answers from maps; names in temp fail for now (SERVFAIL).
type fakeResolver struct {
	txt   map[string][]string
	addrs map[string][]string
	temp  map[string]bool
	asked []string
}

func (r *fakeResolver) err(name string) error {
	if r.temp[name] {
		return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	r.asked = append(r.asked, "TXT "+name)
	if t, ok := r.txt[name]; ok && !r.temp[name] {
		return t, nil
	}
	return nil, r.err(name)
}

func (r *fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	r.asked = append(r.asked, "MX "+name)
	return nil, r.err(name)
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]netip.Addr, error) {
	r.asked = append(r.asked, "A "+host)
	var out []netip.Addr
	for _, s := range r.addrs[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if len(out) == 0 {
		return nil, r.err(host)
	}
	return out, nil
}

func (r *fakeResolver) LookupAddr(_ context.Context, addr netip.Addr) ([]string, error) {
	r.asked = append(r.asked, "PTR "+addr.String())
	return nil, r.err(addr.String())
}

func zone() *fakeResolver {
	r := &fakeResolver{
		txt: map[string][]string{
			"pass.test":     {"v=spf1 ip4:127.0.0.5 -all"},
			"fail.test":     {"v=spf1 ip4:192.0.2.1 -all"},
			"softfail.test": {"v=spf1 ~all"},
			"neutral.test":  {"v=spf1 ?all"},
			"nospf.test":    {"some other text"},
			"syntax.test":   {"v=spf1 ip4:999.1.1.1 -all"},
			"a.test":        {"v=spf1 a:host.a.test -all"},
			"helo.test":     {"v=spf1 ip4:127.0.0.5 -all"},
			"void.test":     {"v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ip4:127.0.0.5 -all"},
			"temp.test":     {"v=spf1 -all"},
			"loop.test":     {"v=spf1 include:loop.test -all"},
			"many.test":     {"v=spf1 " + strings.Repeat("a:x.many.test ", 11) + "ip4:127.0.0.5 -all"},
		},
		addrs: map[string][]string{"host.a.test": {"127.0.0.5"}, "x.many.test": {"192.0.2.9"}},
		temp:  map[string]bool{"temp.test": true},
	}
	return r
}

func TestCheck(t *testing.T) {
	client := netip.MustParseAddr("127.0.0.5")
	for _, tc := range []struct {
		name, helo, sender string
		want               Result
		identity, domain   string
		problem            string
	}{
		{"pass", "client.test", "a@pass.test", Pass, MailFrom, "pass.test", ""},
		{"fail", "client.test", "a@fail.test", Fail, MailFrom, "fail.test", ""},
		{"softfail", "client.test", "a@softfail.test", SoftFail, MailFrom, "softfail.test", ""},
		{"neutral", "client.test", "a@neutral.test", Neutral, MailFrom, "neutral.test", ""},
		{"none, no record", "client.test", "a@nospf.test", None, MailFrom, "nospf.test", ""},
		{"none, no domain", "client.test", "a@nxdomain.test", None, MailFrom, "nxdomain.test", ""},
		{"none, address literal", "client.test", "a@[127.0.0.1]", None, MailFrom, "[127.0.0.1]", ""},
		{"a mechanism", "client.test", "a@a.test", Pass, MailFrom, "a.test", ""},
		{"temperror", "client.test", "a@temp.test", TempError, MailFrom, "temp.test", "server misbehaving"},
		{"permerror, syntax", "client.test", "a@syntax.test", PermError, MailFrom, "syntax.test", "invalid ipX value"},
		{"permerror, include loop", "client.test", "a@loop.test", PermError, MailFrom, "loop.test", "lookup limit reached"},
		{"permerror, 11 lookups", "client.test", "a@many.test", PermError, MailFrom, "many.test", "lookup limit reached"},
		{"permerror, 3 void lookups", "client.test", "a@void.test", PermError, MailFrom, "void.test", "void lookup limit reached"},
		{"null sender: HELO identity", "helo.test", "", Pass, Helo, "helo.test", ""},
		{"null sender, HELO literal", "[127.0.0.5]", "", None, Helo, "[127.0.0.5]", ""},
		{"null sender, no HELO", "", "", None, Helo, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Check(context.Background(), zone(), client, tc.helo, tc.sender)
			if o.Result != tc.want || o.Identity != tc.identity || o.Domain != tc.domain {
				t.Errorf("Check = %s identity=%s domain=%q, want %s identity=%s domain=%q (problem %q)",
					o.Result, o.Identity, o.Domain, tc.want, tc.identity, tc.domain, o.Problem)
			}
			if !strings.Contains(o.Problem, tc.problem) || (tc.problem == "") != (o.Problem == "") {
				t.Errorf("Problem = %q, want %q", o.Problem, tc.problem)
			}
		})
	}
}

// The IPv4-mapped form of a client address is checked as IPv4.
func TestCheckMappedAddress(t *testing.T) {
	o := Check(context.Background(), zone(), netip.MustParseAddr("::ffff:127.0.0.5"), "h.test", "a@pass.test")
	if o.Result != Pass || o.ClientIP.String() != "127.0.0.5" {
		t.Errorf("Check = %s client-ip=%s, want pass client-ip=127.0.0.5", o.Result, o.ClientIP)
	}
}

// A domain without a domain to check asks no DNS at all.
func TestCheckNoDomainAsksNothing(t *testing.T) {
	r := zone()
	Check(context.Background(), r, netip.MustParseAddr("127.0.0.5"), "", "")
	Check(context.Background(), r, netip.MustParseAddr("127.0.0.5"), "h.test", "a@[127.0.0.1]")
	if len(r.asked) != 0 {
		t.Errorf("asked %q", r.asked)
	}
}

func TestHeaderValue(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.5")
	for _, tc := range []struct {
		name string
		o    Outcome
		want string
	}{
		{"mailfrom", Outcome{Result: Pass, Identity: MailFrom, ClientIP: ip, Helo: "mail.example.test", Sender: "a@pass.test"},
			"Pass (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo=mail.example.test; envelope-from=a@pass.test; receiver=mx.test"},
		{"softfail capitalized as policyd-spf", Outcome{Result: SoftFail, Identity: MailFrom, ClientIP: ip, Helo: "h", Sender: "a@s.test"},
			"Softfail (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo=h; envelope-from=a@s.test; receiver=mx.test"},
		{"helo identity has the explanation", Outcome{Result: None, Identity: Helo, ClientIP: ip, Helo: "h.test"},
			"None (no SPF record) identity=helo; client-ip=127.0.0.5; helo=h.test; envelope-from=<>; receiver=mx.test"},
		{"odd values quoted", Outcome{Result: Fail, Identity: MailFrom, ClientIP: ip, Helo: "[127.0.0.5]", Sender: `"a b;c"@x.test`},
			`Fail (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo="[127.0.0.5]"; envelope-from="\"a b;c\"@x.test"; receiver=mx.test`},
		{"no HELO", Outcome{Result: None, Identity: Helo, ClientIP: ip},
			`None (no SPF record) identity=helo; client-ip=127.0.0.5; helo=""; envelope-from=<>; receiver=mx.test`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.HeaderValue("mx.test"); got != tc.want {
				t.Errorf("HeaderValue =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// What the client sends (HELO, MAIL FROM) never breaks the header: one
// line, no control characters, and a bare value only of safe characters.
func FuzzHeaderValue(f *testing.F) {
	f.Add("mail.example.test", "a@example.test")
	f.Add("[127.0.0.1]", `"a b"@x.test`)
	f.Add("h\r\nX-Injected: 1", "a;b=c@x")
	f.Fuzz(func(t *testing.T, helo, sender string) {
		o := Outcome{Result: Pass, Identity: MailFrom, ClientIP: netip.MustParseAddr("192.0.2.1"), Helo: helo, Sender: sender}
		h := o.HeaderValue("mx.test")
		for i := 0; i < len(h); i++ {
			if h[i] < ' ' || h[i] == 0x7f {
				t.Fatalf("control character %#x in %q", h[i], h)
			}
		}
		for _, v := range []string{helo, sender} {
			if q := value(v); !strings.HasPrefix(q, `"`) && strings.ContainsAny(q, " ;()\"\\") {
				t.Fatalf("value(%q) = %q: bare with a special character", v, q)
			}
		}
	})
}
