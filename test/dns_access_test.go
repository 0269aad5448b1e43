package test

import (
	"fmt"
	"strings"
	"testing"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

// TestServerAccessLog: check_recipient_mx_access through the binary
// writes Postfix's warnings to the mail log: an OK it must not give, and
// an MX lookup that failed (the replies themselves are in the protocol
// goldens dns_*_access).
func TestServerAccessLog(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t, `
okmx.test.     60 IN MX 10 mx.ok.test.
mx.ok.test.    60 IN A  192.0.2.13
fail.test.     60 IN A  192.0.2.14
`)
	dns.SetServfail("fail.test.")
	p := harness.Start(t, fmt.Sprintf("postgate_dns_servers = %s\n", dns.Addr())+
		"mynetworks = 127.0.0.0/8\n"+
		"smtpd_recipient_restrictions = check_recipient_mx_access inline:{ mx.ok.test=OK }, permit\n", "")
	c := harness.Dial(t, p.Addr, "127.0.0.5")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	c.Expect(451, "RCPT TO:<r@okmx.test>")
	c.Expect(250, "RCPT TO:<r@fail.test>")
	log := p.Log("Unable to look up MX host")
	for _, want := range []string{
		"warning: restriction check_recipient_mx_access returns OK for r@okmx.test",
		"warning: this is not allowed for security reasons",
		"warning: use DUNNO instead of OK if you want to make an exception",
		"warning: Unable to look up MX host for fail.test: Host not found, try again",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the mail log:\n%s", want, log)
		}
	}
}
