// End-to-end tests of TLS through the built binary: STARTTLS with swaks and
// go-smtp's client, client certificates in the relay decision, and the TLS
// facts in the mail log and the Received: header. The certificates are
// made by the test (tlsPKI) in a temporary directory.
package test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/test/harness"
)

// tlsPKI is a test CA, a server certificate it signed, and two client
// certificates: one the CA signed (trusted) and one self-signed.
type tlsPKI struct {
	dir        string
	ca         *x509.CertPool
	caFile     string          // the CA certificate (smtpd_tls_CAfile)
	serverFile string          // key and chain in one file (smtpd_tls_chain_files)
	server     tls.Certificate // the same, for servers the test runs
	clientFile string          // the trusted client certificate and key, for swaks
	trusted    tls.Certificate
	selfSigned tls.Certificate
}

// fingerprint is Postfix's sha256 fingerprint of a certificate.
func fingerprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return colonHex(sum[:])
}

// colonHex is a digest as Postfix writes fingerprints.
func colonHex(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func newTLSPKI(t *testing.T) *tlsPKI {
	t.Helper()
	// Postfix's smtpd reads the files as user postfix (TestTLSLogLikePostfix):
	// a searchable directory outside t.TempDir's private parent, readable
	// files (test-only keys).
	dir, err := os.MkdirTemp("", "postgate-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &tlsPKI{dir: dir, ca: x509.NewCertPool()}
	serial := int64(1)
	issue := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			DNSNames: []string{cn}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		if ca {
			tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
			tmpl.ExtKeyUsage, tmpl.DNSNames = nil, nil
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, der
	}
	pemOf := func(key *ecdsa.PrivateKey, ders ...[]byte) []byte {
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
		for _, d := range ders {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
		}
		return out
	}
	caCert, caKey, caDER := issue("Test CA", nil, nil, true, 0)
	p.ca.AddCert(caCert)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	_, srvKey, srvDER := issue("mx.gateway.test", caCert, caKey, false, x509.ExtKeyUsageServerAuth)
	p.serverFile = filepath.Join(p.dir, "server.pem")
	write(p.serverFile, pemOf(srvKey, srvDER, caDER))
	p.server = tls.Certificate{Certificate: [][]byte{srvDER, caDER}, PrivateKey: srvKey}
	_, cliKey, cliDER := issue("trusted.client.test", caCert, caKey, false, x509.ExtKeyUsageClientAuth)
	p.trusted = tls.Certificate{Certificate: [][]byte{cliDER, caDER}, PrivateKey: cliKey}
	p.clientFile = filepath.Join(p.dir, "client.pem")
	write(p.clientFile, pemOf(cliKey, cliDER, caDER))
	_, selfKey, selfDER := issue("self.client.test", nil, nil, false, x509.ExtKeyUsageClientAuth)
	p.selfSigned = tls.Certificate{Certificate: [][]byte{selfDER}, PrivateKey: selfKey}
	return p
}

// clientConfig trusts the test CA for mx.gateway.test and presents cert,
// if any.
func (p *tlsPKI) clientConfig(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: p.ca, ServerName: "mx.gateway.test"}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// tlsDial connects from outside, says EHLO and starts TLS with go-smtp's
// client.
func tlsDial(t *testing.T, addr string, cfg *tls.Config) *smtp.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(outside)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClientStartTLS(nc, cfg)
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// replyOf is the reply of a go-smtp client error as the server sent it.
func replyOf(err error) string {
	if e, ok := err.(*smtp.SMTPError); ok {
		return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
	}
	return fmt.Sprint(err)
}

// smtpCode is the reply code of a go-smtp client error, 0 for none.
func smtpCode(err error) int {
	if e, ok := err.(*smtp.SMTPError); ok {
		return e.Code
	}
	return 0
}

func TestSTARTTLSSwaks(t *testing.T) {
	t.Parallel()
	swaks := harness.Need(t, "swaks", "swaks")
	pki := newTLSPKI(t)
	p := harness.Start(t, rejectUnauth+fmt.Sprintf(`smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
`, pki.serverFile), "")
	out, err := exec.Command(swaks, "--server", p.Addr, "--local-interface", outside, "--tls",
		"--from", "a@src.test", "--to", "u@relay.test", "--helo", "swaks.src.test").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks --tls: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<-  220 2.0.0 Ready to start TLS") || !strings.Contains(string(out), "=== TLS started with cipher") {
		t.Fatalf("swaks did not start TLS:\n%s", out)
	}
	m := queuedRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("swaks got no queue ID:\n%s", out)
	}
	stored := string(showRaw(t, p, m[1]))
	received := stored[:strings.Index(stored, "\r\n\r\n")]
	for _, want := range []string{
		"\r\n\t(using TLSv1.3 with cipher TLS_AES_",
		"\r\n\t key-exchange X25519",
		" server-signature ECDSA (prime256v1) server-digest SHA256)\r\n\t(No client certificate requested)\r\n\tby mx.gateway.test (postgate) with ESMTPS id " + m[1],
	} {
		if !strings.Contains(received, want) {
			t.Errorf("Received: header lacks %q:\n%s", want, received)
		}
	}
	log := p.Log("TLS connection established")
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "TLS connection established") {
			t.Log(l)
		}
	}
	if !strings.Contains(log, "postgate/smtpd[") || !strings.Contains(log, ": Anonymous TLS connection established from unknown[127.0.0.5]: TLSv1.3 with cipher TLS_AES_") {
		t.Errorf("no Anonymous TLS line in the log:\n%s", log)
	}
}

