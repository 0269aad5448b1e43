package test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/test/harness"
)

// tlsSink is a receiving SMTP server that offers STARTTLS with a given
// certificate: smtp-sink has no TLS, so this small go-smtp server stands
// in for a TLS-capable next hop. It records each message's recipients and
// whether it came over TLS.
type tlsSink struct {
	Port   int
	mu     sync.Mutex
	got    []string // "rcpt tls=true|false[ cert=CN]"
	greets []string // the names clients greeted with (EHLO, HELO)
}

// startTLSSink starts a sink serving cert, up to TLS version maxVersion
// (0: Go's highest).
func startTLSSink(t *testing.T, cert tls.Certificate, maxVersion uint16) *tlsSink {
	t.Helper()
	k := &tlsSink{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.Port = l.Addr().(*net.TCPAddr).Port
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		k.mu.Lock()
		k.greets = append(k.greets, c.Hostname())
		k.mu.Unlock()
		st, isTLS := c.TLSConnectionState()
		ss := &tlsSinkSession{k: k, tls: isTLS}
		if len(st.PeerCertificates) > 0 {
			ss.clientCN = st.PeerCertificates[0].Subject.CommonName
		}
		return ss, nil
	}))
	srv.Domain = "sink.test"
	// It asks for a client certificate, without requiring one.
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion, ClientAuth: tls.RequestClientCert}
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return k
}

func (k *tlsSink) messages() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.got...)
}

type tlsSinkSession struct {
	k        *tlsSink
	tls      bool
	clientCN string // the CommonName of the client's certificate, if any
	rcpts    []string
}

func (s *tlsSinkSession) Reset()        { s.rcpts = nil }
func (s *tlsSinkSession) Logout() error { return nil }
func (s *tlsSinkSession) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (s *tlsSinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *tlsSinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.k.mu.Lock()
	for _, rc := range s.rcpts {
		got := fmt.Sprintf("%s tls=%v", rc, s.tls)
		if s.clientCN != "" {
			got += " cert=" + s.clientCN
		}
		s.k.got = append(s.k.got, got)
	}
	s.k.mu.Unlock()
	return nil
}

// sendFromInside sends one message from mynetworks (127.0.0.1), which may
// relay anywhere.
func sendFromInside(t *testing.T, p *harness.Postgate, to string) string {
	t.Helper()
	id, err := trySendFrom("127.0.0.1", p.Addr, "a@src.test", to, []byte("Subject: tls out\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// logLine is the first log line containing want, "" if none.
func logLine(log, want string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, want) {
			return l
		}
	}
	return ""
}

// waitSink waits for n messages at a TLS sink.
func waitSink(k *tlsSink, n int) []string {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got := k.messages(); len(got) >= n {
			return got
		}
	}
	return k.messages()
}

// smtp_tls_security_level = may delivers to a server whose certificate
// nobody vouches for, over TLS; verify defers it with Postfix's reason.
func TestOutboundTLSMayAndVerify(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	sink := startTLSSink(t, pki.selfSigned, 0) // self-signed: no CA vouches for it
	route := fmt.Sprintf("transport_maps = inline:{ may.test=smtp:[127.0.0.1]:%d, verify.test=smtp:[127.0.0.1]:%d }\n", sink.Port, sink.Port)
	p := harness.Start(t, route+fmt.Sprintf("smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\nsmtp_tls_CAfile = %s\n", pki.caFile), "")
	id := sendFromInside(t, p, "u@may.test")
	if got := waitSink(sink, 1); len(got) != 1 || got[0] != "<u@may.test> tls=true" && got[0] != "u@may.test tls=true" {
		t.Fatalf("sink got %q, want the message over TLS", got)
	}
	log := p.Log(id + ": removed")
	if want := fmt.Sprintf("postgate/smtp[%d]: Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:%d: TLSv1.3 with cipher TLS_", p.Pid(), sink.Port); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if !strings.Contains(log, "status=sent (250 2.0.0 OK: queued)") {
		t.Errorf("no delivery under may:\n%s", log)
	}

	v := harness.Start(t, route+fmt.Sprintf("smtp_tls_security_level = verify\nsmtp_tls_loglevel = 1\nsmtp_tls_CAfile = %s\n", pki.caFile), "")
	id = sendFromInside(t, v, "u@verify.test")
	log = v.Log("status=deferred")
	if want := id + ": to=<u@verify.test>, relay=127.0.0.1[127.0.0.1]:" + fmt.Sprint(sink.Port) + ", delay="; !strings.Contains(log, want) ||
		!strings.Contains(log, "dsn=4.7.5, status=deferred (Server certificate not verified)") {
		t.Errorf("verify against a self-signed certificate: want %q ... dsn=4.7.5, status=deferred (Server certificate not verified):\n%s", want, log)
	}
	if !strings.Contains(log, fmt.Sprintf("server certificate verification failed for 127.0.0.1[127.0.0.1]:%d: ", sink.Port)) {
		t.Errorf("no verification failure detail in the log:\n%s", log)
	}
	if got := sink.messages(); len(got) != 1 {
		t.Errorf("sink got %q after verify, want only the may message", got)
	}
}

