package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestAutoBCC: sender_bcc_maps, recipient_bcc_maps (looked up without the
// recipient_delimiter extension) and always_bcc add recipients when the
// message is queued, each canonical-mapped like any recipient, and the
// copies reach the sink with the message; a listener with
// receive_override_options = no_address_mappings adds none.
func TestAutoBCC(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	plainPort := harness.FreePort(t)
	p := harness.Start(t, fmt.Sprintf(`myorigin = corp.test
relay_domains = corp.test
recipient_delimiter = +
transport_maps = inline:{ corp.test=smtp:[127.0.0.1]:%d }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
sender_bcc_maps = inline:{ boss@src.test=archive-boss }
recipient_bcc_maps = inline:{ bob@corp.test=bob-copy@corp.test }
recipient_canonical_maps = inline:{ bob-copy@corp.test=bob-archive@corp.test }
always_bcc = journal@corp.test
`, sink.Port), fmt.Sprintf(`127.0.0.1:PORT inet n - n - - smtpd
127.0.0.1:%d inet n - n - - smtpd
  -o receive_override_options=no_address_mappings
`, plainPort))

	send := func(addr, subject string) {
		if code, text := sendThrough(t, addr, "boss@src.test", "bob+tag@corp.test", "Subject: "+subject+"\r\n\r\nx\r\n"); code != 250 {
			t.Fatalf("%s: DATA: %d %s", subject, code, text)
		}
	}
	send(p.Addr, "bcc")
	send(fmt.Sprintf("127.0.0.1:%d", plainPort), "plain")
	msgs := sink.WaitMessages(2, 30*time.Second)
	time.Sleep(time.Second) // a stray extra copy would be on its way
	if msgs = sink.Messages(); len(msgs) != 2 {
		t.Fatalf("sink got %d messages, want 2\n%s", len(msgs), p.Log(""))
	}
	want := map[string][]string{
		"bcc":   {"archive-boss@corp.test", "bob+tag@corp.test", "bob-archive@corp.test", "journal@corp.test"},
		"plain": {"bob+tag@corp.test"},
	}
	for _, m := range msgs {
		env, body := harness.SinkBody(m)
		subject := subjectRe.FindStringSubmatch(body)
		if subject == nil {
			t.Fatalf("no Subject in\n%s", m)
		}
		var rcpts []string
		for _, a := range sinkArgRe.FindAllStringSubmatch(env, -1) {
			if a[1] == "Rcpt" {
				rcpts = append(rcpts, a[2])
			}
		}
		slices.Sort(rcpts)
		if w := want[subject[1]]; !slices.Equal(rcpts, w) {
			t.Errorf("%s: recipients %v, want %v\n%s", subject[1], rcpts, w, env)
		}
		if subject[1] == "bcc" && strings.Count(env, "NOTIFY=NEVER") != 3 {
			t.Errorf("the BCC copies should ask for no notices:\n%s", env)
		}
	}
}

// TestAutoBCCLookupError: a sender_bcc_maps table that cannot answer
// refuses the message for now, as Postfix's cleanup does ("map lookup
// problem -- message not accepted, try again later"), and queues nothing.
func TestAutoBCCLookupError(t *testing.T) {
	t.Parallel()
	dead := harness.FreePort(t)
	p := harness.Start(t, fmt.Sprintf("sender_bcc_maps = tcp:127.0.0.1:%d\n", dead), "")
	code, text := sendThrough(t, p.Addr, "boss@src.test", "u@relay.test", "Subject: x\r\n\r\nx\r\n")
	if code != 451 || text != "4.3.0 Error: queue file write error" {
		t.Errorf("DATA with sender_bcc_maps failing: %d %s", code, text)
	}
	want := "sender_bcc_maps map lookup problem"
	if log := p.Log(want); !strings.Contains(log, want) || !strings.Contains(log, "message not accepted, try again later") {
		t.Errorf("log:\n%s", log)
	}
	if n := len(queueJSON(t, p)); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}
