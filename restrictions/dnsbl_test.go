package restrictions

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postgate/gateway/config"
	"postgate/rules"
)

// listResolver is a fake resolver for the DNS list restrictions: A and
// TXT records by name; names in fail time out.
type listResolver struct {
	a, txt map[string][]string
	fail   map[string]bool
	asked  int
}

func (r *listResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

func (r *listResolver) LookupHost(context.Context, string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

func (r *listResolver) LookupNS(context.Context, string) ([]*net.NS, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

func (r *listResolver) LookupIP(_ context.Context, _, host string) ([]net.IP, error) {
	r.asked++
	if r.fail[host] {
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true}
	}
	var ips []net.IP
	for _, s := range r.a[host] {
		ips = append(ips, net.ParseIP(s))
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func (r *listResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if t, ok := r.txt[name]; ok {
		return t, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func newListResolver() *listResolver {
	return &listResolver{
		a: map[string][]string{
			"2.0.0.127.zen.test": {"127.0.0.2"},
			"3.0.0.127.zen.test": {"127.0.0.3"},
			"5.0.0.127.zen.test": {"127.0.0.2"},
			"5.0.0.127.wl.test":  {"127.0.9.1"},
			"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test": {"127.0.0.2"},
			"spam.test.dbl.test":        {"127.0.1.2"},
			"bad.helo.test.dbl.test":    {"127.0.1.2"},
			"mail.good.test.wl.test":    {"127.0.9.1"},
			"rcpt.example.dbl.test":     {"127.0.1.2"},
			"spam.client.test.dbl.test": {"127.0.1.2"},
		},
		txt: map[string][]string{
			"2.0.0.127.zen.test": {"Listed in zen.test, see http://zen.test/q/127.0.0.2"},
			"spam.test.dbl.test": {"Domain listed"},
		},
		fail: map[string]bool{"4.0.0.127.zen.test": true, "4.0.0.127.wl.test": true},
	}
}

type rblCase struct {
	name   string
	params map[string]string
	opts   func(*Options)
	req    Request
	stage  Stage
	want   string   // the reply, or "OK (permit)" / "OK (dunno)"
	logs   []string // lines that must be logged, in order
}

func runRBLCase(t *testing.T, c rblCase, r *listResolver) {
	t.Helper()
	o := Options{DNS: r, ExpandReply: config.ExpandRequest, DelayReject: true, RelayBeforeRecipient: true,
		MyDestination: mustDomains(t, "example.test")}
	if c.opts != nil {
		c.opts(&o)
	}
	l := mustCompile(t, c.params, o)
	req := c.req
	if !req.ClientAddr.IsValid() {
		req.ClientAddr = netip.MustParseAddr("127.0.0.2")
	}
	req.Macros = func(name string) string {
		if name == "client_address" {
			return req.addr()
		}
		return ""
	}
	v := l.Check(context.Background(), c.stage, &req, nil)
	got := "OK (" + v.Decision.String() + ")"
	if v.Decision == Reject {
		got = v.Reply.String()
	}
	if got != c.want {
		t.Errorf("%s: got %q, want %q", c.name, got, c.want)
	}
	var logs []string
	for _, ev := range v.Log {
		logs = append(logs, ev.What+": "+ev.Text)
	}
	all := strings.Join(logs, "\n")
	for _, w := range c.logs {
		if !strings.Contains(all, w) {
			t.Errorf("%s: log lacks %q:\n%s", c.name, w, all)
		}
	}
}

func mustDomains(t *testing.T, s string) *rules.DomainList {
	t.Helper()
	d, err := rules.NewDomainList(strings.Fields(s), true)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDNSListRestrictions(t *testing.T) {
	dir := t.TempDir()
	replies := filepath.Join(dir, "rbl_replies")
	if err := os.WriteFile(replies, []byte("zen.test=127.0.0.2 $rbl_code 5.7.9 $client_address listed by $rbl_domain (${rbl_txt?{$rbl_txt}:{no reason}})\n"+
		"custom.test 451 4.7.1 try later [$rbl_what]\nnocode.test Go away\nbadsyntax.test 550 ${rbl_what\n"+
		"dbl.test=127.0.1.2 $rbl_code 5.1.1 <$rbl_what> is a $rbl_class in $rbl_domain\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	client := func(list string) map[string]string { return map[string]string{"smtpd_client_restrictions": list} }
	addr := netip.MustParseAddr
	cases := []rblCase{
		{name: "listed, default reply with the TXT", params: client("reject_rbl_client zen.test"), stage: Rcpt,
			req:  Request{Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.test; Listed in zen.test, see http://zen.test/q/127.0.0.2",
			logs: []string{"reject: 554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.test; Listed"}},
		{name: "listed without TXT", params: client("reject_rbl_client zen.test"), stage: Rcpt,
			req:  Request{ClientAddr: addr("127.0.0.3"), Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using zen.test"},
		{name: "maps_rbl_reject_code", params: client("reject_rbl_client zen.test"), stage: Rcpt,
			opts: func(o *Options) { o.MapsRBLRejectCode = 450 },
			req:  Request{ClientAddr: addr("127.0.0.3"), Recipient: "u@example.test"},
			want: "450 4.7.1 Service unavailable; Client host [127.0.0.3] blocked using zen.test"},
		{name: "filter passes", params: client("reject_rbl_client zen.test=127.0.0.[2..11]"), stage: Connect,
			opts: func(o *Options) { o.DelayReject = false },
			want: "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.test; Listed in zen.test, see http://zen.test/q/127.0.0.2"},
		{name: "filter does not pass", params: client("reject_rbl_client zen.test=127.0.0.3"), stage: Rcpt,
			req: Request{Recipient: "u@example.test"}, want: "OK (dunno)"},
		{name: "IPv6 nibbles", params: client("reject_rbl_client zen.test"), stage: Rcpt,
			req:  Request{ClientAddr: addr("2001:db8::1"), Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Client host [2001:db8::1] blocked using zen.test"},
		{name: "no answer: not listed, logged", params: client("reject_rbl_client zen.test, permit"), stage: Rcpt,
			req: Request{ClientAddr: addr("127.0.0.4"), Recipient: "u@example.test"}, want: "OK (permit)",
			logs: []string{": 4.0.0.127.zen.test: RBL lookup error: Host or domain name not found. Name service error for name=4.0.0.127.zen.test type=A: Host not found, try again"}},
		{name: "warn_if_reject", params: client("warn_if_reject reject_rbl_client zen.test"), stage: Rcpt,
			req: Request{Recipient: "u@example.test"}, want: "OK (dunno)",
			logs: []string{"reject_warning: 554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.test"}},
		{name: "rbl_reply_maps by the site as written", params: client("reject_rbl_client zen.test=127.0.0.2"), stage: Rcpt,
			opts: func(o *Options) { o.RBLReplyMaps = []string{"texthash:" + replies} },
			req:  Request{Recipient: "u@example.test"},
			want: "554 5.7.9 127.0.0.2 listed by zen.test (Listed in zen.test, see http://zen.test/q/127.0.0.2)"},
		{name: "rbl_reply_maps: the bare site is another key", params: client("reject_rbl_client zen.test"), stage: Rcpt,
			opts: func(o *Options) { o.RBLReplyMaps = []string{"texthash:" + replies} },
			req:  Request{ClientAddr: addr("127.0.0.3"), Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using zen.test"},
		{name: "template without a code", params: client("reject_rbl_client nocode.test"), stage: Rcpt,
			opts: func(o *Options) {
				o.RBLReplyMaps = []string{"texthash:" + replies}
				o.DNS.(*listResolver).a["2.0.0.127.nocode.test"] = []string{"127.0.0.2"}
			},
			req: Request{Recipient: "u@example.test"}, want: "450 4.7.1 Service unavailable",
			logs: []string{"rbl response code configuration error: Go away"}},
		{name: "bad template: the default", params: client("reject_rbl_client badsyntax.test"), stage: Rcpt,
			opts: func(o *Options) {
				o.RBLReplyMaps = []string{"texthash:" + replies}
				o.DNS.(*listResolver).a["2.0.0.127.badsyntax.test"] = []string{"127.0.0.2"}
			},
			req:  Request{Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using badsyntax.test",
			logs: []string{"rbl_reject_reply: bad rbl reply template for domain badsyntax.test: 550 ${rbl_what"}},
		{name: "rhsbl sender", params: map[string]string{"smtpd_sender_restrictions": "reject_rhsbl_sender dbl.test"}, stage: Rcpt,
			req:  Request{Sender: "s@spam.test", Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Sender address [s@spam.test] blocked using dbl.test; Domain listed"},
		{name: "rhsbl sender: DSN of the class", params: map[string]string{"smtpd_sender_restrictions": "reject_rhsbl_sender dbl.test=127.0.1.2"}, stage: Rcpt,
			opts: func(o *Options) { o.RBLReplyMaps = []string{"texthash:" + replies} },
			req:  Request{Sender: "s@spam.test", Recipient: "u@example.test"},
			want: "554 5.1.7 <s@spam.test> is a Sender address in dbl.test"},
		{name: "rhsbl sender: null sender", params: map[string]string{"smtpd_sender_restrictions": "reject_rhsbl_sender dbl.test"}, stage: Rcpt,
			req: Request{Recipient: "u@example.test"}, want: "OK (dunno)"},
		{name: "rhsbl helo", params: map[string]string{"smtpd_helo_restrictions": "reject_rhsbl_helo dbl.test"}, stage: Rcpt,
			req:  Request{Helo: "bad.helo.test", Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Helo command [bad.helo.test] blocked using dbl.test"},
		{name: "rhsbl recipient", params: map[string]string{"smtpd_recipient_restrictions": "reject_rhsbl_recipient dbl.test"}, stage: Rcpt,
			req:  Request{Recipient: "u@rcpt.example"},
			want: "554 5.7.1 Service unavailable; Recipient address [u@rcpt.example] blocked using dbl.test"},
		{name: "rhsbl client", params: client("reject_rhsbl_client dbl.test"), stage: Rcpt,
			req:  Request{ClientName: "spam.client.test", Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Client host [spam.client.test] blocked using dbl.test"},
		{name: "rhsbl client: unknown name", params: client("reject_rhsbl_client dbl.test"), stage: Rcpt,
			req: Request{ReverseName: "spam.client.test", Recipient: "u@example.test"}, want: "OK (dunno)"},
		{name: "rhsbl reverse client", params: client("reject_rhsbl_reverse_client dbl.test"), stage: Rcpt,
			req:  Request{ReverseName: "spam.client.test", Recipient: "u@example.test"},
			want: "554 5.7.1 Service unavailable; Unverified Client host [spam.client.test] blocked using dbl.test"},
		{name: "dnswl permits", params: client("permit_dnswl_client wl.test, reject_rbl_client zen.test"), stage: Rcpt,
			req: Request{ClientAddr: addr("127.0.0.5"), Recipient: "u@example.test"}, want: "OK (permit)"},
		{name: "dnswl: not for a recipient we do not relay for", params: client("permit_dnswl_client wl.test, reject_rbl_client zen.test"), stage: Rcpt,
			req:  Request{ClientAddr: addr("127.0.0.5"), Recipient: "u@elsewhere.test"},
			want: "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using zen.test"},
		{name: "dnswl fails: a later reject defers", params: client("permit_dnswl_client wl.test, reject"), stage: Rcpt,
			req:  Request{ClientAddr: addr("127.0.0.4"), Recipient: "u@example.test"},
			want: "450 4.7.1 <127.0.0.4>: Client host rejected: Service unavailable",
			logs: []string{"4.0.0.127.wl.test: RBL lookup error"}},
		{name: "rhswl permits", params: client("permit_rhswl_client wl.test, reject"), stage: Rcpt,
			req: Request{ClientName: "mail.good.test", Recipient: "u@example.test"}, want: "OK (permit)"},
		{name: "no expander", params: client("reject_rbl_client zen.test"), stage: Rcpt,
			opts: func(o *Options) { o.ExpandReply = nil },
			req:  Request{Recipient: "u@example.test"}, want: "451 4.3.5 Server configuration error",
			logs: []string{"default_rbl_reply: no $name expansion for reply templates"}},
	}
	for _, c := range cases {
		runRBLCase(t, c, newListResolver())
	}
	// Postfix's custom template code for a temporary listing.
	runRBLCase(t, rblCase{name: "4xx template", params: client("reject_rbl_client custom.test"), stage: Rcpt,
		opts: func(o *Options) {
			o.RBLReplyMaps = []string{"texthash:" + replies}
			o.DNS.(*listResolver).a["2.0.0.127.custom.test"] = []string{"127.0.0.2"}
		},
		req: Request{Recipient: "u@example.test"}, want: "451 4.7.1 try later [127.0.0.2]"}, newListResolver())
}

// A list that fails is asked, and warned about, once per session.
func TestDNSListOncePerSession(t *testing.T) {
	r := newListResolver()
	l := mustCompile(t, map[string]string{"smtpd_client_restrictions": "reject_rbl_client zen.test"},
		Options{DNS: r, ExpandReply: config.ExpandRequest, DelayReject: true, MyDestination: mustDomains(t, "example.test")})
	txn := &Txn{}
	warnings := 0
	for _, rcpt := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		req := &Request{ClientAddr: netip.MustParseAddr("127.0.0.4"), Recipient: rcpt}
		v := l.Check(context.Background(), Rcpt, req, txn)
		if v.Decision == Reject {
			t.Fatalf("rejected: %v", v.Reply)
		}
		for _, ev := range v.Log {
			if ev.Kind == LogWarning {
				warnings++
			}
		}
	}
	if r.asked != 1 || warnings != 1 {
		t.Errorf("asked %d times, %d warnings; want 1 and 1", r.asked, warnings)
	}
}

func TestDNSListCompileErrors(t *testing.T) {
	for list, want := range map[string]string{
		"reject_rbl_client zen.test=127.0.0.300": `smtpd_client_restrictions: restriction reject_rbl_client zen.test=127.0.0.300: RBL reply error: need decimal number 0..255 or "[" at "127.0.0.>300<"`,
		"reject_rhsbl_sender":                    "smtpd_client_restrictions: restriction reject_rhsbl_sender requires domain name argument",
	} {
		_, err := Compile(map[string]string{"smtpd_client_restrictions": list}, Options{})
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", list, err, want)
		}
	}
	_, err := Compile(nil, Options{ExpandReply: config.ExpandRequest, DefaultRBLReply: "$rbl_code ${rbl_what"})
	if err == nil || !strings.HasPrefix(err.Error(), "default_rbl_reply: ") {
		t.Errorf("bad default_rbl_reply: %v", err)
	}
}
