package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	"postgate/relay/tlsfacts"
)

// TLSLevel is a Postfix TLS security level of the SMTP client.
type TLSLevel int

const (
	TLSNone    TLSLevel = iota
	TLSMay              // opportunistic: STARTTLS when offered, no verification
	TLSEncrypt          // mandatory encryption, no verification
	TLSVerify           // mandatory, the certificate verified and matched (smtp_tls_verify_cert_match)
	TLSSecure           // mandatory, verified and matched (smtp_tls_secure_cert_match)
)

var tlsLevelNames = [...]string{TLSNone: "none", TLSMay: "may", TLSEncrypt: "encrypt", TLSVerify: "verify", TLSSecure: "secure"}

func (l TLSLevel) String() string { return tlsLevelNames[l] }

// ParseTLSLevel reads a security level. dane, dane-only and fingerprint are
// Postfix levels postgate does not implement: an error says so.
func ParseTLSLevel(s string) (TLSLevel, error) {
	for l, n := range tlsLevelNames {
		if strings.EqualFold(s, n) {
			return TLSLevel(l), nil
		}
	}
	switch strings.ToLower(s) {
	case "dane", "dane-only":
		return 0, fmt.Errorf("security level %q is not supported by postgate yet: DANE needs a DNSSEC-validating resolver (use verify or secure with smtp_tls_CAfile)", s)
	case "fingerprint":
		return 0, fmt.Errorf("security level %q is not supported by postgate yet (use verify or secure with smtp_tls_CAfile)", s)
	}
	return 0, fmt.Errorf("invalid security level %q", s)
}

// TLSOptions are the SMTP client's TLS parameters.
type TLSOptions struct {
	Level TLSLevel // smtp_tls_security_level (smtp_use_tls, smtp_enforce_tls)
	// Policy looks a destination up in smtp_tls_policy_maps: the value
	// ("encrypt", "verify match=hostname:nexthop", ...), whether found,
	// or a lookup error. nil: no table.
	Policy  func(ctx context.Context, key string) (string, bool, error)
	RootCAs *x509.CertPool // smtp_tls_CAfile, smtp_tls_CApath; nil: no certificate is trusted
	// ClientCertificate gives the certificate to present when a server
	// asks for one (smtp_tls_chain_files, smtp_tls_cert_file); nil: none.
	ClientCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	LogLevel          int // smtp_tls_loglevel
	// Protocol ranges: Opportunistic for may, Mandatory for the others
	// (smtp_tls_protocols, smtp_tls_mandatory_protocols); zero: Go's.
	MinVersion, MaxVersion                   uint16
	MandatoryMinVersion, MandatoryMaxVersion uint16
	VerifyMatch                              []string // smtp_tls_verify_cert_match ("hostname")
	SecureMatch                              []string // smtp_tls_secure_cert_match ("nexthop", "dot-nexthop")
}

// tlsPolicy is the TLS policy for one destination.
type tlsPolicy struct {
	level    TLSLevel
	match    []string // match= of the policy table, else the level's default
	min, max uint16
}

// errTLSHandshake is Postfix's deferral when the TLS handshake fails; at
// level may the delivery tries the server again in clear text.
var errTLSHandshake = softFail("4.7.5", "Cannot start TLS: handshake failure")

// tlsConfigProblem is Postfix's deferral when a policy cannot be used.
func tlsConfigProblem() *failure { return softFail("4.7.5", "client TLS configuration problem") }

// param names a parameter of the client's personality in texts:
// smtp_name, or lmtp_name for LMTP.
func (o *Options) param(name string) string {
	if o.LMTP {
		return "lmtp_" + name
	}
	return "smtp_" + name
}

