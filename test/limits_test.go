package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"message_size_limit = 10240000\n", "")

	c := harness.Dial(t, p.Addr, outside)
	ehlo := c.Expect(250, "EHLO client.src.test")
	if !strings.Contains(ehlo, "\nSIZE 10240000") {
		t.Errorf("EHLO does not advertise SIZE 10240000:\n%s", ehlo)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"} {
		if !strings.Contains(ehlo, "\n"+ext) {
			t.Errorf("EHLO does not advertise %s:\n%s", ext, ehlo)
		}
	}
	if code, text := c.Cmd("MAIL FROM:<a@src.test> SIZE=10240001"); code != 552 || !strings.HasPrefix(text, "5.3.4 ") {
		t.Errorf("SIZE= over the limit: %d %s, want 552 5.3.4", code, text)
	}

	big := strings.Repeat(strings.Repeat("y", 998)+"\r\n", 10240000/1000+10)
	// DATA over the limit.
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send(big + ".\r\n")
	if code, text := c.Reply(); code != 552 || !strings.HasPrefix(text, "5.3.4 ") {
		t.Errorf("DATA over the limit: %d %s, want 552 5.3.4", code, text)
	}
	// BDAT over the limit.
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(big), big))
	if code, text := c.Reply(); code != 552 || !strings.HasPrefix(text, "5.3.4 ") {
		t.Errorf("BDAT over the limit: %d %s, want 552 5.3.4", code, text)
	}
	// Nothing was queued.
	if msgs := queueJSON(t, p); len(msgs) != 0 {
		t.Errorf("oversized messages were queued: %v", msgs)
	}
	// A message under the limit still goes through on the same session.
	c.Expect(250, "MAIL FROM:<a@src.test> SIZE=100")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Send("BDAT 20 LAST\r\nSubject: ok\r\n\r\nbody\r\n")
	if code, text := c.Reply(); code != 250 || !strings.Contains(text, "Ok: 22 bytes queued as ") {
		t.Errorf("BDAT under the limit: %d %s", code, text)
	}
}

func TestSessionCap(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "127.0.0.1:PORT inet n - n - 2 smtpd\n")
	// The harness's readiness probe holds a slot until the server sees it
	// close: wait for a free slot rather than assume one.
	a := dialWhenFree(t, p.Addr, outside)
	b := dialWhenFree(t, p.Addr, outside)
	c := harness.DialRaw(t, p.Addr, outside)
	if code, text := c.Reply(); code != 421 || text != "4.3.2 All server ports are busy" {
		t.Errorf("connection over the cap: %d %s, want 421 4.3.2 All server ports are busy", code, text)
	}
	if !c.Closed() {
		t.Error("connection over the cap was not closed")
	}
	a.Expect(221, "QUIT")
	// The freed slot takes a new session.
	d := dialWhenFree(t, p.Addr, outside)
	d.Expect(250, "EHLO client.src.test")
	b.Expect(250, "NOOP")
}

// dialWhenFree connects from address from until the greeting is 220 (a
// session slot was free: the harness's probe and closing sessions free
// theirs asynchronously), for at most 5 s.
func dialWhenFree(t *testing.T, addr, from string) *harness.Client {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := harness.DialRaw(t, addr, from)
		code, text := c.Reply()
		if code == 220 {
			return c
		}
		c.Conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s: no free session slot: %d %s", from, code, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRecipientLimit(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_recipient_limit = 5\n", "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	for i := 1; i <= 5; i++ {
		c.Expect(250, "RCPT TO:<u%d@relay.test>", i)
	}
	if code, text := c.Cmd("RCPT TO:<u6@relay.test>"); code != 452 || text != "4.5.3 Error: too many recipients" {
		t.Errorf("recipient 6: %d %s, want 452 4.5.3 Error: too many recipients", code, text)
	}
	c.Expect(354, "DATA")
	c.Send("Subject: five\r\n\r\nx\r\n.\r\n")
	code, text := c.Reply()
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	id := queuedRe.FindStringSubmatch(text)[1]
	if got := len(queueJSON(t, p)[id].Recipients); got != 5 {
		t.Errorf("queued %d recipients, want 5", got)
	}
}

// The smuggling sequences of CVE-2023-51764 and friends: none may end the
// message early, so an outside client never gets a second message queued.
var smuggling = []struct{ name, seq string }{
	{"LF.CRLF", "\n.\r\n"},
	{"CRLF.LF", "\r\n.\n"},
	{"LF.LF", "\n.\n"},
	{"CR.CRLF", "\r.\r\n"},
}

