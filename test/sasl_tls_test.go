package test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"postgate/test/harness"
)

// TestSASLOverSTARTTLS: with smtpd_tls_auth_only, AUTH is neither offered
// nor taken in clear text (504 5.5.4, as Postfix), and after STARTTLS it
// is offered and a right password relays to a foreign domain.
func TestSASLOverSTARTTLS(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	sink := harness.StartSink(t)
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	passwd := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(passwd, []byte("alice:"+string(h)+"\n"), 0o600)
	p := harness.Start(t, routes("elsewhere.test", sink)+fmt.Sprintf(`smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = file
smtpd_sasl_path = %s
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
`, pki.serverFile, passwd), "")

	c := harness.Dial(t, p.Addr, outside)
	if text := c.Expect(250, "EHLO client.test"); strings.Contains(text, "AUTH") || !strings.Contains(text, "STARTTLS") {
		t.Errorf("clear-text EHLO:\n%s", text)
	}
	if code, text := c.Cmd("AUTH PLAIN %s", b64("\x00alice\x00pw")); code != 504 || text != "5.5.4 Encryption required for requested authentication mechanism" {
		t.Errorf("AUTH in clear text: %d %s", code, text)
	}

	tc := tlsDial(t, p.Addr, pki.clientConfig(nil))
	if ok, mechs := tc.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Fatalf("AUTH after STARTTLS: %v %q", ok, mechs)
	}
	if err := tc.Auth(sasl.NewPlainClient("", "alice", "pw")); err != nil {
		t.Fatalf("AUTH PLAIN over TLS: %v", err)
	}
	if err := tc.SendMail("alice@src.test", []string{"x@elsewhere.test"}, strings.NewReader("Subject: over tls\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("relay after AUTH: %v", err)
	}
	if msgs := sink.WaitMessages(1, 30*time.Second); len(msgs) != 1 {
		t.Errorf("sink got %d messages", len(msgs))
	}
	if log := p.Log("sasl_username=alice"); !strings.Contains(log, "sasl_method=PLAIN, sasl_username=alice") {
		t.Errorf("log:\n%s", log)
	}
}

// TestReloadCertificate: a certificate replaced on disk is the one served
// after `postgate reload`; until then the old one is.
func TestReloadCertificate(t *testing.T) {
	t.Parallel()
	old, repl := newTLSPKI(t), newTLSPKI(t)
	certFile := filepath.Join(old.dir, "live.pem")
	copyFile := func(from string) {
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(certFile, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	copyFile(old.serverFile)
	p := harness.Start(t, rejectUnauth+"smtpd_tls_security_level = may\nsmtpd_tls_chain_files = "+certFile+"\n", "")
	// served is the certificate STARTTLS gets now (not verified).
	served := func() []byte {
		t.Helper()
		nc, err := net.DialTimeout("tcp", p.Addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		cl, err := smtp.NewClientStartTLS(nc, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		defer cl.Close()
		if err := cl.Noop(); err != nil { // the handshake is done by the first exchange
			t.Fatalf("NOOP over TLS: %v", err)
		}
		st, ok := cl.TLSConnectionState()
		if !ok || len(st.PeerCertificates) == 0 {
			t.Fatal("no TLS state after STARTTLS")
		}
		return st.PeerCertificates[0].Raw
	}
	if !bytes.Equal(served(), old.server.Certificate[0]) {
		t.Fatal("the first certificate is not served")
	}
	copyFile(repl.serverFile)
	if !bytes.Equal(served(), old.server.Certificate[0]) {
		t.Errorf("before the reload, the running certificate changed")
	}
	if out, err := exec.Command(harness.Binary(t), "reload", "-c", p.Dir).CombinedOutput(); err != nil {
		t.Fatalf("postgate reload: %v: %s", err, out)
	}
	p.Log("reload -- version ")
	if !bytes.Equal(served(), repl.server.Certificate[0]) {
		t.Errorf("after the reload, the new certificate is not served")
	}
}

// TestNewTLSSessionRateLimit: smtpd_client_new_tls_session_rate_limit
// counts new TLS sessions per client; past it the session ends with
// Postfix's 421 and warning.
func TestNewTLSSessionRateLimit(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, rejectUnauth+"smtpd_tls_security_level = may\nsmtpd_tls_chain_files = "+pki.serverFile+
		"\nsmtpd_client_new_tls_session_rate_limit = 1\n", "")
	if err := tlsDial(t, p.Addr, pki.clientConfig(nil)).Noop(); err != nil {
		t.Fatalf("first TLS session: %v", err)
	}
	err := tlsDial(t, p.Addr, pki.clientConfig(nil)).Noop()
	if got := replyOf(err); got != "421 4.7.0 mx.gateway.test Error: too many new TLS sessions from unknown[127.0.0.5]" {
		t.Errorf("second TLS session: %s", got)
	}
	p.Log("warning: New TLS session rate limit exceeded: 2 from unknown[127.0.0.5] for service")
}

// TestSASLSecurityOptions: smtpd_sasl_security_options = noplaintext hides
// PLAIN and LOGIN in clear text while smtpd_sasl_tls_security_options
// offers them inside TLS; broken_sasl_auth_clients adds the old "AUTH="
// line; a response longer than smtpd_sasl_response_limit gets Postfix's
// 500 5.5.6.
func TestSASLSecurityOptions(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	passwd := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(passwd, []byte("alice:"+string(h)+"\n"), 0o600)
	p := harness.Start(t, rejectUnauth+fmt.Sprintf(`smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = file
smtpd_sasl_path = %s
smtpd_sasl_security_options = noanonymous, noplaintext
smtpd_sasl_tls_security_options = noanonymous
broken_sasl_auth_clients = yes
smtpd_sasl_response_limit = 20
`, pki.serverFile, passwd), "")
	c := harness.Dial(t, p.Addr, outside)
	if text := c.Expect(250, "EHLO client.test"); strings.Contains(text, "AUTH") {
		t.Errorf("plaintext mechanisms offered in clear text under noplaintext:\n%s", text)
	}
	tc := tlsDial(t, p.Addr, pki.clientConfig(nil))
	if ok, mechs := tc.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH inside TLS: %v %q", ok, mechs)
	}

	// The AUTH= line, and the response limit, in clear text.
	q := harness.Start(t, rejectUnauth+fmt.Sprintf(`smtpd_sasl_auth_enable = yes
smtpd_sasl_type = file
smtpd_sasl_path = %s
broken_sasl_auth_clients = yes
smtpd_sasl_response_limit = 20
`, passwd), "")
	c = harness.Dial(t, q.Addr, outside)
	if text := c.Expect(250, "EHLO client.test"); !strings.Contains(text, "AUTH PLAIN LOGIN\nAUTH=PLAIN LOGIN") {
		t.Errorf("broken_sasl_auth_clients: EHLO lacks AUTH=:\n%s", text)
	}
	c.Expect(334, "AUTH LOGIN")
	if code, text := c.Cmd("%s", strings.Repeat("A", 24)); code != 500 || text != "5.5.6 SASL response limit exceeded" {
		t.Errorf("over smtpd_sasl_response_limit: %d %s", code, text)
	}
}