// verify (smtp_tls_verify_cert_match = hostname) and secure
// (smtp_tls_secure_cert_match = nexthop, dot-nexthop) deliver when the next
// hop's certificate chains to a CA of smtp_tls_CApath and names the host,
// here its address, which is also the next hop.
func TestOutboundTLSVerified(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	sink := startTLSSink(t, pki.server, 0)
	caDir := filepath.Join(pki.dir, "cas")
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pki.caFile, filepath.Join(caDir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	for i, level := range []string{"verify", "secure"} {
		p := harness.Start(t, fmt.Sprintf("transport_maps = inline:{ verify.test=smtp:[127.0.0.1]:%d }\nsmtp_tls_security_level = %s\nsmtp_tls_loglevel = 1\nsmtp_tls_CApath = %s\n", sink.Port, level, caDir), "")
		id := sendFromInside(t, p, "u@verify.test")
		if got := waitSink(sink, i+1); len(got) != i+1 || !strings.HasSuffix(got[i], "tls=true") {
			t.Fatalf("%s: sink got %q, want the message over TLS", level, got)
		}
		log := p.Log(id + ": removed")
		if want := fmt.Sprintf("Verified TLS connection established to 127.0.0.1[127.0.0.1]:%d: TLSv1.3", sink.Port); !strings.Contains(log, want) {
			t.Errorf("%s: log lacks %q:\n%s", level, want, log)
		}
	}
}

// smtp_tls_mandatory_protocols bounds encrypt: a next hop that speaks only
// TLS 1.2 cannot be reached with >=TLSv1.3 (Postfix's handshake failure);
// smtp_tls_protocols bounds may, which then falls back to clear text.
func TestOutboundTLSProtocols(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	old := startTLSSink(t, pki.selfSigned, tls.VersionTLS12)
	route := fmt.Sprintf("transport_maps = inline:{ old.test=smtp:[127.0.0.1]:%d }\nsmtp_tls_loglevel = 1\n", old.Port)
	enc := harness.Start(t, route+"smtp_tls_security_level = encrypt\nsmtp_tls_mandatory_protocols = >=TLSv1.3\n", "")
	id := sendFromInside(t, enc, "u@old.test")
	if log := enc.Log("status=deferred"); !strings.Contains(logLine(log, id+": to=<u@old.test>"), "dsn=4.7.5, status=deferred (Cannot start TLS: handshake failure)") {
		t.Errorf("encrypt with >=TLSv1.3 to a TLS 1.2 server: no handshake failure:\n%s", log)
	}
	// may whose handshake fails goes on in clear text, as Postfix.
	fallback := harness.Start(t, route+"smtp_tls_security_level = may\nsmtp_tls_protocols = >=TLSv1.3\n", "")
	id = sendFromInside(t, fallback, "u@old.test")
	if got := waitSink(old, 1); len(got) != 1 || !strings.HasSuffix(got[0], "tls=false") {
		t.Errorf("may with >=TLSv1.3 to a TLS 1.2 server: sink got %q, want one message in clear text", got)
	}
	if log := fallback.Log(id + ": removed"); !strings.Contains(logLine(log, id+": to=<u@old.test>"), "status=sent") {
		t.Errorf("may fallback not delivered:\n%s", log)
	}
	may := harness.Start(t, route+"smtp_tls_security_level = may\nsmtp_tls_protocols = <=TLSv1.2\n", "")
	id = sendFromInside(t, may, "u@old.test")
	log := may.Log(id + ": removed")
	if !strings.Contains(log, fmt.Sprintf("Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:%d: TLSv1.2 with cipher ECDHE-ECDSA-AES128-GCM-SHA256 (128/128 bits)", old.Port)) {
		t.Errorf("may with <=TLSv1.2: no TLSv1.2 session in the log:\n%s", log)
	}
}

// The legacy parameters: smtp_enforce_tls = yes requires TLS (encrypt),
// smtp_use_tls = yes uses it when offered (may).
func TestOutboundTLSLegacy(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	tlsNext := startTLSSink(t, pki.selfSigned, 0)
	plain := harness.StartSink(t)
	route := fmt.Sprintf("transport_maps = inline:{ tls.test=smtp:[127.0.0.1]:%d, plain.test=smtp:[127.0.0.1]:%d }\n", tlsNext.Port, plain.Port)
	enforce := harness.Start(t, route+"smtp_enforce_tls = yes\n", "")
	id := sendFromInside(t, enforce, "u@plain.test")
	if log := enforce.Log("status=deferred"); !strings.Contains(logLine(log, id+": to=<u@plain.test>"), "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])") {
		t.Errorf("smtp_enforce_tls to a server without STARTTLS:\n%s", log)
	}
	use := harness.Start(t, route+"smtp_use_tls = yes\n", "")
	sendFromInside(t, use, "u@tls.test")
	sendFromInside(t, use, "u@plain.test")
	if got := waitSink(tlsNext, 1); len(got) != 1 || !strings.HasSuffix(got[0], "tls=true") {
		t.Errorf("smtp_use_tls: TLS next hop got %q, want one message over TLS", got)
	}
	if got := plain.WaitMessages(1, 20*time.Second); len(got) != 1 {
		t.Errorf("smtp_use_tls: plain next hop got %d messages, want 1", len(got))
	}
}

// smtp_tls_policy_maps gives each next hop its own level in one run: the
// global encrypt holds where the table says nothing, none lets a plain
// server (smtp-sink, no STARTTLS) have its mail, encrypt requires TLS.
func TestTLSPolicyMaps(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	tlsNext := startTLSSink(t, pki.selfSigned, 0)
	plain := harness.StartSink(t)
	plainToo := harness.StartSink(t)
	policy := filepath.Join(pki.dir, "tls_policy")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("[127.0.0.1]:%d encrypt\n[127.0.0.1]:%d none\n", tlsNext.Port, plain.Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, fmt.Sprintf(`transport_maps = inline:{ enc.test=smtp:[127.0.0.1]:%d, none.test=smtp:[127.0.0.1]:%d, default.test=smtp:[127.0.0.1]:%d }
smtp_tls_security_level = encrypt
smtp_tls_policy_maps = texthash:%s
`, tlsNext.Port, plain.Port, plainToo.Port, policy), "")
	idEnc := sendFromInside(t, p, "u@enc.test")
	idNone := sendFromInside(t, p, "u@none.test")
	idDefault := sendFromInside(t, p, "u@default.test")

	if got := waitSink(tlsNext, 1); len(got) != 1 || !strings.HasSuffix(got[0], "tls=true") {
		t.Errorf("encrypt next hop got %q, want one message over TLS", got)
	}
	if got := plain.WaitMessages(1, 20*time.Second); len(got) != 1 {
		t.Errorf("none next hop got %d messages, want 1", len(got))
	}
	log := p.Log(idDefault + ": to=<u@default.test>")
	for _, want := range []string{
		idEnc + ": to=<u@enc.test>",
		idNone + ": to=<u@none.test>",
	} {
		if line := logLine(log, want); !strings.Contains(line, "status=sent") {
			t.Errorf("log lacks %q ... status=sent:\n%s", want, log)
		}
	}
	if want := "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])"; !strings.Contains(log, want) {
		t.Errorf("default next hop under encrypt: log lacks %q:\n%s", want, log)
	}
	if n := len(plainToo.Messages()); n != 0 {
		t.Errorf("the plain next hop without a policy got %d messages under encrypt", n)
	}
}

// Outbound TLS side by side with the real Postfix: the same policy table
// (may, verify, encrypt) against the same next hops, the same delivery
// results and reasons, and the same TLS lines (suite and key exchange
// masked: the clients' libraries differ there).
func TestOutboundTLSLikePostfix(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	maySink, verifySink := startTLSSink(t, pki.selfSigned, 0), startTLSSink(t, pki.selfSigned, 0)
	plain := harness.StartSink(t)
	policy := filepath.Join(pki.dir, "tls_policy")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("[127.0.0.1]:%d may\n[127.0.0.1]:%d verify\n[127.0.0.1]:%d encrypt\n",
		maySink.Port, verifySink.Port, plain.Port)), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`relay_domains = may.test, verify.test, encrypt.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = inline:{ may.test=smtp:[127.0.0.1]:%d, verify.test=smtp:[127.0.0.1]:%d, encrypt.test=smtp:[127.0.0.1]:%d }
smtp_tls_policy_maps = texthash:%s
smtp_tls_CAfile = %s
smtp_tls_loglevel = 1
`, maySink.Port, verifySink.Port, plain.Port, policy, pki.caFile)
	pf := harness.StartPostfixWith(t, main, "PORT inet n - n - - smtpd\ntlsmgr unix - - n 1000? 1 tlsmgr\n")
	pg := harness.Start(t, main, "")
	masks := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`with cipher \S+ \(\d+/\d+ bits\)`), "with cipher SUITE (N/N bits)"},
		{regexp.MustCompile(`key-exchange \S+`), "key-exchange KEX"},
	}
	// results are the delivery results and TLS lines, one per recipient
	// domain, in a fixed order.
	results := func(log string) string {
		var out []string
		for _, d := range []string{"may.test", "verify.test", "encrypt.test"} {
			if l := logLine(log, "to=<u@"+d+">"); l != "" {
				out = append(out, d+": "+l[strings.Index(l, "dsn="):])
			}
		}
		var tlsLines []string // in the order the deliveries happened to run: sorted
		for _, l := range strings.Split(log, "\n") {
			if i := strings.Index(l, " TLS connection established to "); i >= 0 {
				l = l[strings.LastIndex(l[:i], " ")+1:]
				for _, m := range masks {
					l = m.re.ReplaceAllString(l, m.with)
				}
				tlsLines = append(tlsLines, l)
			}
		}
		sort.Strings(tlsLines)
		return strings.Join(append(out, tlsLines...), "\n")
	}
	for _, addr := range []string{pf.Addr, pg.Addr} {
		for _, d := range []string{"may.test", "verify.test", "encrypt.test"} {
			if _, err := trySendFrom("127.0.0.1", addr, "a@src.test", "u@"+d, []byte("Subject: tls\r\n\r\nx\r\n")); err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
		}
	}
	var pfRes, pgRes string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		pfRes, pgRes = results(pf.Log()), results(pg.Log("status="))
		// Every domain's result and both TLS lines are in.
		if strings.Count(pfRes, "dsn=") == 3 && strings.Count(pgRes, "dsn=") == 3 &&
			strings.Count(pfRes, "established") == 2 && strings.Count(pgRes, "established") == 2 {
			break
		}
	}
	if pfRes != pgRes {
		t.Errorf("outbound TLS results differ:\nPostfix:\n%s\npostgate:\n%s", pfRes, pgRes)
	}
	t.Logf("Postfix:\n%s", pfRes)
}

// smtp_tls_chain_files: the client certificate goes to a server that asks
// for one (the inverse of relay_clientcerts on a receiving server).
func TestOutboundTLSClientCert(t *testing.T) {
	t.Parallel()
	pki := newTLSPKI(t)
	sink := startTLSSink(t, pki.selfSigned, 0)
	p := harness.Start(t, fmt.Sprintf("transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\nsmtp_tls_security_level = encrypt\nsmtp_tls_chain_files = %s\nsmtp_tls_loglevel = 1\n", sink.Port, pki.clientFile), "")
	id := sendFromInside(t, p, "u@relay.test")
	if got := waitSink(sink, 1); len(got) != 1 || !strings.HasSuffix(got[0], "tls=true cert=trusted.client.test") {
		t.Fatalf("sink got %q, want the message over TLS with the client certificate", got)
	}
	log := p.Log(id + ": removed")
	if l := logLine(log, "TLS connection established to"); !strings.HasSuffix(l, "client-signature ECDSA (prime256v1) client-digest SHA256") {
		t.Errorf("the TLS line lacks the client signature: %q", l)
	}
}