const smuggled = "MAIL FROM:<spoof@src.test>\r\nRCPT TO:<victim@relay.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"

func TestSmugglingNormalized(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	for _, sm := range smuggling {
		for _, bdat := range []bool{false, true} {
			c := outsideTxn(t, p.Addr)
			payload := "Subject: " + sm.name + "\r\n\r\nbefore" + sm.seq + smuggled
			sendContent(c, payload, bdat)
			if code, text := c.Reply(); code != 250 {
				t.Errorf("%s (bdat=%v): %d %s", sm.name, bdat, code, text)
			}
			c.Expect(221, "QUIT")
		}
	}
	msgs := queueJSON(t, p)
	if len(msgs) != 2*len(smuggling) {
		t.Errorf("%d messages queued, want %d", len(msgs), 2*len(smuggling))
	}
	for id, m := range msgs {
		if m.Sender != "a@src.test" {
			t.Errorf("%s: smuggled message queued: sender %q", id, m.Sender)
		}
		stored := showRaw(t, p, id)
		if strings.Contains(strings.ReplaceAll(string(stored), "\r\n", ""), "\n") {
			t.Errorf("%s: stored copy has a bare LF: %q", id, stored)
		}
	}
}

func TestBareLFReject(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_forbid_bare_newline = reject\n", "")
	for _, bdat := range []bool{false, true} {
		c := outsideTxn(t, p.Addr)
		payload := "Subject: x\r\n\r\nbefore\n.\r\n" + smuggled
		sendContent(c, payload, bdat)
		if code, text := c.Reply(); code != 550 || text != "5.5.2 mx.gateway.test Error: bare <LF> received" {
			t.Errorf("bdat=%v: %d %s, want 550 5.5.2 mx.gateway.test Error: bare <LF> received", bdat, code, text)
		}
	}
	if msgs := queueJSON(t, p); len(msgs) != 0 {
		t.Errorf("messages with bare LF were queued: %v", msgs)
	}
	// A command line ending in a bare LF: refused, and the client is
	// disconnected (Postfix 3.9+).
	cmd := harness.Dial(t, p.Addr, outside)
	cmd.Send("EHLO client.src.test\n")
	if code, text := cmd.Reply(); code != 550 || text != "5.5.2 mx.gateway.test Error: bare <LF> received" {
		t.Errorf("bare LF command: %d %s, want 550 5.5.2 mx.gateway.test Error: bare <LF> received", code, text)
	}
	if !cmd.Closed() {
		t.Error("bare LF command: connection not closed")
	}
	if log := p.Log("reject: CONNECT from"); !strings.Contains(log, "NOQUEUE: reject: CONNECT from unknown["+outside+"]: bare <LF> received;") {
		t.Errorf("maillog lacks the bare LF reject line:\n%s", log)
	}
	// mynetworks is excluded by default: its bare LF is normalized.
	c := harness.Dial(t, p.Addr, "127.0.0.1")
	c.Expect(250, "EHLO inside.test")
	c.Expect(250, "MAIL FROM:<a@inside.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: x\n\nbare\nend\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Errorf("bare LF from mynetworks: %d %s", code, text)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_timeout = 2s\n", "")

	// Trickled DATA: 5 s in all, no gap longer than 0.5 s: accepted.
	c := outsideTxn(t, p.Addr)
	c.Expect(354, "DATA")
	c.Send("Subject: slow\r\n\r\n")
	for i := 0; i < 10; i++ {
		time.Sleep(500 * time.Millisecond)
		c.Send(fmt.Sprintf("line %d\r\n", i))
	}
	c.Send(".\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Errorf("trickled DATA: %d %s", code, text)
	}

	// One gap longer than smtpd_timeout inside DATA: 421 and disconnect.
	c = harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: stalled\r\n\r\nfirst line\r\n")
	if code, text := c.Reply(); code != 421 || text != "4.4.2 mx.gateway.test Error: timeout exceeded" {
		t.Errorf("stalled DATA: %d %s, want 421 4.4.2 mx.gateway.test Error: timeout exceeded", code, text)
	}
	if !c.Closed() {
		t.Error("stalled DATA: connection not closed")
	}
	// Postfix 3.7's line: the content bytes received, then the client.
	if log := p.Log("timeout after DATA"); !strings.Contains(log, "timeout after DATA (32 bytes) from unknown["+outside+"]") {
		t.Errorf("maillog lacks the timeout line:\n%s", log)
	}
	if n := len(queueJSON(t, p)); n != 1 {
		t.Errorf("%d messages queued, want only the trickled one", n)
	}
}
