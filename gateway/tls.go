package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postgate/gateway/command"
	"postgate/gateway/config"
	"postgate/relay/tlsfacts"
	"postgate/restrictions"
	"postgate/rules"
)

// serverTLS is one service's STARTTLS: Postfix's smtpd_tls_* parameters,
// the certificates, and the crypto/tls configuration.
type serverTLS struct {
	use     bool // STARTTLS offered (security level may or encrypt)
	enforce bool // encrypt: nothing but HELO, EHLO, XCLIENT, STARTTLS, NOOP, QUIT before TLS
	wrapper bool // smtpd_tls_wrappermode: TLS from the first byte (port 465)
	// askCcert asks clients for a certificate; reqCcert (with enforce)
	// refuses a client without a trusted one.
	askCcert, reqCcert bool
	receivedHeader     bool
	loglevel           int
	digest             func() hash.Hash
	timeout, stressed  time.Duration // smtpd_starttls_timeout
	// certs is nil when no certificate could be loaded: STARTTLS is
	// answered 454, as Postfix does after such "local problem".
	certs     *certStore
	config    *tls.Config
	clientCAs *x509.CertPool // smtpd_tls_CAfile and CApath: what makes a client certificate trusted
	// served remembers which certificate a handshake in progress chose,
	// by connection, for the server-signature log detail.
	served sync.Map
}

// newServerTLS reads a service's TLS parameters. A certificate that cannot
// be loaded is not an error (Postfix runs on, answering STARTTLS with 454):
// warn says why.
func newServerTLS(cfg *config.Config, stressed *config.Config, warn func(string)) (*serverTLS, error) {
	t := &serverTLS{
		askCcert:       cfg.Bool("smtpd_tls_ask_ccert"),
		receivedHeader: cfg.Bool("smtpd_tls_received_header"),
		loglevel:       int(cfg.Int("smtpd_tls_loglevel")),
		timeout:        cfg.Duration("smtpd_starttls_timeout"),
		stressed:       stressed.Duration("smtpd_starttls_timeout"),
	}
	t.wrapper = cfg.Bool("smtpd_tls_wrappermode")
	switch level := cfg.Get("smtpd_tls_security_level"); {
	case t.wrapper:
		// The level is ignored: a wrapper-mode service is all TLS.
		t.use, t.enforce = true, true
	case level == "":
		t.use, t.enforce = cfg.Bool("smtpd_use_tls"), cfg.Bool("smtpd_enforce_tls")
	case level == "none":
	case level == "may":
		t.use = true
	default: // encrypt; fingerprint, verify and secure mean encrypt for a server, as in Postfix
		if level != "encrypt" {
			warn(fmt.Sprintf("smtpd_tls_security_level: unsupported TLS level %q, using \"encrypt\"", level))
		}
		t.use, t.enforce = true, true
	}
	t.use = t.use || t.enforce
	t.reqCcert = cfg.Bool("smtpd_tls_req_ccert") && t.enforce
	if cfg.Bool("smtpd_tls_req_ccert") && !t.enforce {
		warn("Can't require client certs unless TLS is required")
	}
	var err error
	if t.digest, err = tlsfacts.Digest(cfg.Get("smtpd_tls_fingerprint_digest")); err != nil {
		return nil, paramError(cfg, "smtpd_tls_fingerprint_digest", err)
	}
	protoParam := "smtpd_tls_protocols"
	if t.enforce {
		protoParam = "smtpd_tls_mandatory_protocols"
	}
	minV, maxV, err := tlsfacts.Protocols(cfg.Get(protoParam))
	if err != nil {
		return nil, paramError(cfg, protoParam, err)
	}
	if t.clientCAs, err = loadCAs(cfg, "smtpd"); err != nil {
		return nil, err
	}
	if !t.use {
		return t, nil
	}
	t.certs = newCertStore(cfg, "smtpd")
	if len(t.certs.files) == 0 {
		warn("No server certs available. TLS won't be enabled")
		t.certs = nil
	} else if err := t.certs.load(); err != nil {
		warn(fmt.Sprintf("%s: %s: %v: disabling TLS support", cfg.Pos(t.certs.param), t.certs.param, err))
		t.certs = nil
	}
	t.config = &tls.Config{
		MinVersion:     minV,
		MaxVersion:     maxV,
		GetCertificate: t.getCertificate,
	}
	if t.askCcert || t.reqCcert {
		// Verified below against smtpd_tls_CAfile: an untrusted
		// certificate still has a fingerprint (relay_clientcerts).
		t.config.ClientAuth = tls.RequestClientCert
	}
	return t, nil
}

// offered and enforced are the security level; a service built without
// TLS settings (a unit test's) has none.
func (t *serverTLS) offered() bool  { return t != nil && t.use }
func (t *serverTLS) enforced() bool { return t != nil && t.enforce }
func (t *serverTLS) wrapped() bool  { return t != nil && t.wrapper }

