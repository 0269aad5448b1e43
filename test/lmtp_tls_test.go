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

// waitMaildir waits for n messages in user's Maildir under a Dovecot dir.
func waitMaildir(dir, user string, n int) []string {
	for deadline := time.Now().Add(20 * time.Second); len(maildir(dir, user)) < n && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	return maildir(dir, user)
}

// startDovecotPair starts two Dovecot LMTP servers: one offering STARTTLS
// with the test PKI's server certificate (for 127.0.0.1, from its CA) for
// users, and one without TLS for known@plain.test.
func startDovecotPair(t *testing.T, users ...string) (pki *tlsPKI, tlsDir string, tlsPort, plainPort int) {
	t.Helper()
	pki = newTLSPKI(t)
	tlsDir, tlsPort = startDovecotLMTPWith(t, fmt.Sprintf("ssl = yes\nssl_cert = <%[1]s\nssl_key = <%[1]s", pki.serverFile), users...)
	_, plainPort = startDovecotLMTP(t, "known@plain.test")
	return pki, tlsDir, tlsPort, plainPort
}

// An lmtp transport reads the lmtp_ parameters, an smtp transport the
// smtp_ ones, as Postfix's lmtp and smtp do. With lmtp_tls_security_level
// = encrypt, delivery to a real Dovecot LMTP that offers STARTTLS goes over
// TLS (lmtp_tls_loglevel = 1 logs it as postgate/lmtp), and Dovecot's
// Received header names lmtp_lhlo_name; a Dovecot without TLS is deferred
// with Postfix's words; lmtp_tcp_port is the port of an inet: next hop that
// names none; and smtp mail from the same instance goes in clear text with
// smtp_helo_name. With lmtp_tls_security_level = verify and
// lmtp_tls_CAfile naming the CA of Dovecot's certificate (for 127.0.0.1,
// lmtp_tls_verify_cert_match = hostname), the session is Verified, and
// lmtp_tls_mandatory_protocols bounds it.
func TestLMTPStartTLSDovecot(t *testing.T) {
	t.Parallel()
	pki, tlsDir, tlsPort, plainPort := startDovecotPair(t, "known@lmtp.test", "port@lmtp.test", "verified@lmtp.test")
	sink := startTLSSink(t, pki.selfSigned, 0)

	p := harness.Start(t, fmt.Sprintf(`transport_maps = inline:{ lmtp.test=lmtp:inet:127.0.0.1:%[1]d, port.test=lmtp:inet:127.0.0.1, plain.test=lmtp:inet:127.0.0.1:%[2]d, smtp.test=smtp:[127.0.0.1]:%[3]d }
lmtp_tls_security_level = encrypt
lmtp_tls_loglevel = 1
lmtp_lhlo_name = lhlo.postgate.test
lmtp_tcp_port = %[1]d
smtp_helo_name = helo.postgate.test
smtp_tls_loglevel = 1
virtual_alias_maps = inline:{ port@port.test=port@lmtp.test }
`, tlsPort, plainPort, sink.Port), "")

	id := sendFromInside(t, p, "known@lmtp.test")
	log := p.Log(id + ": removed")
	got := waitMaildir(tlsDir, "known@lmtp.test", 1)
	if len(got) != 1 {
		t.Fatalf("Dovecot stored %d messages over TLS; log:\n%s", len(got), log)
	}
	if !strings.Contains(got[0], "Received: from lhlo.postgate.test ([127.0.0.1])\n\t(using TLSv1.3 with cipher ") {
		t.Errorf("Dovecot's Received header does not name lmtp_lhlo_name and TLS:\n%s", got[0])
	}
	for _, want := range []string{
		fmt.Sprintf("postgate/lmtp[%d]: Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:%d: TLSv1.3 with cipher TLS_", p.Pid(), tlsPort),
		fmt.Sprintf("%s: to=<known@lmtp.test>, relay=127.0.0.1[127.0.0.1]:%d,", id, tlsPort),
		"status=sent (250 2.0.0 <known@lmtp.test> ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// No port in the next hop: lmtp_tcp_port's.
	id = sendFromInside(t, p, "port@port.test")
	log = p.Log(id + ": removed")
	if got := waitMaildir(tlsDir, "port@lmtp.test", 1); len(got) != 1 {
		t.Errorf("lmtp_tcp_port: Dovecot stored %d messages; log:\n%s", len(got), log)
	}

	// A Dovecot without STARTTLS: deferred, as Postfix's lmtp says it.
	id = sendFromInside(t, p, "known@plain.test")
	log = p.Log(id + ": to=<known@plain.test>")
	if want := fmt.Sprintf("%s: to=<known@plain.test>, relay=127.0.0.1[127.0.0.1]:%d, delay=", id, plainPort); !strings.Contains(log, want) ||
		!strings.Contains(logLine(log, want), "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])") {
		t.Errorf("want %q ... dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]):\n%s", want, log)
	}

	// smtp is not lmtp: smtp_tls_security_level is empty, so no TLS, and
	// the server is greeted with smtp_helo_name.
	id = sendFromInside(t, p, "u@smtp.test")
	if got := waitSink(sink, 1); len(got) != 1 || !strings.HasSuffix(got[0], "tls=false") {
		t.Errorf("smtp sink got %q, want one message in clear text", got)
	}
	sink.mu.Lock()
	greets := sink.greets
	sink.mu.Unlock()
	if len(greets) == 0 || greets[0] != "helo.postgate.test" {
		t.Errorf("smtp greeted with %q, want smtp_helo_name", greets)
	}
	if log = p.Log(id + ": removed"); strings.Contains(logLine(log, fmt.Sprintf("TLS connection established to 127.0.0.1[127.0.0.1]:%d", sink.Port)), "postgate/") {
		t.Errorf("smtp delivery used TLS:\n%s", log)
	}

	v := harness.Start(t, fmt.Sprintf(`transport_maps = inline:{ lmtp.test=lmtp:inet:127.0.0.1:%d }
lmtp_tls_security_level = verify
lmtp_tls_CAfile = %s
lmtp_tls_loglevel = 1
lmtp_tls_mandatory_protocols = <=TLSv1.2
`, tlsPort, pki.caFile), "")
	id = sendFromInside(t, v, "verified@lmtp.test")
	log = v.Log(id + ": removed")
	if got := waitMaildir(tlsDir, "verified@lmtp.test", 1); len(got) != 1 {
		t.Errorf("verify: Dovecot stored %d messages; log:\n%s", len(got), log)
	}
	if want := fmt.Sprintf("postgate/lmtp[%d]: Verified TLS connection established to 127.0.0.1[127.0.0.1]:%d: TLSv1.2 with cipher ", v.Pid(), tlsPort); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

// More lmtp_ TLS twins, each in an instance of its own: lmtp_enforce_tls
// and lmtp_use_tls (read when lmtp_tls_security_level is empty, as
// Postfix's legacy parameters), and secure with lmtp_tls_CApath, whose
// match list is lmtp_tls_secure_cert_match's: the next hop (127.0.0.1,
// which the certificate names) by default, and a name the certificate
// does not have when set so.
func TestLMTPTLSTwins(t *testing.T) {
	t.Parallel()
	pki, tlsDir, tlsPort, plainPort := startDovecotPair(t, "may@lmtp.test", "secure@lmtp.test", "nomatch@lmtp.test")
	caDir := t.TempDir()
	if err := os.Link(pki.caFile, filepath.Join(caDir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	route := fmt.Sprintf("transport_maps = inline:{ lmtp.test=lmtp:inet:127.0.0.1:%d, plain.test=lmtp:inet:127.0.0.1:%d }\nlmtp_tls_loglevel = 1\n", tlsPort, plainPort)

	enforce := harness.Start(t, route+"lmtp_enforce_tls = yes\n", "")
	id := sendFromInside(t, enforce, "known@plain.test")
	if line := logLine(enforce.Log(id+": to=<known@plain.test>"), id+": to=<known@plain.test>"); !strings.Contains(line, "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])") {
		t.Errorf("lmtp_enforce_tls: %q", line)
	}

	for _, tc := range []struct {
		name, main, rcpt, want string
	}{
		{"lmtp_use_tls", "lmtp_use_tls = yes\n", "may@lmtp.test", "Untrusted TLS connection established"},
		{"secure", fmt.Sprintf("lmtp_tls_security_level = secure\nlmtp_tls_CApath = %s\n", caDir), "secure@lmtp.test", "Verified TLS connection established"},
		{"secure, no match", fmt.Sprintf("lmtp_tls_security_level = secure\nlmtp_tls_CApath = %s\nlmtp_tls_secure_cert_match = other.test\n", caDir), "nomatch@lmtp.test", "status=deferred (Server certificate not verified)"},
	} {
		p := harness.Start(t, route+tc.main, "")
		id := sendFromInside(t, p, tc.rcpt)
		log := p.Log(id + ": to=<" + tc.rcpt + ">")
		if !strings.Contains(log, tc.want) {
			t.Errorf("%s: log lacks %q:\n%s", tc.name, tc.want, log)
		}
		// A deferral is logged when the session is over: nothing
		// can arrive after it.
		deferred := strings.Contains(tc.want, "deferred")
		got := maildir(tlsDir, tc.rcpt)
		if !deferred {
			got = waitMaildir(tlsDir, tc.rcpt, 1)
		}
		if delivered := len(got) == 1; delivered == deferred {
			t.Errorf("%s: delivered %v", tc.name, delivered)
		}
	}
}
