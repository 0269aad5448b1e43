package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"postgate/test/harness"
)

// The SMTP client's smarthost login, sender-dependent routing, fallback
// relay and generic mapping, each shown through the binary against real
// peers on loopback: smtp-sink, and a second postgate that requires AUTH.

// startAuthSmarthost runs a postgate that relays to sink only for clients
// that log in, and offers AUTH only inside TLS (smtpd_tls_auth_only), with
// its password file holding users (name -> password). It returns the
// PKI of its certificate too.
func startAuthSmarthost(t *testing.T, sink *harness.Sink, users map[string]string) (*harness.Postgate, *tlsPKI) {
	t.Helper()
	pki := newTLSPKI(t)
	var lines []string
	for u, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u+":"+string(h))
	}
	passwd := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(passwd, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, routes("elsewhere.test", sink)+fmt.Sprintf(`myhostname = smarthost.test
smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = file
smtpd_sasl_path = %s
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
`, pki.serverFile, passwd), "")
	return p, pki
}

// sendAs sends one message to p from 127.0.0.1 (mynetworks) and returns
// its queue ID.
func sendAs(t *testing.T, p *harness.Postgate, from, to, headers string) string {
	t.Helper()
	id, err := trySendFrom("127.0.0.1", p.Addr, from, to, []byte(headers+"\r\nbody\r\n"))
	if err != nil {
		t.Fatalf("sending from %s to %s: %v", from, to, err)
	}
	return id
}

// deliveryLine waits for the delivery log line of message id to
// recipient to and returns it.
func deliveryLine(p *harness.Postgate, id, to string) string {
	want := id + ": to=<" + to + ">"
	return logLine(p.Log(want), want)
}

// TestSmarthostLogin: postgate A relays through postgate B, which takes
// mail for a foreign domain only from clients that log in, and offers
// AUTH only inside TLS. A logs in with the password of its
// smtp_sasl_password_maps entry for the next hop "[127.0.0.1]:PORT",
// after STARTTLS, under smtp_sasl_tls_security_options, with the
// mechanism smtp_sasl_mechanism_filter leaves; with
// smtp_sender_dependent_authentication the sender's own entry wins (its
// address extension dropped, as recipient_delimiter says); a wrong
// password defers the mail with Postfix's text; and under Postfix's
// default smtp_sasl_security_options (noplaintext), with no mechanism but
// PLAIN and LOGIN, the mail waits with Cyrus's reason.
func TestSmarthostLogin(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	b, _ := startAuthSmarthost(t, sink, map[string]string{"relayuser": "relay-pw", "alice": "alice-pw"})
	hop := fmt.Sprintf("[127.0.0.1]:%d", b.Port)
	client := "relayhost = " + hop + "\nsmtp_tls_security_level = may\nsmtp_sasl_auth_enable = yes\n"

	// A: the next hop's entry, LOGIN only, PLAIN-class mechanisms allowed
	// inside TLS only (smtp_sasl_security_options keeps its noplaintext
	// default).
	a := harness.Start(t, client+fmt.Sprintf(`smtp_sasl_password_maps = inline:{ {%s = relayuser:relay-pw} }
smtp_sasl_tls_security_options = noanonymous
smtp_sasl_mechanism_filter = !plain, login
`, hop), "")
	id := sendAs(t, a, "a@src.test", "u@elsewhere.test", "Subject: through the smarthost\r\n")
	if line := deliveryLine(a, id, "u@elsewhere.test"); !strings.Contains(line, fmt.Sprintf("relay=127.0.0.1[127.0.0.1]:%d,", b.Port)) || !strings.Contains(line, "status=sent") {
		t.Fatalf("A did not deliver through B:\n%s", a.Log(""))
	}
	if line := logLine(b.Log("sasl_username=relayuser"), "sasl_username=relayuser"); !strings.Contains(line, "sasl_method=LOGIN, sasl_username=relayuser") {
		t.Errorf("B's log has no LOGIN by relayuser:\n%s", b.Log(""))
	}
	if msgs := sink.WaitMessages(1, 30*time.Second); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: through the smarthost") {
		t.Fatalf("sink got %d messages, want the one A sent", len(msgs))
	}

	// A2: sender-dependent logins; the next hop's entry has a wrong
	// password.
	a2 := harness.Start(t, client+fmt.Sprintf(`smtp_sasl_password_maps = inline:{ {alice@src.test = alice:alice-pw}, {%s = relayuser:wrong} }
smtp_sender_dependent_authentication = yes
smtp_sasl_security_options = noanonymous
recipient_delimiter = +
`, hop)+fastRetry, "")
	id = sendAs(t, a2, "alice+lists@src.test", "u@elsewhere.test", "Subject: alice's own login\r\n")
	if !strings.Contains(deliveryLine(a2, id, "u@elsewhere.test"), "status=sent") {
		t.Fatalf("alice's mail was not delivered:\n%s", a2.Log(""))
	}
	if line := logLine(b.Log("sasl_username=alice"), "sasl_username=alice"); !strings.Contains(line, "sasl_method=PLAIN, sasl_username=alice") {
		t.Errorf("B's log has no PLAIN login by alice:\n%s", b.Log(""))
	}
	id = sendAs(t, a2, "bob@src.test", "u@elsewhere.test", "Subject: wrong password\r\n")
	line := deliveryLine(a2, id, "u@elsewhere.test")
	if !strings.Contains(line, fmt.Sprintf("relay=127.0.0.1[127.0.0.1]:%d,", b.Port)) || !strings.Contains(line, "dsn=4.7.8, status=deferred (SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: authentication failure)") {
		t.Errorf("wrong password: want a deferral with Postfix's text, got %q\n%s", line, a2.Log(""))
	}
	if q, err := a2.Run("queue", "list"); err != nil || !strings.Contains(q, "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8") {
		t.Errorf("the queue does not show why bob's mail waits: %v\n%s", err, q)
	}

	// A3: Postfix's default security options rule out PLAIN and LOGIN.
	a3 := harness.Start(t, client+fmt.Sprintf("smtp_sasl_password_maps = inline:{ {%s = relayuser:relay-pw} }\n", hop), "")
	id = sendAs(t, a3, "a@src.test", "u@elsewhere.test", "Subject: no mechanism\r\n")
	if line := deliveryLine(a3, id, "u@elsewhere.test"); !strings.Contains(line, "dsn=4.7.0, status=deferred (SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: no mechanism available)") {
		t.Errorf("default security options: got %q\n%s", line, a3.Log(""))
	}
	if msgs := sink.Messages(); len(msgs) != 2 {
		t.Errorf("sink got %d messages, want 2 (A's and alice's)", len(msgs))
	}
}

