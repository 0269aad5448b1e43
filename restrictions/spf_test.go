package restrictions

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// spfZone is a fake resolver with SPF records; names in temp fail for now.
type spfZone struct {
	txt   map[string]string
	temp  map[string]bool
	asked int
}

func (z *spfZone) LookupTXT(_ context.Context, name string) ([]string, error) {
	z.asked++
	if z.temp[name] {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if t, ok := z.txt[name]; ok {
		return []string{t}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (z *spfZone) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (z *spfZone) LookupHost(_ context.Context, name string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (z *spfZone) LookupNS(context.Context, string) ([]*net.NS, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

func (z *spfZone) LookupAddr(_ context.Context, a netip.Addr) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: a.String(), IsNotFound: true}
}

func newSPFZone() *spfZone {
	return &spfZone{
		txt: map[string]string{
			"pass.test":     "v=spf1 ip4:127.0.0.5 -all",
			"fail.test":     "v=spf1 -all",
			"softfail.test": "v=spf1 ~all",
			"helo.test":     "v=spf1 -all",
		},
		temp: map[string]bool{"temp.test": true},
	}
}

func TestSPFRestrictions(t *testing.T) {
	sender := func(list string) map[string]string { return map[string]string{"smtpd_sender_restrictions": list} }
	rcpt := func(list string) map[string]string {
		return map[string]string{"smtpd_recipient_restrictions": list, "smtpd_relay_restrictions": ""}
	}
	const why = ". Please see http://www.openspf.net/Why?s="
	for _, c := range []struct {
		name   string
		params map[string]string
		stage  Stage
		req    Request
		want   string
		logs   []string
	}{
		{name: "fail rejected", params: sender("reject_spf_fail"), stage: Mail, req: Request{Sender: "a@fail.test"},
			want: "550 5.7.23 <a@fail.test>: Sender address rejected: Message rejected due to: SPF fail - not authorized" + why + "mfrom;id=a@fail.test;ip=127.0.0.5;r=<UNKNOWN>"},
		{name: "fail at RCPT names the recipient", params: rcpt("reject_spf_fail"), stage: Rcpt,
			req:  Request{Sender: "a@fail.test", Recipient: "u@example.test"},
			want: "550 5.7.23 <u@example.test>: Recipient address rejected: Message rejected due to: SPF fail - not authorized" + why + "mfrom;id=a@fail.test;ip=127.0.0.5;r=u@example.test"},
		{name: "null sender: HELO identity", params: sender("reject_spf_fail"), stage: Mail, req: Request{Helo: "helo.test"},
			want: "550 5.7.23 <>: Sender address rejected: Message rejected due to: SPF fail - not authorized" + why + "helo;id=helo.test;ip=127.0.0.5;r=<UNKNOWN>"},
		{name: "pass not rejected", params: sender("reject_spf_fail, reject"), stage: Mail, req: Request{Sender: "a@pass.test"},
			want: "554 5.7.1 <a@pass.test>: Sender address rejected: Access denied"},
		{name: "permit_spf_pass", params: sender("permit_spf_pass, reject"), stage: Mail, req: Request{Sender: "a@pass.test"},
			want: "OK (permit)"},
		{name: "permit_spf_pass: no pass", params: sender("permit_spf_pass, reject"), stage: Mail, req: Request{Sender: "a@softfail.test"},
			want: "554 5.7.1 <a@softfail.test>: Sender address rejected: Access denied"},
		{name: "permit_spf_pass never relays", params: rcpt("permit_spf_pass, reject"), stage: Rcpt,
			req:  Request{Sender: "a@pass.test", Recipient: "u@elsewhere.test"},
			want: "554 5.7.1 <u@elsewhere.test>: Recipient address rejected: Access denied"},
		{name: "temperror deferred", params: sender("reject_spf_fail, defer_spf_temperror"), stage: Mail, req: Request{Sender: "a@temp.test"},
			want: "451 4.7.24 <a@temp.test>: Sender address rejected: Message deferred due to: temporary DNS error in processing" + why + "mfrom;id=a@temp.test;ip=127.0.0.5;r=<UNKNOWN>"},
		{name: "softfail warned", params: sender("warn_spf_softfail, reject_spf_fail"), stage: Mail, req: Request{Sender: "a@softfail.test"},
			want: "OK (dunno)",
			logs: []string{"reject_warning: 550 5.7.23 <a@softfail.test>: Sender address rejected: Message rejected due to: domain owner discourages use of this host" + why + "mfrom"}},
		{name: "warn_spf_softfail does not warn a fail", params: sender("warn_spf_softfail"), stage: Mail, req: Request{Sender: "a@fail.test"},
			want: "OK (dunno)"},
		{name: "warn_if_reject reject_spf_fail", params: sender("warn_if_reject reject_spf_fail"), stage: Mail, req: Request{Sender: "a@fail.test"},
			want: "OK (dunno)", logs: []string{"reject_warning: 550 5.7.23 <a@fail.test>"}},
		{name: "before MAIL FROM: no opinion", params: map[string]string{"smtpd_helo_restrictions": "reject_spf_fail, defer_spf_temperror"},
			stage: Helo, req: Request{Helo: "helo.test"}, want: "OK (dunno)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{DNS: newSPFZone(), MyDestination: mustDomains(t, "example.test"), DelayReject: false, RelayBeforeRecipient: true}
			l := mustCompile(t, c.params, o)
			req := c.req
			req.ClientAddr = netip.MustParseAddr("127.0.0.5")
			v := l.Check(context.Background(), c.stage, &req, nil)
			got := "OK (" + v.Decision.String() + ")"
			if v.Decision == Reject {
				got = v.Reply.String()
			}
			if got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
			var logs []string
			for _, ev := range v.Log {
				logs = append(logs, ev.What+": "+ev.Text)
			}
			for _, w := range c.logs {
				if !strings.Contains(strings.Join(logs, "\n"), w) {
					t.Errorf("log lacks %q:\n%s", w, strings.Join(logs, "\n"))
				}
			}
		})
	}
}

// SPF is evaluated once per transaction, however many restrictions and
// stages ask, and again after Reset.
func TestSPFOncePerTransaction(t *testing.T) {
	z := newSPFZone()
	l := mustCompile(t, map[string]string{
		"smtpd_sender_restrictions":    "warn_spf_softfail, reject_spf_fail",
		"smtpd_recipient_restrictions": "defer_spf_temperror, permit_spf_pass, permit",
	}, Options{DNS: z, MyDestination: mustDomains(t, "example.test"), RelayBeforeRecipient: true})
	var txn Txn
	req := Request{ClientAddr: netip.MustParseAddr("127.0.0.5"), Sender: "a@softfail.test", Recipient: "u@example.test"}
	for _, st := range []Stage{Mail, Rcpt, Rcpt} {
		if v := l.Check(context.Background(), st, &req, &txn); v.Decision == Reject {
			t.Fatalf("%v: %s", st, v.Reply)
		}
	}
	if z.asked != 1 {
		t.Errorf("%d TXT lookups in one transaction, want 1", z.asked)
	}
	if o, ok := txn.EvaluatedSPF(); !ok || o.Result != "softfail" {
		t.Errorf("EvaluatedSPF = %v, %v", o, ok)
	}
	txn.Reset()
	if _, ok := txn.EvaluatedSPF(); ok {
		t.Error("the outcome outlived Reset")
	}
	l.Check(context.Background(), Mail, &req, &txn)
	if z.asked != 2 {
		t.Errorf("%d TXT lookups after Reset, want 2", z.asked)
	}
}
