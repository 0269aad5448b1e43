package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/gateway/config"
	"postgate/relay/tlsfacts"
)

// writeCert writes a self-signed certificate for cn, with its key, to a
// chain file.
func writeCert(t *testing.T, path, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedCN runs a handshake and returns the CommonName the server showed.
func servedCN(t *testing.T, st *serverTLS) string {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	go tls.Server(s, st.config).Handshake()
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// The certificate store serves what it last loaded: a certificate
// replaced on disk is served once it is loaded again (what a reload
// does), and a file that no longer loads leaves the previous one in place.
func TestCertStoreReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.pem")
	writeCert(t, path, "first.test")
	cfg, err := config.Parse("main.cf", []byte("smtpd_tls_security_level = may\nsmtpd_tls_chain_files = "+path+"\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	st, err := newServerTLS(cfg, cfg, func(w string) { warnings = append(warnings, w) })
	if err != nil || st.certs == nil || len(warnings) > 0 {
		t.Fatalf("newServerTLS: %v, %v", err, warnings)
	}
	if cn := servedCN(t, st); cn != "first.test" {
		t.Fatalf("served %q", cn)
	}
	writeCert(t, path, "second.test")
	if cn := servedCN(t, st); cn != "first.test" {
		t.Errorf("served %q before the reload", cn)
	}
	if err := st.certs.load(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, st); cn != "second.test" {
		t.Errorf("served %q after the reload, want second.test", cn)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if err := st.certs.load(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("loading garbage: %v, want an error naming the file", err)
	}
	if cn := servedCN(t, st); cn != "second.test" {
		t.Errorf("served %q after a failed reload, want second.test", cn)
	}
}

// The milter macros of a TLS session, and none in clear text; the
// certificate names only for a trusted certificate, as Postfix.
func TestTLSMacros(t *testing.T) {
	s := &session{}
	if _, ok := s.tlsMacro("{tls_version}"); ok {
		t.Error("{tls_version} in clear text")
	}
	s.tls = &tlsSession{Facts: tlsfacts.Facts{Protocol: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", Bits: 256, AlgBits: 256},
		peerPresent: true, peerCN: "client.test", issuerCN: "Test CA"}
	for name, want := range map[string]string{"{tls_version}": "TLSv1.3", "{cipher}": "TLS_AES_256_GCM_SHA384", "{cipher_bits}": "256"} {
		if v, ok := s.tlsMacro(name); !ok || v != want {
			t.Errorf("%s = %q %v, want %q", name, v, ok, want)
		}
	}
	if _, ok := s.tlsMacro("{cert_subject}"); ok {
		t.Error("{cert_subject} for an untrusted certificate")
	}
	s.tls.peerTrusted = true
	if v, ok := s.tlsMacro("{cert_issuer}"); !ok || v != "Test CA" {
		t.Errorf("{cert_issuer} = %q %v", v, ok)
	}
}
