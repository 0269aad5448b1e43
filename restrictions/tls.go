package restrictions

// TLS is what the restrictions and policy servers know of the session's
// TLS (Postfix's tls_context); a nil *TLS is a clear-text session.
type TLS struct {
	Protocol string // "TLSv1.3"
	Cipher   string // OpenSSL's name
	Bits     int    // cipher_usebits
	// The client certificate: present at all, and trusted (verified
	// against smtpd_tls_CAfile/CApath). The fingerprints are computed with
	// smtpd_tls_fingerprint_digest.
	CertPresent, CertTrusted bool
	PeerCN, IssuerCN         string
	CertFingerprint          string
	PkeyFingerprint          string
}

// rcCcert is check_ccert_access's reply class.
const rcCcert = "Client certificate"

// buildPermitTLSClientcerts is permit_tls_clientcerts (all false): the
// certificate's fingerprint, or its public key's, is a key of
// relay_clientcerts, whether or not a CA vouches for it; and
// permit_tls_all_clientcerts (all true): any trusted certificate.
func buildPermitTLSClientcerts(all bool) builder {
	return func(_ *compiler, name, _ string, _ *tableRef) runFunc {
		return func(e *eval) status {
			t := e.req.TLS
			switch {
			case t == nil:
				return dunno
			case all && t.CertTrusted:
				return e.aclPermit(name, rcClient, e.req.namaddr(), "")
			case !t.CertPresent:
				if !e.l.opts.AskCcert {
					e.warning("%s is requested, but \"smtpd_tls_ask_ccert = no\"", name)
				}
				return dunno
			}
			for _, fp := range []string{t.CertFingerprint, t.PkeyFingerprint} {
				for _, tbl := range e.l.opts.RelayClientcerts {
					_, ok, err := tbl.Lookup(e.ctx, fp)
					if err != nil {
						e.warning("relay_clientcerts: lookup error for fingerprint '%s', pkey fingerprint %s", t.CertFingerprint, t.PkeyFingerprint)
						return e.dictRetry(e.replyName)
					}
					if ok {
						return e.aclPermit(name, rcClient, e.req.namaddr(), "")
					}
				}
			}
			return dunno
		}
	}
}

// buildCheckCcertAccess is check_ccert_access: the access table looked up
// by certificate fingerprint, then public key fingerprint; replies name
// the certificate's CommonName.
func buildCheckCcertAccess(_ *compiler, name, _ string, tr *tableRef) runFunc {
	return func(e *eval) status {
		t := e.req.TLS
		if t == nil || !t.CertPresent {
			if t != nil && !e.l.opts.AskCcert {
				e.warning("%s is requested, but \"smtpd_tls_ask_ccert = no\"", name)
			}
			return dunno
		}
		for _, fp := range []string{t.CertFingerprint, t.PkeyFingerprint} {
			v, ok, err := tr.t.Lookup(e.ctx, fp)
			if st, done := e.found(tr, fp, v, ok, err, fp, t.PeerCN, rcCcert); done {
				return st
			}
		}
		return dunno
	}
}

// buildRejectPlaintextSession is reject_plaintext_session: a session
// without TLS gets "$plaintext_reject_code 4.7.1 Session encryption is
// required".
func buildRejectPlaintextSession(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if e.req.TLS != nil {
			return dunno
		}
		return e.reject(classPolicy, e.l.opts.PlaintextRejectCode, "4.7.1", "Session encryption is required")
	}
}