// wrapTLS starts TLS at connect in wrapper mode; without a certificate
// the client is dropped without a word, as Postfix does.
func (s *session) wrapTLS() bool {
	if s.svc.tls.certs == nil {
		s.svc.log.Logf("smtpd", "warning: Wrapper-mode request dropped from %s for service %s. TLS context initialization failed. For details see earlier warnings in your logs.", s.client, s.svc.name)
		return false
	}
	return s.startTLS()
}

func (t *serverTLS) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := t.certs.choose(hello)
	if err == nil && hello.Conn != nil {
		t.served.Store(hello.Conn, c)
	}
	return c, err
}

// certFiles is one key and its certificate chain: a chain file (key and
// certificates in one, smtpd_tls_chain_files) or a cert file and key file.
type certFiles struct {
	cert, key string
}

// certStore holds the server's certificates so that a reload can read the
// files again: handshakes take whatever is current.
type certStore struct {
	param string // the parameter that names the files, for messages
	files []certFiles
	cur   atomic.Pointer[[]tls.Certificate]
}

// newCertStore names the files of prefix's parameters ("smtpd" for the
// server, "smtp" for the client): prefix_tls_chain_files, else
// prefix_tls_cert_file and prefix_tls_key_file.
func newCertStore(cfg *config.Config, prefix string) *certStore {
	cs := &certStore{param: prefix + "_tls_chain_files"}
	if chain := cfg.List(prefix + "_tls_chain_files"); len(chain) > 0 {
		for _, f := range chain {
			cs.files = append(cs.files, certFiles{cert: f, key: f})
		}
		return cs
	}
	cs.param = prefix + "_tls_cert_file"
	if cert := cfg.Get(prefix + "_tls_cert_file"); cert != "" && !strings.EqualFold(cert, "none") {
		cs.files = append(cs.files, certFiles{cert: cert, key: cfg.Get(prefix + "_tls_key_file")})
	}
	return cs
}

// load reads every certificate and key; on error the current ones stay.
func (cs *certStore) load() error {
	var certs []tls.Certificate
	for _, f := range cs.files {
		certPEM, err := os.ReadFile(f.cert)
		if err != nil {
			return fmt.Errorf("cannot get certificate from file %q: %w", f.cert, err)
		}
		keyPEM := certPEM
		if f.key != f.cert {
			if keyPEM, err = os.ReadFile(f.key); err != nil {
				return fmt.Errorf("cannot get private key from file %q: %w", f.key, err)
			}
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("cannot load certificate and key from %q and %q: %w", f.cert, f.key, err)
		}
		certs = append(certs, c)
	}
	cs.cur.Store(&certs)
	return nil
}

// choose picks the first certificate the client can use (an RSA and an
// ECDSA chain may both be configured).
func (cs *certStore) choose(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.pick(hello.SupportsCertificate), nil
}

// chooseClient picks the first certificate the server accepts, for the
// SMTP client (smtp_tls_chain_files, smtp_tls_cert_file).
func (cs *certStore) chooseClient(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return cs.pick(req.SupportsCertificate), nil
}

// pick returns the first current certificate the peer supports, else the
// first one (the peer then says what it dislikes).
func (cs *certStore) pick(supports func(*tls.Certificate) error) *tls.Certificate {
	certs := *cs.cur.Load()
	for i := range certs {
		if supports(&certs[i]) == nil {
			return &certs[i]
		}
	}
	return &certs[0]
}

// loadCAs reads the trust anchors of prefix's parameters ("smtpd" or
// "smtp"): prefix_tls_CAfile, a PEM file, and prefix_tls_CApath, a
// directory of them; nil when neither is set. Errors name the parameter.
func loadCAs(cfg *config.Config, prefix string) (*x509.CertPool, error) {
	fileParam, dirParam := prefix+"_tls_CAfile", prefix+"_tls_CApath"
	file, dir := cfg.Get(fileParam), cfg.Get(dirParam)
	if file == "" && dir == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if file != "" {
		b, err := os.ReadFile(file)
		if err == nil && !pool.AppendCertsFromPEM(b) {
			err = fmt.Errorf("%s: no PEM certificate", file)
		}
		if err != nil {
			return nil, paramError(cfg, fileParam, err)
		}
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, paramError(cfg, dirParam, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			// Files that hold no certificate (c_rehash's links are
			// certificates too) are passed over, as OpenSSL does.
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, paramError(cfg, dirParam, err)
			}
			pool.AppendCertsFromPEM(b)
		}
	}
	return pool, nil
}