// TestSmarthostLoginOptions: with smtp_sasl_auth_soft_bounce = no a 535
// reply to AUTH bounces the mail, as Postfix does; with the smarthost's
// certificate verified (smtp_tls_security_level = verify),
// smtp_sasl_tls_verified_security_options applies, not
// smtp_sasl_tls_security_options.
func TestSmarthostLoginOptions(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	b, pki := startAuthSmarthost(t, sink, map[string]string{"relayuser": "relay-pw"})
	for _, c := range []struct{ name, settings, want string }{
		{"hard bounce", `smtp_tls_security_level = may
smtp_sasl_password_maps = inline:{ {127.0.0.1 = relayuser:wrong} }
smtp_sasl_security_options = noanonymous
smtp_sasl_auth_soft_bounce = no
`, "dsn=5.7.8, status=bounced (SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: authentication failure)"},
		{"verified", `smtp_tls_security_level = verify
smtp_tls_CAfile = ` + pki.caFile + `
smtp_sasl_password_maps = inline:{ {127.0.0.1 = relayuser:relay-pw} }
smtp_sasl_tls_security_options = noplaintext
smtp_sasl_tls_verified_security_options = noanonymous
`, "dsn=2.0.0, status=sent"},
	} {
		a := harness.Start(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\nsmtp_sasl_auth_enable = yes\n", b.Port)+c.settings, "")
		id := sendAs(t, a, "a@src.test", "u@elsewhere.test", "Subject: "+c.name+"\r\n")
		if line := deliveryLine(a, id, "u@elsewhere.test"); !strings.Contains(line, c.want) {
			t.Errorf("%s: got %q, want %q\n%s", c.name, line, c.want, a.Log(""))
		}
	}
}

// TestSenderDependentRelayhost: sender_dependent_relayhost_maps sends
// two senders' mail to two smarthosts (the first by an address with an
// extension, found as the address without it, the second by @domain),
// everyone else's to relayhost; sender_dependent_default_transport_maps
// gives a fourth sender's mail its own transport and next hop.
func TestSenderDependentRelayhost(t *testing.T) {
	t.Parallel()
	s1, s2, s3, s4 := harness.StartSink(t), harness.StartSink(t), harness.StartSink(t), harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(`relayhost = [127.0.0.1]:%d
recipient_delimiter = +
sender_dependent_relayhost_maps = inline:{ {alice@src.test = [127.0.0.1]:%d}, {@other.test = [127.0.0.1]:%d} }
sender_dependent_default_transport_maps = inline:{ {dave@src.test = smtp:[127.0.0.1]:%d} }
`, s3.Port, s1.Port, s2.Port, s4.Port), "")
	for _, from := range []string{"alice+news@src.test", "bob@other.test", "carol@src.test", "dave@src.test"} {
		sendAs(t, p, from, "u@elsewhere.test", "Subject: from "+from+"\r\n")
	}
	for _, c := range []struct {
		sink *harness.Sink
		from string
	}{{s1, "alice+news@src.test"}, {s2, "bob@other.test"}, {s3, "carol@src.test"}, {s4, "dave@src.test"}} {
		msgs := c.sink.WaitMessages(1, 30*time.Second)
		if len(msgs) != 1 || !strings.Contains(msgs[0], "X-Mail-Args: <"+c.from+">") {
			t.Errorf("sink on port %d: want only the mail of %s, got %d messages:\n%s", c.sink.Port, c.from, len(msgs), strings.Join(msgs, "\n---\n"))
		}
	}
}