// tlsPolicyFor is the policy for destination dest: smtp_tls_policy_maps,
// looked up by the destination as written, then (for a domain) by its
// parent domains as ".parent", else smtp_tls_security_level.
func (t *SMTP) tlsPolicyFor(ctx context.Context, dest string) (*tlsPolicy, *failure) {
	o := &t.opts.TLS
	p := &tlsPolicy{level: o.Level}
	if o.Policy != nil {
		keys := []string{dest}
		if !strings.ContainsAny(dest, "[]:") {
			for k := dest; ; {
				i := strings.IndexByte(k[1:], '.')
				if i < 0 {
					break
				}
				k = k[i+1:]
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			v, ok, err := o.Policy(ctx, k)
			if err != nil {
				t.logf("", fmt.Sprintf("warning: %s, next-hop destination %q: policy table lookup error", t.opts.param("tls_policy_maps"), dest))
				return nil, tlsConfigProblem()
			}
			if !ok {
				continue
			}
			if err := p.parse(v); err != nil {
				t.logf("", fmt.Sprintf("warning: %s, next-hop destination %q: %v", t.opts.param("tls_policy_maps"), dest, err))
				return nil, tlsConfigProblem()
			}
			break
		}
	}
	if p.match == nil {
		switch p.level {
		case TLSVerify:
			p.match = o.VerifyMatch
		case TLSSecure:
			p.match = o.SecureMatch
		}
	}
	if p.min == 0 {
		p.min, p.max = o.MandatoryMinVersion, o.MandatoryMaxVersion
		if p.level == TLSMay {
			p.min, p.max = o.MinVersion, o.MaxVersion
		}
	}
	return p, nil
}

// CheckTLSPolicy reports what is wrong with a smtp_tls_policy_maps value.
func CheckTLSPolicy(v string) error {
	var p tlsPolicy
	return p.parse(v)
}

// parse reads a policy table value: a level, then attributes.
func (p *tlsPolicy) parse(v string) error {
	words := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(words) == 0 {
		return fmt.Errorf("invalid empty policy")
	}
	var err error
	if p.level, err = ParseTLSLevel(words[0]); err != nil {
		return err
	}
	if p.level < TLSMay {
		return nil // attributes are ignored with TLS disabled
	}
	for _, w := range words[1:] {
		name, val, ok := strings.Cut(w, "=")
		if !ok {
			return fmt.Errorf("malformed attribute/value pair %q", w)
		}
		if val == "" {
			return fmt.Errorf("attribute %q has empty value", name)
		}
		switch strings.ToLower(name) {
		case "match":
			if p.level < TLSVerify {
				return fmt.Errorf("attribute %q invalid at security level %q", name, p.level)
			}
			p.match = append(p.match, strings.Split(val, ":")...)
		case "protocols":
			if p.min, p.max, err = tlsfacts.Protocols(val); err != nil {
				return err
			}
		case "ciphers", "exclude":
			// Go's crypto/tls offers only strong suites: every grade
			// is served by them.
		default:
			return fmt.Errorf("invalid attribute name: %q", name)
		}
	}
	return nil
}

// startTLS sends STARTTLS when the policy wants it and the server offers
// it, and runs the handshake; after it the caller says EHLO again. It
// returns a failure in Postfix's words when TLS is required and cannot be
// had, or the certificate does not satisfy the policy.
func (s *session) startTLS(ctx context.Context, p *tlsPolicy, dest destinationNames) *failure {
	required := p.level >= TLSEncrypt
	if !s.offersTLS {
		if required {
			return softFail("4.7.4", "TLS is required, but was not offered by host %s", s.namaddr)
		}
		return nil
	}
	r, err := s.command(stageEHLO, "STARTTLS")
	if err != nil {
		return s.ioFailure(ctx, stageEHLO, err)
	}
	if r.code/100 != 2 {
		if required {
			s.broken = true
			return replyFailure(r, "TLS is required, but host %s refused to start TLS: %s", s.namaddr, r.line())
		}
		return nil // go on in clear text
	}
	cfg := &tls.Config{
		// The chain and the names are checked below, as the level says:
		// opportunistic and encrypt sessions take any certificate.
		// No SNI, as Postfix's default (smtp_tls_servername empty).
		InsecureSkipVerify: true,
		MinVersion:         p.min,
		MaxVersion:         p.max,
	}
	var sent *tls.Certificate // the client certificate, if the server asked
	if get := s.opts.TLS.ClientCertificate; get != nil {
		cfg.GetClientCertificate = func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := get(req)
			sent = c
			return c, err
		}
	}
	tc := tls.Client(s.c, cfg)
	s.c.setDeadline(s.opts.HeloTimeout)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.broken = true
		if s.opts.TLS.LogLevel >= 1 {
			s.opts.logf("SSL_connect error to %s: %v", s.namaddrport, err)
		}
		return errTLSHandshake
	}
	s.br.Reset(tc)
	s.bw.Reset(tc)
	s.offersTLS, s.inTLS = false, true
	st := tc.ConnectionState()
	trusted, verr := s.verifyChain(st)
	matched := trusted && s.matches(st.PeerCertificates[0], p, dest)
	if s.opts.TLS.LogLevel >= 1 {
		if verr != nil {
			s.opts.logf("server certificate verification failed for %s: %v", s.namaddrport, verr)
		}
		kind := "Untrusted"
		switch {
		case matched && p.level >= TLSVerify:
			kind = "Verified"
		case trusted:
			kind = "Trusted"
		}
		var local *x509.Certificate
		if sent != nil {
			local = sent.Leaf
		}
		f := tlsfacts.Of(st, local, false)
		line := fmt.Sprintf("%s TLS connection established to %s: %s with cipher %s (%d/%d bits)", kind, s.namaddrport, f.Protocol, f.Cipher, f.Bits, f.AlgBits)
		if f.KeyExchange != "" {
			line += " key-exchange " + f.KeyExchange
		}
		if f.ServerSignature != "" {
			line += " server-signature " + f.ServerSignature
		}
		if f.ClientSignature != "" {
			line += " client-signature " + f.ClientSignature
		}
		s.opts.logf("%s", line)
	}
	s.certMatched = matched && p.level >= TLSVerify
	if p.level >= TLSVerify && !matched {
		s.broken = true
		return softFail("4.7.5", "Server certificate not verified")
	}
	return nil
}

// verifyChain checks the server's chain against the trust anchors.
func (s *session) verifyChain(st tls.ConnectionState) (bool, error) {
	if len(st.PeerCertificates) == 0 {
		return false, fmt.Errorf("no certificate")
	}
	if s.opts.TLS.RootCAs == nil {
		return false, fmt.Errorf("no trust anchors (%s, %s)", s.opts.param("tls_CAfile"), s.opts.param("tls_CApath"))
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: s.opts.TLS.RootCAs, Intermediates: inter})
	return err == nil, err
}

// destinationNames are the names a certificate may be matched against.
type destinationNames struct {
	nexthop string // the next-hop domain or host
}

// matches applies the policy's match list: "hostname" (the server's
// name), "nexthop" (the next-hop domain), "dot-nexthop" (any name below
// it), or a literal name (".example.com" for names below example.com).
func (s *session) matches(cert *x509.Certificate, p *tlsPolicy, dest destinationNames) bool {
	for _, m := range p.match {
		var name string
		switch strings.ToLower(m) {
		case "hostname":
			name = s.host
		case "nexthop":
			name = dest.nexthop
		case "dot-nexthop":
			name = "." + dest.nexthop
		default:
			name = m
		}
		if strings.HasPrefix(name, ".") {
			for _, n := range cert.DNSNames {
				if strings.HasSuffix(strings.ToLower(n), strings.ToLower(name)) {
					return true
				}
			}
			continue
		}
		if name != "" && cert.VerifyHostname(name) == nil {
			return true
		}
	}
	return false
}