// Under encrypt, go-smtp's client is refused MAIL before STARTTLS and
// delivers after it; STARTTLS is no longer offered inside TLS, and a second
// one is an error.
func TestSTARTTLSGoClientEncrypt(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, rejectUnauth+fmt.Sprintf(`smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = %s
smtpd_tls_key_file = %s
`, pki.serverFile, pki.serverFile), "")

	plain := harness.Dial(t, p.Addr, outside)
	plain.Expect(250, "EHLO client.src.test")
	if code, text := plain.Cmd("MAIL FROM:<a@src.test>"); code != 530 || text != "5.7.0 Must issue a STARTTLS command first" {
		t.Errorf("MAIL in clear text: %d %q", code, text)
	}

	c := tlsDial(t, p.Addr, pki.clientConfig(nil)) // verifies the served chain against the CA
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered inside TLS")
	}
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("u@relay.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, "Subject: tls\r\n\r\nover TLS\r\n")
	resp, err := w.CloseWithResponse()
	if err != nil || queuedRe.FindStringSubmatch(resp.StatusText) == nil {
		t.Fatalf("DATA over TLS: %v %v", resp, err)
	}
	stored := string(showRaw(t, p, queuedRe.FindStringSubmatch(resp.StatusText)[1]))
	if !strings.Contains(stored, " with ESMTPS id ") || strings.Contains(stored, "(using ") {
		t.Errorf("Received: should say ESMTPS without the TLS comment (smtpd_tls_received_header = no):\n%s", stored[:strings.Index(stored, "\r\n\r\n")])
	}
	// A second STARTTLS, inside TLS, from a client of our own.
	raw := harness.Dial(t, p.Addr, outside)
	raw.Expect(250, "EHLO client.src.test")
	raw.Expect(220, "STARTTLS")
	tc := tls.Client(raw.Conn, pki.clientConfig(nil))
	r := bufio.NewReader(tc)
	fmt.Fprint(tc, "STARTTLS\r\n")
	if line, err := r.ReadString('\n'); line != "554 5.5.1 Error: TLS already active\r\n" {
		t.Errorf("second STARTTLS: %q %v", line, err)
	}
}