// tlsSession is what a session knows of its TLS: Postfix's tls_context.
type tlsSession struct {
	tlsfacts.Facts
	peerPresent, peerTrusted bool
	peerCN, issuerCN         string
	certFingerprint          string
	pkeyFingerprint          string
	forChecks                *restrictions.TLS // the same facts for restrictions, made once
}

// starttls answers STARTTLS as Postfix's starttls_cmd.
func (s *session) starttls(args []command.Token) bool {
	t := s.svc.tls
	switch {
	case len(args) != 1:
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: STARTTLS"})
		return false
	case s.tls != nil:
		s.reply(rules.Reply{Code: 554, DSN: "5.5.1", Text: "Error: TLS already active"})
		return false
	case !t.offered() || s.ehloMask&ehloStartTLS != 0:
		s.reply(rules.Reply{Code: 502, DSN: "5.5.1", Text: "Error: command not implemented"})
		return false
	case t.certs == nil:
		s.reply(rules.Reply{Code: 454, DSN: "4.7.0", Text: "TLS not available due to local problem"})
		return false
	}
	s.reply(rules.Reply{Code: 220, DSN: "2.0.0", Text: "Ready to start TLS"})
	// Everything said in clear text is forgotten.
	s.helo = ""
	s.resetTransaction()
	return s.startTLS()
}

// startTLS runs the handshake (after STARTTLS, or at connect in wrapper
// mode) and checks the client certificate as the settings require. On
// failure the connection is given up, as Postfix does.
func (s *session) startTLS() bool {
	t := s.svc.tls
	timeout := t.timeout
	if s.svc.load.stressed() {
		timeout = t.stressed
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	defer t.served.Delete(s.nc)
	if err := s.c.StartTLS(ctx, t.config); err != nil {
		s.svc.log.Logf("smtpd", "SSL_accept error from %s: %s", s.client, handshakeError(err))
		s.svc.log.Logf("smtpd", "lost connection after %s from %s", s.where, s.client)
		s.hangup = true
		return false
	}
	st, _ := s.c.TLSConnectionState()
	s.tls = t.session(st, s.nc)
	t.logSession(s.svc.log, s.client, s.tls)
	if s.newTLSLimited(st.DidResume) {
		return true
	}
	if t.reqCcert && !s.tls.peerTrusted {
		why := "No client certificate presented"
		if s.tls.peerPresent {
			why = "Client certificate not trusted"
		}
		s.svc.log.Logf("smtpd", "NOQUEUE: abort: TLS from %s: %s", s.client, why)
		// Postfix answers the next command so, and hangs up.
		s.denied = &rules.Reply{Code: 421, DSN: "4.7.1", Text: s.svc.hostname + " Error: " + why}
	}
	return true
}

// handshakeError is the handshake failure as a log detail.
func handshakeError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return "timeout"
	}
	return err.Error()
}

