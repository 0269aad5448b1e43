package test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

func TestBannerAndMaillogPrefix(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	c := harness.DialRaw(t, p.Addr, outside)
	if code, text := c.Reply(); code != 220 || text != "mx.gateway.test ESMTP postgate" {
		t.Errorf("greeting: %d %s, want 220 mx.gateway.test ESMTP postgate", code, text)
	}
	c.Expect(221, "QUIT")
	log := p.Log("disconnect from")
	prefix := regexp.MustCompile(`^[A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} mx\.gateway\.test postgate/(smtpd|master)\[[0-9]+\]: `)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	for _, l := range lines {
		if !prefix.MatchString(l) {
			t.Errorf("maillog line without the syslog prefix: %q", l)
		}
	}
	if !strings.Contains(log, "disconnect from unknown["+outside+"] quit=1 commands=1") {
		t.Errorf("maillog lacks the disconnect line:\n%s", log)
	}
}

func TestCustomBanner(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_banner = $myhostname ESMTP ready\n", "")
	c := harness.DialRaw(t, p.Addr, outside)
	if code, text := c.Reply(); code != 220 || text != "mx.gateway.test ESMTP ready" {
		t.Errorf("greeting: %d %s, want 220 mx.gateway.test ESMTP ready", code, text)
	}
}

// TestHardErrorLimit: smtpd_hard_error_limit counts every error reply the
// session sends (rejections included) and then hangs up as Postfix does.
func TestHardErrorLimit(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 10\n", "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	for i := 0; i < 3; i++ {
		c.Expect(554, "RCPT TO:<x%d@foreign.test>", i)
	}
	if code, text := c.Cmd("RCPT TO:<u@relay.test>"); code != 421 || text != "4.7.0 mx.gateway.test Error: too many errors" {
		t.Errorf("after 3 errors: %d %s, want 421 4.7.0 mx.gateway.test Error: too many errors", code, text)
	}
	if !c.Closed() {
		t.Error("connection not closed after too many errors")
	}
	if log := p.Log("too many errors"); !strings.Contains(log, "too many errors after RCPT from unknown["+outside+"]") {
		t.Errorf("maillog lacks the too-many-errors line:\n%s", log)
	}
}

// TestDSNParametersStored: NOTIFY, ORCPT, RET and ENVID are kept with the
// envelope for the bounces of the delivery stage.
func TestDSNParametersStored(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test> RET=HDRS ENVID=env+2Did42")
	c.Expect(250, "RCPT TO:<u@relay.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@relay.test")
	c.Expect(250, "RCPT TO:<v@relay.test> NOTIFY=NEVER")
	c.Expect(354, "DATA")
	c.Send("Subject: dsn\r\n\r\nx\r\n.\r\n")
	code, text := c.Reply()
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	id := queuedRe.FindStringSubmatch(text)[1]
	out, err := p.Run("queue", "show", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"named_attribute: envelope_id=env-id42\n", "named_attribute: ret=HDRS\n",
		"original_recipient: rfc822;orig@relay.test\ndsn_notify: SUCCESS,FAILURE\nrecipient: u@relay.test\n",
		"dsn_notify: NEVER\nrecipient: v@relay.test\n",
		"/" + id + " ***\nReceived: from client.src.test",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("queue show lacks %q:\n%s", want, out)
		}
	}
}

