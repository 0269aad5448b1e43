package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestContentFilterReinjection: the amavisd-style set-up, with a second
// postgate as the filter (it stamps X-Filtered: with a header_checks
// PREPEND). The first pass's header_checks would reject a stamped
// message; the reinjection listener, with receive_override_options =
// no_header_body_checks and an empty content_filter, passes it, and it
// reaches the sink exactly once. A message the first pass's checks reject
// never reaches the filter.
func TestContentFilterReinjection(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	reinjectPort := harness.FreePort(t)
	filter := harness.Start(t, fmt.Sprintf(`myhostname = filter.gateway.test
relay_domains = relay.test
smtpd_relay_restrictions = permit_mynetworks, reject
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }
header_checks = regexp:{ {/^Subject:/ PREPEND X-Filtered: yes} }
`, reinjectPort), "")
	gw := harness.Start(t, fmt.Sprintf(`relay_domains = relay.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }
content_filter = smtp:[127.0.0.1]:%d
header_checks = regexp:{ {/^X-Filtered:/ REJECT filtered twice}, {/^Subject: forbidden/ REJECT no} }
`, sink.Port, filter.Port), fmt.Sprintf(`127.0.0.1:PORT inet n - n - - smtpd
127.0.0.1:%d inet n - n - - smtpd
  -o content_filter=
  -o receive_override_options=no_header_body_checks,no_unknown_recipient_checks,no_milters
  -o smtpd_relay_restrictions=permit_mynetworks,reject
`, reinjectPort))

	send := func(subject string) (int, string) {
		c := harness.Dial(t, gw.Addr, outside)
		defer c.Cmd("QUIT")
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(250, "RCPT TO:<u@relay.test>")
		c.Expect(354, "DATA")
		c.Send("Subject: " + subject + "\r\n\r\nx\r\n.\r\n")
		return c.Reply()
	}
	if code, text := send("forbidden"); code != 550 {
		t.Errorf("first pass's header_checks: %d %s, want 550", code, text)
	}
	if code, text := send("through the filter"); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	msgs := sink.WaitMessages(1, 30*time.Second)
	time.Sleep(time.Second) // a second copy, if there were one, would be on its way
	if msgs = sink.Messages(); len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1\n%s", len(msgs), gw.Log(""))
	}
	if _, msg := harness.SinkBody(msgs[0]); !strings.Contains(msg, "X-Filtered: yes") || !strings.Contains(msg, "Subject: through the filter") {
		t.Errorf("delivered message:\n%s", msg)
	}
	filter.Log("status=sent")
	if log := gw.Log("status=sent"); strings.Count(log, "status=sent") != 2 {
		t.Errorf("the gateway should deliver twice, to the filter and to the sink:\n%s", log)
	}
}

// TestContentFilterDown: with the content filter down, accepted mail is
// deferred (it waits in the queue for the filter), not delivered around
// it and not bounced.
func TestContentFilterDown(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	dead := harness.FreePort(t)
	p := harness.Start(t, fmt.Sprintf(`relay_domains = relay.test
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }
content_filter = smtp:[127.0.0.1]:%d
`, sink.Port, dead), "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: filter down\r\n\r\nx\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	log := p.Log("status=deferred")
	if !strings.Contains(log, fmt.Sprintf("connect to 127.0.0.1[127.0.0.1]:%d: Connection refused", dead)) {
		t.Errorf("deferral reason:\n%s", log)
	}
	deferred := 0
	for _, m := range queueJSON(t, p) {
		if m.QueueName == "deferred" {
			deferred++
		}
	}
	if deferred != 1 || len(sink.Messages()) != 0 {
		t.Errorf("deferred %d, delivered %d; want the message waiting for the filter", deferred, len(sink.Messages()))
	}
}