// session reads the facts of a finished handshake.
func (t *serverTLS) session(st tls.ConnectionState, nc any) *tlsSession {
	var local *x509.Certificate
	if c, ok := t.served.Load(nc); ok {
		local = c.(*tls.Certificate).Leaf
	}
	ts := &tlsSession{Facts: tlsfacts.Of(st, local, true)}
	if len(st.PeerCertificates) == 0 {
		return ts
	}
	peer := st.PeerCertificates[0]
	ts.peerPresent = true
	ts.peerCN = peer.Subject.CommonName
	ts.issuerCN = peer.Issuer.CommonName
	if ts.issuerCN == "" && len(peer.Issuer.Organization) > 0 {
		ts.issuerCN = peer.Issuer.Organization[0]
	}
	ts.certFingerprint = tlsfacts.Fingerprint(t.digest, peer.Raw)
	ts.pkeyFingerprint = tlsfacts.Fingerprint(t.digest, peer.RawSubjectPublicKeyInfo)
	if t.clientCAs != nil {
		inter := x509.NewCertPool()
		for _, c := range st.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := peer.Verify(x509.VerifyOptions{Roots: t.clientCAs, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		ts.peerTrusted = err == nil
	}
	return ts
}

// logSession writes Postfix's summary of a new TLS session
// (smtpd_tls_loglevel 1 and up), and at 2 a resumed session and the
// client certificate.
func (t *serverTLS) logSession(log *MailLog, client clientInfo, ts *tlsSession) {
	if t.loglevel >= 2 && ts.Resumed {
		log.Logf("smtpd", "%s: Reusing old session (RFC 5077 session ticket)", client)
	}
	if t.loglevel >= 2 && ts.peerPresent {
		log.Logf("smtpd", "%s: subject_CN=%s, issuer=%s, fingerprint=%s, pkey_fingerprint=%s",
			client, ts.peerCN, ts.issuerCN, ts.certFingerprint, ts.pkeyFingerprint)
	}
	if t.loglevel < 1 {
		return
	}
	trust := "Anonymous"
	switch {
	case ts.peerTrusted:
		trust = "Trusted"
	case ts.peerPresent:
		trust = "Untrusted"
	}
	log.Logf("smtpd", "%s TLS connection established from %s: %s%s", trust, client, ts.summary(), ts.signatures())
}

// summary is "TLSv1.3 with cipher NAME (256/256 bits)".
func (ts *tlsSession) summary() string {
	return fmt.Sprintf("%s with cipher %s (%d/%d bits)", ts.Protocol, ts.Cipher, ts.Bits, ts.AlgBits)
}

// signatures is the TLS 1.3 detail after the summary in the log line:
// key exchange and signatures.
func (ts *tlsSession) signatures() string {
	var b strings.Builder
	if ts.KeyExchange != "" {
		b.WriteString(" key-exchange " + ts.KeyExchange)
	}
	if ts.ServerSignature != "" {
		b.WriteString(" server-signature " + ts.ServerSignature)
	}
	if ts.ClientSignature != "" {
		b.WriteString(" client-signature " + ts.ClientSignature)
	}
	return b.String()
}

// restrictions is what the restrictions and policy servers see of the
// session's TLS: nil in clear text.
func (ts *tlsSession) restrictions() *restrictions.TLS {
	if ts == nil {
		return nil
	}
	if ts.forChecks == nil {
		ts.forChecks = &restrictions.TLS{Protocol: ts.Protocol, Cipher: ts.Cipher, Bits: ts.Bits,
			CertPresent: ts.peerPresent, CertTrusted: ts.peerTrusted, PeerCN: ts.peerCN, IssuerCN: ts.issuerCN,
			CertFingerprint: ts.certFingerprint, PkeyFingerprint: ts.pkeyFingerprint}
	}
	return ts.forChecks
}

// receivedProto is the "with" word of our Received: header: ESMTPS inside
// TLS (RFC 3848), for ESMTP only.
func (s *session) receivedProto(proto string) string {
	if s.tls != nil && proto == "ESMTP" {
		return proto + "S"
	}
	return proto
}

// appendTLSReceived appends the TLS comment lines of the Received: header
// (smtpd_tls_received_header), as Postfix writes them.
func (s *session) appendTLSReceived(b []byte) []byte {
	ts := s.tls
	if ts == nil || !s.svc.tls.receivedHeader {
		return b
	}
	// As Postfix folds it: the key exchange starts a line, the server
	// signature follows it (or starts one), the client signature has its own.
	b = append(b, "\r\n\t(using "...)
	b = append(b, ts.summary()...)
	if ts.KeyExchange != "" {
		b = append(b, "\r\n\t key-exchange "...)
		b = append(b, ts.KeyExchange...)
	}
	if ts.ServerSignature != "" {
		if ts.KeyExchange != "" {
			b = append(b, " server-signature "...)
		} else {
			b = append(b, "\r\n\t server-signature "...)
		}
		b = append(b, ts.ServerSignature...)
	}
	if ts.ClientSignature != "" {
		b = append(b, "\r\n\t client-signature "...)
		b = append(b, ts.ClientSignature...)
	}
	b = append(b, ')')
	switch {
	case ts.peerPresent:
		verified := "not verified"
		if ts.peerTrusted {
			verified = "verified OK"
		}
		b = fmt.Appendf(b, "\r\n\t(Client CN \"%s\", Issuer \"%s\" (%s))", commentSafe(ts.peerCN), commentSafe(ts.issuerCN), verified)
	case s.svc.tls.askCcert:
		b = append(b, "\r\n\t(Client did not present a certificate)"...)
	default:
		b = append(b, "\r\n\t(No client certificate requested)"...)
	}
	return b
}

// commentSafe keeps a name from ending or nesting the header comment
// (Postfix's comment_sanitize, simplified: parentheses and quotes and
// backslashes become '?' rather than being balanced or quoted).
func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '(' || r == ')' || r == '"' || r == '\\' || r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, printable(s))
}

// tlsMacro is the value of a TLS milter macro ({tls_version}, {cipher},
// {cipher_bits}, {cert_subject}, {cert_issuer}); ok is false outside TLS.
// As in Postfix, the certificate names are given only for a trusted
// certificate.
func (s *session) tlsMacro(name string) (value string, ok bool) {
	ts := s.tls
	if ts == nil {
		return "", false
	}
	switch name {
	case "{tls_version}":
		return ts.Protocol, true
	case "{cipher}":
		return ts.Cipher, true
	case "{cipher_bits}":
		return strconv.Itoa(ts.Bits), true
	case "{cert_subject}":
		return ts.peerCN, ts.peerTrusted
	case "{cert_issuer}":
		return ts.issuerCN, ts.peerTrusted
	}
	return "", false
}