// TestFallbackRelay: smtp_fallback_relay takes the mail when the next
// hop does not answer (a closed port), greets with 421, or answers RCPT
// with 4xx; each skip is logged as Postfix logs it. The older name
// fallback_relay works too.
func TestFallbackRelay(t *testing.T) {
	t.Parallel()
	fallback := harness.StartSink(t)
	greet421 := harness.StartSink(t, "-Q", "CONNECT")
	rcpt4xx := harness.StartSink(t, "-r", "RCPT")
	closed := harness.FreePort(t)
	p := harness.Start(t, fmt.Sprintf(`transport_maps = inline:{ {down.test = smtp:[127.0.0.1]:%d}, {busy.test = smtp:[127.0.0.1]:%d}, {soft.test = smtp:[127.0.0.1]:%d} }
smtp_fallback_relay = [127.0.0.1]:%d
`, closed, greet421.Port, rcpt4xx.Port, fallback.Port), "")
	var ids []string
	for _, to := range []string{"u@down.test", "u@busy.test", "u@soft.test"} {
		ids = append(ids, sendAs(t, p, "a@src.test", to, "Subject: to "+to+"\r\n"))
	}
	if msgs := fallback.WaitMessages(3, 30*time.Second); len(msgs) != 3 {
		t.Fatalf("fallback relay got %d messages, want 3\n%s", len(msgs), p.Log(""))
	}
	fb := fmt.Sprintf("relay=127.0.0.1[127.0.0.1]:%d", fallback.Port)
	for i, to := range []string{"u@down.test", "u@busy.test", "u@soft.test"} {
		if line := deliveryLine(p, ids[i], to); !strings.Contains(line, fb) || !strings.Contains(line, "status=sent") {
			t.Errorf("%s: want delivery through the fallback relay, got %q", to, line)
		}
	}
	log := p.Log("")
	for _, want := range []string{
		fmt.Sprintf("connect to 127.0.0.1[127.0.0.1]:%d: Connection refused", closed),
		fmt.Sprintf("%s: host 127.0.0.1[127.0.0.1] refused to talk to me: 421 ", ids[1]),
		fmt.Sprintf("%s: host 127.0.0.1[127.0.0.1] said: 450 ", ids[2]),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	old := harness.Start(t, fmt.Sprintf("relayhost = [127.0.0.1]:%d\nfallback_relay = [127.0.0.1]:%d\n", closed, fallback.Port), "")
	id := sendAs(t, old, "a@src.test", "u@elsewhere.test", "Subject: fallback_relay\r\n")
	if line := deliveryLine(old, id, "u@elsewhere.test"); !strings.Contains(line, fb) || !strings.Contains(line, "status=sent") {
		t.Errorf("fallback_relay: got %q\n%s", line, old.Log(""))
	}
}

// TestGenericMaps: smtp_generic_maps rewrites, on the way out, the
// envelope sender and recipients and the addresses of the sender and
// recipient headers, by address, by address without its extension and
// by @domain; the log and the queue keep the addresses as received.
func TestGenericMaps(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	p := harness.Start(t, routes("elsewhere.test", sink)+`recipient_delimiter = +
smtp_generic_maps = inline:{ {alice@internal.test = alice.smith@example.test}, {@host.internal.test = @example.test}, {old@elsewhere.test = new@elsewhere.test} }
`, "")
	id := sendAs(t, p, "alice+x@internal.test", "old@elsewhere.test",
		"From: Alice <alice@internal.test>\r\nTo: old@elsewhere.test\r\nCc: bob@host.internal.test, carol@other.test\r\nSubject: generic\r\n")
	msgs := sink.WaitMessages(1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages\n%s", len(msgs), p.Log(""))
	}
	env, msg := harness.SinkBody(msgs[0])
	if !strings.Contains(env, "X-Mail-Args: <alice.smith@example.test>") || !strings.Contains(env, "X-Rcpt-Args: <new@elsewhere.test>") {
		t.Errorf("envelope at the sink:\n%s", env)
	}
	for _, want := range []string{"From: Alice <alice.smith@example.test>\n", "To: new@elsewhere.test\n", "Cc: bob@example.test, carol@other.test\n", "Subject: generic\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message at the sink lacks %q:\n%s", want, msg)
		}
	}
	if !strings.Contains(deliveryLine(p, id, "old@elsewhere.test"), "status=sent") {
		t.Errorf("the log does not name the recipient as received:\n%s", p.Log(""))
	}
}
