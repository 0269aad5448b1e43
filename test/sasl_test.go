package test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"postgate/test/harness"
)

// startDovecotAuth runs a private Dovecot with only its auth service, on
// an inet listener on loopback, users from a passwd-file, and returns its
// port. It is stopped when the test ends.
func startDovecotAuth(t *testing.T, users string) int {
	t.Helper()
	bin := harness.Need(t, "dovecot", "dovecot-core")
	dir, err := os.MkdirTemp("", "postgate-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // dovecot's unprivileged processes read the users file
	port := harness.FreePort(t)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = %[2]d
  }
}
service anvil {
  chroot =
}
`, dir, port)
	for name, text := range map[string]string{"dovecot.conf": conf, "users": users} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// (Its log is dovecot.log in dir.)
	harness.StartPeer(t, exec.Command(bin, "-c", filepath.Join(dir, "dovecot.conf"), "-F"), fmt.Sprintf("127.0.0.1:%d", port))
	return port
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSASLDovecot: AUTH against a real Dovecot auth service, postgate and
// the real Postfix configured alike and asked the same: every reply is
// Postfix's (right and wrong passwords, PLAIN and LOGIN, an unknown
// mechanism, an aborted exchange, AUTH twice, AUTH inside a transaction),
// and an authenticated client relays to a foreign domain while an
// unauthenticated one is refused.
func TestSASLDovecot(t *testing.T) {
	t.Parallel()
	port := startDovecotAuth(t, "carol:{PLAIN}s3cret\n")
	settings := fmt.Sprintf("smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:127.0.0.1:%d\n", port) +
		"smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n" +
		"mynetworks = 127.0.0.1/32\nsmtpd_banner = $myhostname ESMTP\n"
	pf := harness.StartPostfix(t, settings)
	pg := harness.Start(t, settings, "")
	host := map[string]string{pf.Addr: "postfix.bench.test", pg.Addr: "mx.gateway.test"}

	run := func(addr string, cmds ...string) []string {
		c := harness.Dial(t, addr, outside)
		defer c.Conn.Close()
		var out []string
		for _, cmd := range cmds {
			code, text := c.Cmd("%s", cmd)
			out = append(out, strings.ReplaceAll(fmt.Sprintf("%d %s", code, text), host[addr], "HOST"))
		}
		return out
	}
	same := func(name string, cmds ...string) []string {
		t.Helper()
		want, got := run(pf.Addr, cmds...), run(pg.Addr, cmds...)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\npostgate:\n%s\nPostfix:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		return got
	}
	ehlo := same("EHLO", "EHLO client.test")
	if !strings.Contains(ehlo[0], "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO does not offer AUTH: %q", ehlo)
	}
	same("wrong PLAIN", "EHLO client.test", "AUTH PLAIN "+b64("\x00carol\x00wrong"))
	same("wrong LOGIN", "EHLO client.test", "AUTH LOGIN", b64("carol"), b64("wrong"))
	same("unknown mechanism", "EHLO client.test", "AUTH CRAM-MD5")
	same("aborted", "EHLO client.test", "AUTH PLAIN", "*")
	same("in a transaction", "EHLO client.test", "MAIL FROM:<a@src.test>", "AUTH PLAIN "+b64("\x00carol\x00s3cret"))
	same("unauthenticated relay", "EHLO client.test", "MAIL FROM:<a@src.test>", "RCPT TO:<x@elsewhere.test>")
	ok := same("right PLAIN", "EHLO client.test", "AUTH PLAIN "+b64("\x00carol\x00s3cret"), "AUTH PLAIN "+b64("\x00carol\x00s3cret"),
		"MAIL FROM:<carol@src.test>", "RCPT TO:<x@elsewhere.test>")
	if !strings.HasPrefix(ok[1], "235 2.7.0") || !strings.HasPrefix(ok[4], "250 ") {
		t.Errorf("authenticated relay: %q", ok)
	}
	same("right LOGIN", "EHLO client.test", "AUTH LOGIN", b64("carol"), b64("s3cret"), "MAIL FROM:<carol@src.test>", "RCPT TO:<x@elsewhere.test>")

	log := pg.Log("SASL LOGIN authentication failed")
	if !strings.Contains(log, "warning: unknown[127.0.0.5]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=carol") {
		t.Errorf("no Postfix-shaped failure line:\n%s", log)
	}
	if !strings.Contains(pg.Log("sasl_username=carol"), "client=unknown[127.0.0.5], sasl_method=PLAIN, sasl_username=carol") {
		t.Errorf("no client= line with the SASL login:\n%s", pg.Log(""))
	}
}

// TestSASLFile: postgate's own password file (bcrypt and argon2id
// hashes), with swaks as the client: the right password relays to a
// foreign domain and the message reaches the sink, a wrong one gets
// 535 5.7.8; smtpd_sender_login_maps with reject_sender_login_mismatch;
// with smtpd_tls_auth_only and no TLS, AUTH is neither offered nor taken.
func TestSASLFile(t *testing.T) {
	t.Parallel()
	swaks := harness.Need(t, "swaks", "swaks")
	sink := harness.StartSink(t)
	bc, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	argon := fmt.Sprintf("$argon2id$v=19$m=1024,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("bob-pw"), salt, 1, 1024, 1, 32)))
	passwd := filepath.Join(t.TempDir(), "sasl_passwd")
	if err := os.WriteFile(passwd, []byte("# users\nalice:"+string(bc)+"\nbob:"+argon+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := "smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = file\nsmtpd_sasl_path = " + passwd + "\n" +
		"smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n" +
		"smtpd_sender_restrictions = reject_sender_login_mismatch\n" +
		"smtpd_sender_login_maps = inline:{ alice@src.test=alice, bob@src.test=bob }\n" +
		routes("elsewhere.test", sink)
	p := harness.Start(t, settings, "")
	send := func(user, pass, from, subject string) (string, error) {
		out, err := exec.Command(swaks, "--server", p.Addr, "--local-interface", outside, "--from", from, "--to", "x@elsewhere.test",
			"--auth", "LOGIN", "--auth-user", user, "--auth-password", pass, "--header", "Subject: "+subject, "--timeout", "20").CombinedOutput()
		return string(out), err
	}
	if out, err := send("alice", "alice-pw", "alice@src.test", "alice relays"); err != nil {
		t.Fatalf("swaks as alice: %v\n%s", err, out)
	}
	if out, err := send("bob", "bob-pw", "bob@src.test", "bob relays"); err != nil {
		t.Fatalf("swaks as bob (argon2id): %v\n%s", err, out)
	}
	if msgs := sink.WaitMessages(2, 30*time.Second); len(msgs) != 2 {
		t.Errorf("sink got %d messages, want 2", len(msgs))
	}
	if out, _ := send("alice", "wrong", "alice@src.test", "wrong"); !strings.Contains(out, "535 5.7.8 Error: authentication failed: authentication failure") {
		t.Errorf("wrong password:\n%s", out)
	}
	if out, _ := send("alice", "alice-pw", "bob@src.test", "not hers"); !strings.Contains(out, "553 5.7.1 <bob@src.test>: Sender address rejected: not owned by user alice") {
		t.Errorf("alice sending as bob:\n%s", out)
	}
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<alice@src.test>")
	c.Expect(553, "RCPT TO:<x@elsewhere.test>") // the sender is owned, and the client not logged in
	c.Expect(221, "QUIT")
	p.Log("warning: unknown[127.0.0.5]: SASL LOGIN authentication failed: authentication failure, sasl_username=alice")

	// smtpd_client_auth_rate_limit: the third AUTH within the time unit,
	// whatever became of the first two, is refused as Postfix refuses it.
	r := harness.Start(t, settings+"smtpd_client_auth_rate_limit = 2\n", "")
	c = harness.Dial(t, r.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(535, "AUTH PLAIN %s", b64("\x00alice\x00wrong"))
	c.Expect(535, "AUTH PLAIN %s", b64("\x00alice\x00wrong"))
	if code, text := c.Cmd("AUTH PLAIN %s", b64("\x00alice\x00alice-pw")); code != 450 || text != "4.7.1 Error: too many AUTH commands from 127.0.0.5" {
		t.Errorf("third AUTH: %d %s", code, text)
	}
	r.Log("warning: AUTH command rate limit exceeded: 3 from unknown[127.0.0.5] for service")

	// smtpd_tls_auth_only without TLS: no AUTH.
	q := harness.Start(t, settings+"smtpd_tls_auth_only = yes\n", "")
	c = harness.Dial(t, q.Addr, outside)
	if text := c.Expect(250, "EHLO client.test"); strings.Contains(text, "AUTH") {
		t.Errorf("AUTH offered without TLS under smtpd_tls_auth_only:\n%s", text)
	}
	c.Expect(504, "AUTH PLAIN %s", b64("\x00alice\x00alice-pw"))
}