// TestListenersWithOverrides: each master.cf smtpd service listens with its
// own -o overrides.
func TestListenersWithOverrides(t *testing.T) {
	t.Parallel()
	second := harness.FreePort(t)
	master := "127.0.0.1:PORT inet n - n - - smtpd\n" +
		"127.0.0.1:" + strconv.Itoa(second) + " inet n - n - - smtpd\n" +
		"  -o message_size_limit=5000\n  -o { smtpd_relay_restrictions = permit_mynetworks, reject }\n"
	p := harness.Start(t, rejectUnauth, master)

	a := harness.Dial(t, p.Addr, outside)
	if ehlo := a.Expect(250, "EHLO client.src.test"); !strings.Contains(ehlo, "\nSIZE 10240000") {
		t.Errorf("first listener EHLO:\n%s", ehlo)
	}
	a.Expect(250, "MAIL FROM:<a@src.test>")
	a.Expect(250, "RCPT TO:<u@relay.test>")

	b := harness.Dial(t, "127.0.0.1:"+strconv.Itoa(second), outside)
	if ehlo := b.Expect(250, "EHLO client.src.test"); !strings.Contains(ehlo, "\nSIZE 5000") {
		t.Errorf("second listener EHLO:\n%s", ehlo)
	}
	b.Expect(250, "MAIL FROM:<a@src.test>")
	if code, text := b.Cmd("RCPT TO:<u@relay.test>"); code != 554 || text != "5.7.1 <u@relay.test>: Recipient address rejected: Access denied" {
		t.Errorf("second listener RCPT: %d %s", code, text)
	}
}

// TestBareLFNote: smtpd_forbid_bare_newline = note normalizes and notes
// bare LF on the disconnect line.
func TestBareLFNote(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_forbid_bare_newline = note\n", "")
	c := outsideTxn(t, p.Addr)
	c.Expect(354, "DATA")
	c.Send("Subject: note\n\nbare\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	c.Expect(221, "QUIT")
	if log := p.Log("notes=bare_lf"); !strings.Contains(log, "data=1 quit=1 commands=5 notes=bare_lf") {
		t.Errorf("maillog lacks notes=bare_lf:\n%s", log)
	}
}

// TestEmbeddedDefaults: with no -c and no /etc/postgate, serve runs on the
// embedded defaults, says so, and keeps its queue in ./postgate-queue.
func TestEmbeddedDefaults(t *testing.T) {
	if _, err := os.Stat("/etc/postgate"); err == nil {
		t.Skip("/etc/postgate exists on this machine: the embedded defaults are not used")
	}
	dir := t.TempDir()
	cmd := exec.Command(harness.Binary(t), "serve")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 10)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var said []string
	deadline := time.After(10 * time.Second)
	for len(said) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("postgate serve exited: %v", said)
			}
			said = append(said, l)
		case <-deadline:
			t.Fatalf("postgate serve said only %v", said)
		}
	}
	if !strings.Contains(said[0], "running on embedded defaults") || said[1] != "postgate: listening on 127.0.0.1:2525" {
		t.Fatalf("postgate serve said %q", said)
	}
	// The embedded defaults use the machine's resolver, which tests must
	// never ask: this message needs no DNS (an address literal of ours is
	// local, and a bounce of the null sender is discarded). An unknown
	// local user is refused at RCPT; postmaster is always known.
	c := harness.Dial(t, "127.0.0.1:2525", "127.0.0.1")
	c.Expect(250, "EHLO inside.test")
	c.Expect(250, "MAIL FROM:<>")
	if code, text := c.Cmd("RCPT TO:<u@[127.0.0.1]>"); code != 550 || !strings.Contains(text, "User unknown in local recipient table") {
		t.Errorf("unknown local user: %d %s, want 550 ... User unknown in local recipient table", code, text)
	}
	c.Expect(250, "RCPT TO:<postmaster@[127.0.0.1]>")
	c.Expect(354, "DATA")
	c.Send("Subject: embedded\r\n\r\nx\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	if _, err := os.Stat(dir + "/postgate-queue"); err != nil {
		t.Errorf("no queue in ./postgate-queue: %v", err)
	}
	o := harness.Dial(t, "127.0.0.1:2525", outside)
	o.Expect(250, "EHLO client.src.test")
	o.Expect(250, "MAIL FROM:<a@src.test>")
	if code, _ := o.Cmd("RCPT TO:<u@foreign.test>"); code != 454 {
		t.Errorf("outside client relaying on the embedded defaults: %d, want 454", code)
	}
}
