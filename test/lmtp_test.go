package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// startDovecotLMTP runs a private Dovecot serving LMTP on a loopback port
// (and a unix socket in its directory) for the users given, with mail
// stored in Maildirs under dir/mail. It returns dir and the port.
func startDovecotLMTP(t *testing.T, users ...string) (string, int) {
	t.Helper()
	return startDovecotLMTPWith(t, "ssl = no", users...)
}

// startDovecotLMTPWith is startDovecotLMTP with ssl, Dovecot's TLS
// settings ("ssl = yes" and the certificate offer STARTTLS on LMTP).
func startDovecotLMTPWith(t *testing.T, ssl string, users ...string) (string, int) {
	t.Helper()
	bin := harness.Need(t, "dovecot", "dovecot-core")
	harness.Need(t, "/usr/lib/dovecot/lmtp", "dovecot-lmtpd")
	dir, err := os.MkdirTemp("", "postgate-lmtp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	for _, d := range []string{"mail", "home"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		os.Chown(filepath.Join(dir, d), 8, 8) // user mail owns the mail
	}
	var lines strings.Builder
	for _, u := range users {
		fmt.Fprintf(&lines, "%s::8:8::%s/home/%s::\n", u, dir, u)
	}
	port := harness.FreePort(t)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = lmtp
listen = 127.0.0.1
%[3]s
first_valid_uid = 8
first_valid_gid = 8
mail_location = maildir:%[1]s/mail/%%u
passdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[2]d
  }
  unix_listener lmtp {
    mode = 0666
  }
}
service anvil {
  chroot =
}
`, dir, port, ssl)
	for name, text := range map[string]string{"dovecot.conf": conf, "users": lines.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	harness.StartPeer(t, exec.Command(bin, "-c", filepath.Join(dir, "dovecot.conf"), "-F"), fmt.Sprintf("127.0.0.1:%d", port))
	return dir, port
}

// maildir lists the messages Dovecot stored for user.
func maildir(dir, user string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "mail", user, "new", "*"))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, string(b))
	}
	return out
}

// TestLMTPDovecot: delivery to a real Dovecot LMTP. One message for two
// known users and an unknown one in one transaction gives a delivery per
// known user (a reply each after the content, each in its Maildir) and one
// bounce with Dovecot's reply; the lmtp
// log lines are Postfix's. The same through Dovecot's unix socket, named
// as Postfix names it (lmtp:unix:/path).
func TestLMTPDovecot(t *testing.T) {
	t.Parallel()
	dir, port := startDovecotLMTP(t, "known@lmtp.test", "second@lmtp.test", "other@sock.test")
	bounces := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(`relay_domains = lmtp.test sock.test
smtpd_relay_restrictions = reject_unauth_destination
transport_maps = inline:{ lmtp.test=lmtp:inet:127.0.0.1:%d, sock.test=lmtp:unix:%s/run/lmtp, src.test=smtp:[127.0.0.1]:%d }
`, port, dir, bounces.Port), "")

	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<known@lmtp.test>")
	c.Expect(250, "RCPT TO:<nobody@lmtp.test>")
	c.Expect(250, "RCPT TO:<second@lmtp.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: over lmtp\r\n\r\nhello dovecot\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<other@sock.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: over the socket\r\n\r\nhello\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	c.Expect(221, "QUIT")

	log := p.Log("to=<other@sock.test>")
	for deadline := time.Now().Add(20 * time.Second); len(maildir(dir, "known@lmtp.test")) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
	}
	if got := maildir(dir, "known@lmtp.test"); len(got) != 1 || !strings.Contains(got[0], "hello dovecot") {
		t.Errorf("known user's Maildir holds %d messages", len(got))
	}
	// Two accepted recipients: two replies after the content, one each.
	if got := maildir(dir, "second@lmtp.test"); len(got) != 1 {
		t.Errorf("second user's Maildir holds %d messages", len(got))
	}
	if got := maildir(dir, "other@sock.test"); len(got) != 1 {
		t.Errorf("the socket user's Maildir holds %d messages", len(got))
	}
	log = p.Log("status=bounced")
	for _, want := range []string{
		fmt.Sprintf("postgate/lmtp[%d]:", p.Pid()),
		fmt.Sprintf("to=<known@lmtp.test>, relay=127.0.0.1[127.0.0.1]:%d,", port),
		"status=sent (250 2.0.0 <known@lmtp.test>",
		"status=sent (250 2.0.0 <second@lmtp.test>",
		"to=<nobody@lmtp.test>, relay=127.0.0.1[127.0.0.1]",
		"status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nobody@lmtp.test> User doesn't exist: nobody@lmtp.test (in reply to RCPT TO command))",
		"to=<other@sock.test>, relay=mx.gateway.test[" + dir + "/run/lmtp]",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The bounce goes back to the sender and reports Dovecot's reply as
	// Postfix does: the server's name and its reply (type smtp, for LMTP
	// too).
	msgs := bounces.WaitMessages(1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("bounce: %d messages", len(msgs))
	}
	for _, want := range []string{
		"Final-Recipient: rfc822; nobody@lmtp.test\n",
		"Status: 5.1.1\nRemote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 5.1.1 <nobody@lmtp.test> User doesn't exist:\n    nobody@lmtp.test\n",
	} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("bounce lacks %q:\n%s", want, msgs[0])
		}
	}
}
