package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestReload: `postgate reload` and SIGHUP re-read main.cf without
// dropping a session. A session open across the reload finishes on the
// restrictions it started with and its message is delivered; the next
// session gets the new ones. A parameter only a restart applies is named
// in a warning; a configuration that does not load is refused with its
// error and the running one stays.
func TestReload(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink), "")
	mainCf := filepath.Join(p.Dir, "main.cf")
	appendMain := func(text string) {
		t.Helper()
		f, err := os.OpenFile(mainCf, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(text)
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	reload := func() (string, error) {
		out, err := exec.Command(harness.Binary(t), "reload", "-c", p.Dir).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// rcpt opens a session and answers RCPT's reply; the session is left
	// open at that point.
	rcpt := func() (*harness.Client, int, string) {
		c := harness.Dial(t, p.Addr, outside)
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		code, text := c.Cmd("RCPT TO:<u@relay.test>")
		return c, code, text
	}

	before := harness.Dial(t, p.Addr, outside)
	before.Expect(250, "EHLO client.test")
	before.Expect(250, "MAIL FROM:<a@src.test>")

	appendMain("smtpd_sender_restrictions = check_sender_access inline:{ {a@src.test=REJECT reloaded} }\nminimal_backoff_time = 2s\n")
	if out, err := reload(); err != nil || out != "postgate: refreshing the postgate mail system" {
		t.Fatalf("postgate reload: %q (%v)", out, err)
	}
	p.Log("postgate/master[")
	log := p.Log("reload -- version ")
	if !strings.Contains(log, "warning: reload: minimal_backoff_time changed: it takes effect after a restart") {
		t.Errorf("no warning for a restart-only parameter:\n%s", log)
	}

	// The session opened before the reload: old restrictions, delivered.
	before.Expect(250, "RCPT TO:<u@relay.test>")
	before.Expect(354, "DATA")
	before.Send("Subject: across the reload\r\n\r\nx\r\n.\r\n")
	if code, text := before.Reply(); code != 250 {
		t.Fatalf("DATA of the session open across the reload: %d %s", code, text)
	}
	before.Expect(221, "QUIT")
	if msgs := sink.WaitMessages(1, 30*time.Second); len(msgs) != 1 || !strings.Contains(msgs[0], "across the reload") {
		t.Errorf("sink got %d messages, want the one sent across the reload", len(msgs))
	}
	// The next session: the new restrictions.
	if _, code, text := rcpt(); code != 554 || !strings.Contains(text, "<a@src.test>: Sender address rejected: reloaded") {
		t.Errorf("RCPT after reload: %d %s", code, text)
	}

	// A configuration that does not load: refused, the running one stays.
	appendMain("smtpd_sender_restrictions = no_such_restriction\n")
	if out, err := reload(); err == nil || !strings.Contains(out, "smtpd_sender_restrictions") || !strings.Contains(out, "no_such_restriction") {
		t.Errorf("reload of a broken main.cf: %q (%v), want an error naming the parameter", out, err)
	}
	p.Log("warning: reload: ")
	if _, code, text := rcpt(); code != 554 {
		t.Errorf("RCPT after a refused reload: %d %s, want the running configuration's 554", code, text)
	}

	// SIGHUP: the restriction is gone again.
	appendMain("smtpd_sender_restrictions =\n")
	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.Log("reload -- "), "reload -- ") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if _, code, text := rcpt(); code != 250 {
		t.Errorf("RCPT after SIGHUP: %d %s", code, text)
	}
}

// TestReloadAnvil: a reload applies new anvil limits to the counts the
// state store kept across it.
func TestReloadAnvil(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_client_message_rate_limit = 5\n", "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	for range 2 {
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(250, "RSET")
	}
	f, err := os.OpenFile(filepath.Join(p.Dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("smtpd_client_message_rate_limit = 3\n")
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(harness.Binary(t), "reload", "-c", p.Dir).CombinedOutput(); err != nil {
		t.Fatalf("postgate reload: %s (%v)", out, err)
	}
	p.Log("reload -- version ")
	c = harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RSET")
	if code, text := c.Cmd("MAIL FROM:<a@src.test>"); code != 450 || text != "4.7.1 Error: too much mail from 127.0.0.5" {
		t.Errorf("fourth MAIL after the reload to 3: %d %s", code, text)
	}
}
