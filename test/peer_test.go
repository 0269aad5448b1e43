package test

import (
	"fmt"
	"strings"
	"testing"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

// TestClientHostnameLookup: the client's name is looked up as Postfix's
// smtpd does (PTR, then the name must resolve back to the address), is
// logged as name[addr], matched by check_client_access, and refused by
// reject_unknown_client_hostname and reject_unknown_reverse_client_hostname
// with Postfix's codes and texts.
func TestClientHostnameLookup(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t, `
5.0.0.127.in-addr.arpa. 60 IN PTR client.src.test.
client.src.test.        60 IN A   127.0.0.5
6.0.0.127.in-addr.arpa. 60 IN PTR forged.src.test.
forged.src.test.        60 IN A   192.0.2.1
8.0.0.127.in-addr.arpa. 60 IN PTR nxname.src.test.
9.0.0.127.in-addr.arpa. 60 IN PTR temp.src.test.
`)
	dns.SetServfail("9.0.0.127.in-addr.arpa.")
	p := harness.Start(t, rejectUnauth+fmt.Sprintf("postgate_dns_servers = %s\nunknown_client_reject_code = 550\n", dns.Addr())+
		"smtpd_client_restrictions = check_client_access inline:{ {src.test = OK} }, reject_unknown_reverse_client_hostname, reject_unknown_client_hostname\n", "")
	for _, c := range []struct{ from, rcpt string }{
		{"127.0.0.5", "250 2.1.5 Ok"},
		{"127.0.0.6", "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.6]"},
		{"127.0.0.7", "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.7]"},
		{"127.0.0.8", "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.8]"},
		{"127.0.0.9", "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.9]"},
	} {
		cl := harness.Dial(t, p.Addr, c.from)
		cl.Expect(250, "EHLO client.src.test")
		cl.Expect(250, "MAIL FROM:<a@src.test>")
		code, text := cl.Cmd("RCPT TO:<u@relay.test>")
		if got := fmt.Sprintf("%d %s", code, text); got != c.rcpt {
			t.Errorf("from %s: RCPT answered %q, want %q", c.from, got, c.rcpt)
		}
	}
	log := p.Log("connect from client.src.test[127.0.0.5]")
	for _, want := range []string{
		"connect from client.src.test[127.0.0.5]",
		"warning: hostname forged.src.test does not resolve to address 127.0.0.6",
		"warning: hostname nxname.src.test does not resolve to address 127.0.0.8: Name or service not known",
		"connect from unknown[127.0.0.7]",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mail log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(log)
	}

	// smtpd_peername_lookup = no: every client is unknown, no DNS asked.
	q := harness.Start(t, rejectUnauth+fmt.Sprintf("postgate_dns_servers = %s\nsmtpd_peername_lookup = no\n", dns.Addr()), "")
	before := dns.Queries()
	harness.Dial(t, q.Addr, "127.0.0.5").Expect(221, "QUIT")
	if log := q.Log("connect from unknown[127.0.0.5]"); !strings.Contains(log, "connect from unknown[127.0.0.5]") {
		t.Errorf("smtpd_peername_lookup = no: %s", log)
	}
	if n := dns.Queries() - before; n != 0 {
		t.Errorf("smtpd_peername_lookup = no asked DNS %d times", n)
	}
}
