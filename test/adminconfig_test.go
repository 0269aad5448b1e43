package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestAdminGatewayConfig: a main.cf as a Postfix admin fronting an
// internal server writes it, through the built binary: recipients
// validated against relay_recipient_maps and check_recipient_access, a
// virtual alias delivered to its target at the internal server, a
// relocated user refused, header_checks REJECT and PREPEND, body_checks
// DISCARD, and HOLD keeping a message in the hold queue.
func TestAdminGatewayConfig(t *testing.T) {
	t.Parallel()
	internal := harness.StartSink(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	access := write("recipient_access", "blocked@corp.test  REJECT this mailbox takes no outside mail\nheld@corp.test HOLD\n")
	relayRcpt := write("relay_recipients", "alice@corp.test x\nbob@corp.test x\nblocked@corp.test x\nheld@corp.test x\n")
	virtual := write("virtual", "sales@corp.test  alice@corp.test, bob@corp.test\n")
	relocated := write("relocated", "carol@corp.test  carol@newcorp.test\n")
	headers := write("header_checks", "/^Subject:.*viagra/ REJECT 5.7.1 no spam here\n/^Subject:/ PREPEND X-Scanned: by postgate\n")
	body := write("body_checks", "/^unsubscribe-now$/ DISCARD list noise\n")
	p := harness.Start(t, fmt.Sprintf(`relay_domains = corp.test
relay_recipient_maps = hash:%s
virtual_alias_maps = hash:%s
relocated_maps = hash:%s
header_checks = regexp:%s
body_checks = regexp:%s
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access hash:%s
transport_maps = inline:{ corp.test=smtp:[127.0.0.1]:%d }
`, relayRcpt, virtual, relocated, headers, body, access, internal.Port), "")

	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO mx.partner.test")
	c.Expect(250, "MAIL FROM:<x@partner.test>")
	for rcpt, want := range map[string]string{
		"nobody@corp.test":  "550 5.1.1 <nobody@corp.test>: Recipient address rejected: User unknown in relay recipient table",
		"blocked@corp.test": "554 5.7.1 <blocked@corp.test>: Recipient address rejected: this mailbox takes no outside mail",
		"carol@corp.test":   "550 5.1.6 <carol@corp.test>: Recipient address rejected: User has moved to carol@newcorp.test",
		"sales@corp.test":   "250 2.1.5 Ok",
	} {
		if code, text := c.Cmd("RCPT TO:<%s>", rcpt); fmt.Sprintf("%d %s", code, text) != want {
			t.Errorf("RCPT %s: %d %s, want %s", rcpt, code, text, want)
		}
	}
	c.Expect(354, "DATA")
	c.Send("Subject: quarterly numbers\r\nMessage-ID: <q1@partner.test>\r\n\r\nhello\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("aliased message: %d %s", code, text)
	}
	// The alias reached its two targets at the internal server, with the
	// PREPENDed header.
	msgs := internal.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "X-Rcpt-Args: <alice@corp.test>") || !strings.Contains(msgs[0], "X-Rcpt-Args: <bob@corp.test>") ||
		!strings.Contains(msgs[0], "X-Scanned: by postgate\nSubject: quarterly numbers") {
		t.Errorf("at the internal server: %q", msgs)
	}

	send := func(rcpt, content string) (int, string) {
		c.Expect(250, "MAIL FROM:<x@partner.test>")
		c.Expect(250, "RCPT TO:<%s>", rcpt)
		c.Expect(354, "DATA")
		c.Send(content + ".\r\n")
		return c.Reply()
	}
	if code, text := send("alice@corp.test", "Subject: cheap viagra\r\n\r\nx\r\n"); code != 550 || text != "5.7.1 no spam here" {
		t.Errorf("header_checks REJECT: %d %s", code, text)
	}
	if code, _ := send("alice@corp.test", "Subject: digest\r\n\r\nunsubscribe-now\r\n"); code != 250 {
		t.Errorf("body_checks DISCARD: %d, want 250", code)
	}
	code, text := send("held@corp.test", "Subject: review me\r\n\r\nx\r\n")
	if code != 250 {
		t.Fatalf("HOLD: %d %s", code, text)
	}
	id := queuedRe.FindStringSubmatch(text)[1]
	if q := queueJSON(t, p)[id].QueueName; q != "hold" {
		t.Errorf("HOLD: message %s in queue %q, want hold", id, q)
	}
	// Only the aliased message reached the internal server: the rejected
	// one was refused, the discarded one dropped, the held one kept.
	time.Sleep(500 * time.Millisecond)
	if n := len(internal.Messages()); n != 1 {
		t.Errorf("%d messages at the internal server, want 1", n)
	}
	if log := p.Log("discard: body unsubscribe-now"); !strings.Contains(log, "discard: body unsubscribe-now") {
		t.Errorf("no discard line in the log:\n%s", log)
	}
}