// A client certificate whose fingerprint is in relay_clientcerts relays
// to a foreign domain (the CA need not vouch for it); without it the
// client gets 554 Relay access denied.
func TestClientCertRelay(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	certs := filepath.Join(pki.dir, "relay_clientcerts")
	if err := os.WriteFile(certs, []byte(fingerprint(pki.selfSigned)+" self.client.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, fmt.Sprintf(`smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_tls_ask_ccert = yes
smtpd_tls_CAfile = %s
smtpd_tls_loglevel = 1
relay_clientcerts = texthash:%s
smtpd_relay_restrictions = permit_mynetworks, permit_tls_clientcerts, reject_unauth_destination
`, pki.serverFile, pki.caFile, certs), "")

	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		code int
	}{
		{"listed self-signed certificate", &pki.selfSigned, 250},
		{"trusted certificate not listed", &pki.trusted, 554},
		{"no certificate", nil, 554},
	} {
		c := tlsDial(t, p.Addr, pki.clientConfig(tc.cert))
		if err := c.Mail("a@src.test", nil); err != nil {
			t.Fatal(err)
		}
		err := c.Rcpt("u@foreign.test", nil)
		if got := smtpCode(err); tc.code == 250 && err != nil || tc.code != 250 && got != tc.code {
			t.Errorf("%s: RCPT to a foreign domain: %v, want %d", tc.name, err, tc.code)
		}
		if tc.code == 554 && !strings.Contains(err.Error(), "<u@foreign.test>: Relay access denied") {
			t.Errorf("%s: %v, want Relay access denied", tc.name, err)
		}
	}
	log := p.Log("Trusted TLS connection")
	for _, want := range []string{
		"Untrusted TLS connection established from unknown[127.0.0.5]: TLSv1.3 with cipher",
		"Trusted TLS connection established from unknown[127.0.0.5]: TLSv1.3 with cipher",
		" client-signature ECDSA (prime256v1) client-digest SHA256",
		"Anonymous TLS connection established from unknown[127.0.0.5]",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// permit_tls_all_clientcerts relays for any certificate the CA vouches
// for; check_ccert_access acts on a fingerprint's entry and names the
// certificate's CommonName in its reply.
func TestClientCertAccess(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	access := filepath.Join(pki.dir, "ccert_access")
	md5sum := md5.Sum(pki.selfSigned.Certificate[0])
	if err := os.WriteFile(access, []byte(colonHex(md5sum[:])+" REJECT not this one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The CA in a directory (smtpd_tls_CApath), fingerprints in md5.
	caDir := filepath.Join(pki.dir, "cas")
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pki.caFile, filepath.Join(caDir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, fmt.Sprintf(`smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_tls_ask_ccert = yes
smtpd_tls_CApath = %s
smtpd_tls_fingerprint_digest = md5
smtpd_client_restrictions = check_ccert_access texthash:%s
smtpd_relay_restrictions = permit_mynetworks, permit_tls_all_clientcerts, reject_unauth_destination
`, pki.serverFile, caDir, access), "")

	c := tlsDial(t, p.Addr, pki.clientConfig(&pki.trusted))
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("u@foreign.test", nil); err != nil {
		t.Errorf("trusted certificate, foreign recipient: %v", err)
	}

	c = tlsDial(t, p.Addr, pki.clientConfig(&pki.selfSigned))
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Fatal(err)
	}
	if got := replyOf(c.Rcpt("u@relay.test", nil)); got != "554 5.7.1 <self.client.test>: Client certificate rejected: not this one" {
		t.Errorf("listed certificate: RCPT answered %q", got)
	}
}

// smtpd_tls_req_ccert with encrypt: a client without a trusted
// certificate is told so at its next command and disconnected.
func TestClientCertRequired(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, fmt.Sprintf(`smtpd_tls_security_level = encrypt
smtpd_tls_chain_files = %s
smtpd_tls_req_ccert = yes
smtpd_tls_CAfile = %s
`, pki.serverFile, pki.caFile), "")

	c := tlsDial(t, p.Addr, pki.clientConfig(&pki.selfSigned))
	if got := replyOf(c.Hello("again.src.test")); got != "421 4.7.1 mx.gateway.test Error: Client certificate not trusted" {
		t.Errorf("EHLO after STARTTLS with an untrusted certificate: %q", got)
	}
	if log := p.Log("NOQUEUE: abort: TLS from"); !strings.Contains(log, "NOQUEUE: abort: TLS from unknown[127.0.0.5]: Client certificate not trusted") {
		t.Errorf("no abort line in the log:\n%s", log)
	}

	c = tlsDial(t, p.Addr, pki.clientConfig(&pki.trusted))
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Errorf("trusted certificate: MAIL: %v", err)
	}
}

// smtpd_tls_protocols (may) and smtpd_tls_mandatory_protocols (encrypt)
// bound the protocol versions; a TLS 1.2 session is logged with OpenSSL's
// cipher name, as Postfix logs it.
func TestSTARTTLSProtocols(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	may := harness.Start(t, fmt.Sprintf("smtpd_tls_security_level = may\nsmtpd_tls_chain_files = %s\nsmtpd_tls_loglevel = 1\nsmtpd_tls_protocols = <=TLSv1.2\n", pki.serverFile), "")
	c := tlsDial(t, may.Addr, pki.clientConfig(nil))
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.TLSConnectionState(); st.Version != tls.VersionTLS12 {
		t.Errorf("smtpd_tls_protocols = <=TLSv1.2: negotiated %x", st.Version)
	}
	if log := may.Log("TLS connection established"); !strings.Contains(log, "Anonymous TLS connection established from unknown[127.0.0.5]: TLSv1.2 with cipher ECDHE-ECDSA-AES128-GCM-SHA256 (128/128 bits)") {
		t.Errorf("no TLSv1.2 line with OpenSSL's cipher name:\n%s", log)
	}

	enc := harness.Start(t, fmt.Sprintf("smtpd_tls_security_level = encrypt\nsmtpd_tls_chain_files = %s\nsmtpd_tls_mandatory_protocols = >=TLSv1.3\n", pki.serverFile), "")
	old := pki.clientConfig(nil)
	old.MaxVersion = tls.VersionTLS12
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(outside)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", enc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	// go-smtp's client shakes hands at its first command after STARTTLS.
	oc, err := smtp.NewClientStartTLS(nc, old)
	if err == nil {
		err = oc.Mail("a@src.test", nil)
	}
	if err == nil {
		t.Error("a TLS 1.2 client got through smtpd_tls_mandatory_protocols = >=TLSv1.3")
	}
	if log := enc.Log("lost connection after STARTTLS"); !strings.Contains(log, "SSL_accept error from unknown[127.0.0.5]: ") || !strings.Contains(log, "lost connection after STARTTLS from unknown[127.0.0.5]") {
		t.Errorf("no handshake failure in the log:\n%s", log)
	}
}

// A client that says STARTTLS and then nothing is dropped after
// smtpd_starttls_timeout.
func TestSTARTTLSTimeout(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, fmt.Sprintf("smtpd_tls_security_level = may\nsmtpd_tls_chain_files = %s\nsmtpd_starttls_timeout = 1s\n", pki.serverFile), "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(220, "STARTTLS")
	start := time.Now()
	c.Conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Conn.Read(make([]byte, 10)); err == nil {
		t.Error("the server sent something instead of waiting for the handshake")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("closed after %v, want about smtpd_starttls_timeout (1s)", d)
	}
	if log := p.Log("SSL_accept error"); !strings.Contains(log, "SSL_accept error from unknown[127.0.0.5]: timeout") {
		t.Errorf("no timeout in the log:\n%s", log)
	}
}

// Session tickets: a client that kept the ticket of its first session
// resumes it in the second, and Postfix's loglevel 2 line says so.
func TestSTARTTLSSessionTickets(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, fmt.Sprintf("smtpd_tls_security_level = may\nsmtpd_tls_chain_files = %s\nsmtpd_tls_loglevel = 2\n", pki.serverFile), "")
	cfg := pki.clientConfig(nil)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i, wantResumed := range []bool{false, true} {
		c := tlsDial(t, p.Addr, cfg)
		if err := c.Noop(); err != nil { // reads a reply: the ticket arrives with it
			t.Fatal(err)
		}
		if st, _ := c.TLSConnectionState(); st.DidResume != wantResumed {
			t.Errorf("session %d: resumed=%v, want %v", i+1, st.DidResume, wantResumed)
		}
		c.Quit()
	}
	if log := p.Log("Reusing old session"); !strings.Contains(log, "unknown[127.0.0.5]: Reusing old session (RFC 5077 session ticket)") {
		t.Errorf("no resumption in the log:\n%s", log)
	}
}

// reject_plaintext_session: a client in clear text gets
// plaintext_reject_code (450), one inside TLS passes.
func TestRejectPlaintextSession(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, fmt.Sprintf("smtpd_tls_security_level = may\nsmtpd_tls_chain_files = %s\nsmtpd_recipient_restrictions = reject_plaintext_session, permit_auth_destination, reject\n", pki.serverFile), "")
	plain := harness.Dial(t, p.Addr, outside)
	plain.Expect(250, "EHLO client.src.test")
	plain.Expect(250, "MAIL FROM:<a@src.test>")
	if code, text := plain.Cmd("RCPT TO:<u@relay.test>"); code != 450 || text != "4.7.1 Session encryption is required" {
		t.Errorf("clear text: %d %q", code, text)
	}
	c := tlsDial(t, p.Addr, pki.clientConfig(nil))
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("u@relay.test", nil); err != nil {
		t.Errorf("inside TLS: %v", err)
	}
}

// smtpd_tls_wrappermode (a master.cf service on port 465's model): TLS
// from the first byte, then SMTP inside it; a clear-text client is
// dropped.
func TestTLSWrapperMode(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	p := harness.Start(t, "smtpd_tls_loglevel = 1\n", fmt.Sprintf("127.0.0.1:PORT inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n  -o smtpd_tls_chain_files=%s\n", pki.serverFile))
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(outside)}, Timeout: 10 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", p.Addr, pki.clientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(tc)
	defer c.Close()
	if err := c.Hello("client.src.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered in wrapper mode")
	}
	if err := c.Mail("a@src.test", nil); err != nil {
		t.Errorf("MAIL in wrapper mode: %v", err)
	}
	if log := p.Log("TLS connection established"); !strings.Contains(log, "Anonymous TLS connection established from unknown[127.0.0.5]: TLSv1.3") {
		t.Errorf("no TLS line in the log:\n%s", log)
	}

	plain := harness.DialRaw(t, p.Addr, outside)
	plain.Send("EHLO client.src.test\r\n")
	if code, text := plain.Reply(); code != 0 {
		t.Errorf("a clear-text client got %d %s", code, text)
	}
	if log := p.Log("lost connection after CONNECT"); !strings.Contains(log, "SSL_accept error from unknown[127.0.0.5]: ") {
		t.Errorf("no handshake failure in the log:\n%s", log)
	}
}

// The TLS summary lines and the Received: header's TLS comments side by
// side with the real Postfix, for the same certificates and client (swaks,
// OpenSSL): the same words, the same key exchange and signature details,
// the same client certificate comments. Only the suite may differ (Go's
// server prefers AES-128, OpenSSL's AES-256), so it is masked.
func TestTLSLogLikePostfix(t *testing.T) {
	t.Parallel()
	swaks := harness.Need(t, "swaks", "swaks")
	pki := newTLSPKI(t)
	pfSink, pgSink := harness.StartSink(t), harness.StartSink(t)
	main := fmt.Sprintf(`smtpd_tls_security_level = may
smtpd_tls_chain_files = %s
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_ask_ccert = yes
smtpd_tls_CAfile = %s
relay_domains = relay.test
smtpd_relay_restrictions = reject_unauth_destination
`, pki.serverFile, pki.caFile)
	route := "transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\n"
	// Postfix's smtpd needs tlsmgr (TLS randomness and session keys).
	pf := harness.StartPostfixWith(t, main+fmt.Sprintf(route, pfSink.Port), "PORT inet n - n - - smtpd\ntlsmgr unix - - n 1000? 1 tlsmgr\n")
	pg := harness.Start(t, main+fmt.Sprintf(route, pgSink.Port), "")
	suite := regexp.MustCompile(`with cipher \S+ \(\d+/\d+ bits\)`)
	mask := func(s string) string { return suite.ReplaceAllString(s, "with cipher SUITE (N/N bits)") }
	lines := func(log string) string {
		var out []string
		for _, l := range strings.Split(log, "\n") {
			if i := strings.Index(l, " TLS connection established"); i >= 0 {
				out = append(out, mask(l[strings.LastIndex(l[:i], " ")+1:]))
			}
		}
		return strings.Join(out, "\n")
	}
	// The Received: header's comment lines, those a TLS session adds.
	comments := func(sink *harness.Sink) string {
		var out []string
		for _, m := range sink.WaitMessages(2, 20*time.Second) {
			_, msg := harness.SinkBody(m)
			for _, l := range strings.Split(msg, "\n") {
				if strings.HasPrefix(l, "\t(") || strings.HasPrefix(l, "\t ") {
					out = append(out, mask(strings.TrimRight(l, "\r")))
				}
			}
		}
		return strings.Join(out, "\n")
	}
	// Without a client certificate, then with one the CA signed.
	for i, addr := range []string{pf.Addr, pg.Addr, pf.Addr, pg.Addr} {
		args := []string{"--server", addr, "--local-interface", outside, "--tls", "--helo", "swaks.src.test",
			"--from", "a@src.test", "--to", "u@relay.test"}
		if i >= 2 {
			args = append(args, "--tls-cert", pki.clientFile, "--tls-key", pki.clientFile)
		}
		out, err := exec.Command(swaks, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks --tls to %s: %v\n%s\nPostfix log:\n%s", addr, err, out, pf.Log())
		}
	}
	pfLines := ""
	for deadline := time.Now().Add(20 * time.Second); strings.Count(pfLines, "\n") < 1 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pfLines = lines(pf.Log())
	}
	pgLines := lines(pg.Log("Trusted TLS connection established"))
	if strings.Count(pfLines, "\n") != 1 || pfLines != pgLines {
		t.Errorf("TLS summary lines differ:\nPostfix:\n%s\npostgate:\n%s", pfLines, pgLines)
	}
	t.Logf("Postfix:\n%s", pfLines)
	pfReceived, pgReceived := comments(pfSink), comments(pgSink)
	if pfReceived == "" || pfReceived != pgReceived {
		t.Errorf("Received: TLS comments differ:\nPostfix:\n%s\npostgate:\n%s", pfReceived, pgReceived)
	}
	t.Logf("Postfix:\n%s", pfReceived)
}
