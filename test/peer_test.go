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

// TestUnknownDomainsAndHelo: reject_unknown_sender_domain,
// reject_unknown_recipient_domain and reject_unknown_helo_hostname with
// Postfix's codes and texts: not found, a null MX, a temporary failure
// (deferred only if nothing else rejects, and 450 whatever the code
// parameters say), and names that resolve.
func TestUnknownDomainsAndHelo(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t, `
good.test.        60 IN MX 10 mx.good.test.
mx.good.test.     60 IN A  192.0.2.10
hostonly.test.    60 IN A  192.0.2.11
nullmx.test.      60 IN MX 0 .
helo.good.test.   60 IN A  192.0.2.12
`)
	dns.SetServfail("broken.test.")
	p := harness.Start(t, "smtpd_relay_restrictions = reject_unauth_destination\n"+
		"relay_domains = relay.test, good.test, nullmx.test, nowhere.test\n"+
		fmt.Sprintf("postgate_dns_servers = %s\n", dns.Addr())+
		"unknown_hostname_reject_code = 554\nunknown_address_reject_code = 553\n"+
		"smtpd_helo_restrictions = reject_unknown_helo_hostname\n"+
		"smtpd_sender_restrictions = reject_unknown_sender_domain\n"+
		"smtpd_recipient_restrictions = reject_unknown_recipient_domain\n", "")
	rcpt := func(helo, from, to string) string {
		c := harness.Dial(t, p.Addr, outside)
		c.Expect(250, "EHLO %s", helo)
		c.Expect(250, "MAIL FROM:<%s>", from)
		code, text := c.Cmd("RCPT TO:<%s>", to)
		return fmt.Sprintf("%d %s", code, text)
	}
	for _, c := range []struct{ helo, from, to, want string }{
		{"helo.good.test", "a@good.test", "u@good.test", "250 2.1.5 Ok"},
		{"helo.good.test", "a@hostonly.test", "u@good.test", "250 2.1.5 Ok"},
		{"helo.good.test", "a@good.test", "u@nowhere.test", "553 5.1.2 <u@nowhere.test>: Recipient address rejected: Domain not found"},
		{"helo.good.test", "a@good.test", "u@nullmx.test", "556 5.1.10 <u@nullmx.test>: Recipient address rejected: Domain nullmx.test does not accept mail (nullMX)"},
		{"nowhere.test", "a@good.test", "u@good.test", "554 5.7.1 <nowhere.test>: Helo command rejected: Host not found"},
		{"[192.0.2.1]", "a@nowhere.test", "u@good.test", "553 5.1.8 <a@nowhere.test>: Sender address rejected: Domain not found"},
		{"helo.good.test", "a@nullmx.test", "u@good.test", "550 5.7.27 <a@nullmx.test>: Sender address rejected: Domain nullmx.test does not accept mail (nullMX)"},
		{"helo.good.test", "a@broken.test", "u@good.test", "450 4.1.8 <a@broken.test>: Sender address rejected: Domain not found"},
		{"helo.good.test", "a@mx.gateway.test", "u@good.test", "250 2.1.5 Ok"}, // ours: not looked up
	} {
		if got := rcpt(c.helo, c.from, c.to); got != c.want {
			t.Errorf("HELO %s, MAIL FROM %s: RCPT got %q, want %q", c.helo, c.from, got, c.want)
		}
	}
}
