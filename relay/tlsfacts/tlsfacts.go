// Package tlsfacts names the facts of a TLS session as Postfix's TLS
// library does (OpenSSL's names): protocol versions, cipher names and
// bits, the key exchange and signatures of TLS 1.3, certificate
// fingerprints, and Postfix's protocol lists. The SMTP server (gateway)
// and the SMTP client (relay) log and compare with them.
package tlsfacts

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// Facts are what Postfix's TLS_SESS_STATE says about a session.
type Facts struct {
	Protocol      string // "TLSv1.3"
	Cipher        string // OpenSSL's name, "TLS_AES_256_GCM_SHA384"
	Bits, AlgBits int    // cipher_usebits, cipher_algbits
	// KeyExchange, ServerSignature and ClientSignature are TLS 1.3's
	// details, each "" when unknown, e.g. "X25519", "ECDSA (prime256v1)
	// server-digest SHA256" (the words after "server-signature ").
	KeyExchange     string
	ServerSignature string
	ClientSignature string
	Resumed         bool
}

// Of describes a finished handshake; local is the certificate this end
// sent (nil: none or unknown), and server says whether this end is the
// server.
func Of(st tls.ConnectionState, local *x509.Certificate, server bool) Facts {
	f := Facts{Protocol: ProtocolName(st.Version), Resumed: st.DidResume}
	f.Cipher, f.Bits, f.AlgBits = Cipher(st.CipherSuite)
	if st.Version < tls.VersionTLS13 {
		return f // Postfix logs these only for TLS 1.3
	}
	f.KeyExchange = keyExchange(st.CurveID)
	var peer *x509.Certificate
	if len(st.PeerCertificates) > 0 {
		peer = st.PeerCertificates[0]
	}
	srv, cli := local, peer
	if !server {
		srv, cli = peer, local
	}
	f.ServerSignature = signature(srv, "server-digest")
	f.ClientSignature = signature(cli, "client-digest")
	return f
}

// ProtocolName is OpenSSL's name of a protocol version.
func ProtocolName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "unknown"
}

// opensslNames are OpenSSL's names of the TLS 1.2 and older suites Go
// implements; TLS 1.3 suites have the same name in both.
var opensslNames = map[uint16]string{
	tls.TLS_RSA_WITH_RC4_128_SHA:                      "RC4-SHA",
	tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA:                 "DES-CBC3-SHA",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA256:               "AES128-SHA256",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA:              "ECDHE-ECDSA-RC4-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA:                "ECDHE-RSA-RC4-SHA",
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA:           "ECDHE-RSA-DES-CBC3-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:       "ECDHE-ECDSA-AES128-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256:         "ECDHE-RSA-AES128-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
}

// Cipher is OpenSSL's name of a suite and its bits (used/of the
// algorithm).
func Cipher(id uint16) (name string, bits, algBits int) {
	name = opensslNames[id]
	if name == "" {
		name = tls.CipherSuiteName(id)
	}
	switch {
	case strings.Contains(name, "DES-CBC3"):
		return name, 112, 168
	case strings.Contains(name, "AES128"), strings.Contains(name, "AES_128"), strings.Contains(name, "RC4"):
		return name, 128, 128
	case strings.Contains(name, "AES256"), strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return name, 256, 256
	}
	return name, 0, 0
}

// curveNames are OpenSSL's short names of the NIST curves.
var curveNames = map[tls.CurveID]string{
	tls.CurveP256: "prime256v1", tls.CurveP384: "secp384r1", tls.CurveP521: "secp521r1",
}

func keyExchange(id tls.CurveID) string {
	switch {
	case id == 0:
		return ""
	case curveNames[id] != "":
		return "ECDHE (" + curveNames[id] + ")"
	}
	return id.String() // X25519, X25519MLKEM768
}

