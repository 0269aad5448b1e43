package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestContentFilter: content_filter sends every message a listener takes
// to the filter (here an smtp-sink standing in for amavisd) instead of its
// route (a filter named without a next hop goes to
// default_filter_nexthop); a listener with -o content_filter= (the filter's reinjection
// port) routes normally; the access action FILTER picks the filter for one
// client, a header_checks FILTER for one message, and FILTER wins over
// content_filter. The envelope is
// kept whole: sender and every recipient, whatever their domains.
func TestContentFilter(t *testing.T) {
	t.Parallel()
	internal, filter, other := harness.StartSink(t), harness.StartSink(t), harness.StartSink(t)
	access := filepath.Join(t.TempDir(), "client_access")
	os.WriteFile(access, []byte(fmt.Sprintf("127.0.0.7 FILTER smtp:[127.0.0.1]:%d\n", other.Port)), 0o644)
	headerChecks := filepath.Join(t.TempDir(), "header_checks")
	os.WriteFile(headerChecks, []byte(fmt.Sprintf("/^Subject: by_header/ FILTER smtp:[127.0.0.1]:%d\n", other.Port)), 0o644)
	reinject := harness.FreePort(t)
	p := harness.Start(t, rejectUnauth+routes("corp.test", internal, "sub.corp.test", internal)+fmt.Sprintf(`relay_domains = corp.test
content_filter = smtp:
default_filter_nexthop = [127.0.0.1]:%d
smtpd_client_restrictions = check_client_access texthash:%s
header_checks = regexp:%s
`, filter.Port, access, headerChecks), fmt.Sprintf(`127.0.0.1:PORT inet n - n - - smtpd
127.0.0.1:%d inet n - n - - smtpd -o content_filter= -o smtpd_client_restrictions=
`, reinject))

	send := func(addr, src, subject string, rcpts ...string) {
		t.Helper()
		c := harness.Dial(t, addr, src)
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		for _, r := range rcpts {
			c.Expect(250, "RCPT TO:<%s>", r)
		}
		c.Expect(354, "DATA")
		c.Send("Subject: " + subject + "\r\n\r\nx\r\n.\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: %d %s", subject, code, text)
		}
		c.Expect(221, "QUIT")
	}
	send(p.Addr, outside, "filtered", "alice@corp.test", "bob@sub.corp.test")
	send(fmt.Sprintf("127.0.0.1:%d", reinject), "127.0.0.1", "reinjected", "alice@corp.test")
	send(p.Addr, "127.0.0.7", "by_access", "alice@corp.test")
	send(p.Addr, outside, "by_header", "bob@sub.corp.test")

	at := func(s *harness.Sink, n int) []string {
		var out []string
		for _, m := range s.WaitMessages(n, 20*time.Second) {
			env, msg := harness.SinkBody(m)
			subject := subjectRe.FindStringSubmatch(msg)
			if subject == nil {
				t.Fatalf("no Subject in %q", msg)
			}
			out = append(out, subject[1]+": "+strings.Join(sinkRcpts(env), " "))
		}
		slices.Sort(out) // deliveries to one sink may arrive in any order
		return out
	}
	if got := at(filter, 1); len(got) != 1 || got[0] != "filtered: alice@corp.test bob@sub.corp.test" {
		t.Errorf("at the content filter: %q", got)
	}
	if got := at(internal, 1); len(got) != 1 || got[0] != "reinjected: alice@corp.test" {
		t.Errorf("at the internal server: %q", got)
	}
	if got := at(other, 2); len(got) != 2 || got[0] != "by_access: alice@corp.test" || got[1] != "by_header: bob@sub.corp.test" {
		t.Errorf("at the FILTER target: %q", got)
	}
}