// signature is Postfix's "NAME (detail) <which> DIGEST" for the key of
// cert, the signature TLS 1.3 makes with it.
func signature(cert *x509.Certificate, which string) string {
	if cert == nil {
		return ""
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		// TLS 1.3 signs with RSA-PSS; Go prefers SHA-256.
		return "RSA-PSS (" + strconv.Itoa(k.N.BitLen()) + " bits) " + which + " SHA256"
	case *ecdsa.PublicKey:
		// TLS 1.3 ties the digest to the curve.
		switch k.Curve.Params().BitSize {
		case 256:
			return "ECDSA (prime256v1) " + which + " SHA256"
		case 384:
			return "ECDSA (secp384r1) " + which + " SHA384"
		case 521:
			return "ECDSA (secp521r1) " + which + " SHA512"
		}
		return "ECDSA"
	case ed25519.PublicKey:
		return "ED25519"
	}
	return ""
}

// Digest returns the hash of a fingerprint digest name
// (smtpd_tls_fingerprint_digest): md5, sha1, sha256 or sha512.
func Digest(name string) (func() hash.Hash, error) {
	switch strings.ToLower(name) {
	case "md5":
		return md5.New, nil
	case "sha1":
		return sha1.New, nil
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unsupported fingerprint digest %q (use md5, sha1, sha256 or sha512)", name)
}

// Fingerprint is Postfix's fingerprint of data: the digest in upper-case
// hex, bytes separated by colons.
func Fingerprint(h func() hash.Hash, data []byte) string {
	d := h()
	d.Write(data)
	sum := strings.ToUpper(hex.EncodeToString(d.Sum(nil)))
	var b strings.Builder
	for i := 0; i < len(sum); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(sum[i : i+2])
	}
	return b.String()
}

var protocolVersions = []struct {
	name string
	v    uint16
}{{"TLSv1", tls.VersionTLS10}, {"TLSv1.1", tls.VersionTLS11}, {"TLSv1.2", tls.VersionTLS12}, {"TLSv1.3", tls.VersionTLS13}}

// Protocols reads a Postfix protocol list (smtpd_tls_protocols,
// smtp_tls_mandatory_protocols, ...): ">=TLSv1.2", "<=TLSv1.2", or
// exclusions "!SSLv2, !SSLv3, !TLSv1", or names to include. It returns the
// range Go's crypto/tls can use. SSLv2 and SSLv3 are never offered. A set
// with a hole (TLSv1 and TLSv1.2 but not TLSv1.1) cannot be expressed: it
// is an error.
func Protocols(spec string) (min, max uint16, err error) {
	allowed := map[uint16]bool{}
	included := false
	for _, w := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ':' || r == ' ' || r == '\t' }) {
		op := ""
		for _, p := range []string{">=", "<=", "!"} {
			if strings.HasPrefix(w, p) {
				op, w = p, w[len(p):]
				break
			}
		}
		v, ok := protocolVersion(w)
		if !ok {
			return 0, 0, fmt.Errorf("unknown TLS protocol %q", w)
		}
		switch op {
		case ">=":
			for _, p := range protocolVersions {
				if p.v < v {
					allowed[p.v] = false
				}
			}
		case "<=":
			for _, p := range protocolVersions {
				if p.v > v {
					allowed[p.v] = false
				}
			}
		case "!":
			if v != 0 {
				allowed[v] = false
			}
		default:
			included = true
			if v != 0 {
				allowed[v] = true
			}
		}
	}
	for _, p := range protocolVersions {
		on, set := allowed[p.v]
		if !set {
			on = !included
		}
		if !on {
			continue
		}
		if max != 0 && p.v != max+1 {
			return 0, 0, fmt.Errorf("protocol list %q leaves a gap below %s, which Go's TLS cannot express", spec, p.name)
		}
		if min == 0 {
			min = p.v
		}
		max = p.v
	}
	if min == 0 {
		return 0, 0, fmt.Errorf("protocol list %q allows no protocol", spec)
	}
	return min, max, nil
}

// protocolVersion reads a protocol name; SSLv2 and SSLv3 are known
// (version 0: never offered anyway).
func protocolVersion(name string) (uint16, bool) {
	if strings.EqualFold(name, "SSLv2") || strings.EqualFold(name, "SSLv3") {
		return 0, true
	}
	for _, p := range protocolVersions {
		if strings.EqualFold(name, p.name) {
			return p.v, true
		}
	}
	return 0, false
}
