package dkim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postgate/restrictions/internal/txtzone"
)

type zone = txtzone.Zone

const message = "From: A <a@example.com>\r\nTo: b@example.net\r\nSubject: hello\r\nSubject: twice\r\n\r\nbody\r\n"

// keyFiles writes an RSA key as PKCS #1 and an Ed25519 key as PKCS #8
// and returns their files and TXT records.
func keyFiles(t testing.TB) (rsaFile, edFile, rsaTXT, edTXT string) {
	t.Helper()
	dir := t.TempDir()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, ek, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile, edFile = filepath.Join(dir, "rsa.key"), filepath.Join(dir, "ed.pem")
	os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), 0o600)
	os.WriteFile(edFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	rpub, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	return rsaFile, edFile, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rpub),
		"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

func TestSignVerify(t *testing.T) {
	rsaFile, edFile, rsaTXT, edTXT := keyFiles(t)
	var keys Keys
	signed := message
	for _, k := range []struct{ entry, file string }{
		{"example.com:r:" + rsaFile, rsaFile}, {"Example.COM:e:" + edFile, edFile},
	} {
		key, err := ParseKey(k.entry)
		if err != nil || key.File != k.file || key.Domain != "example.com" {
			t.Fatalf("ParseKey(%q) = %+v, %v", k.entry, key, err)
		}
		signer, err := keys.Signer(key.File)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"From", "To", "Subject", "Subject"}
		sig, err := Sign(strings.NewReader(signed), key, signer, SignedHeaders(names, []string{"from", "Subject", "Reply-To"}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sig, "h=from:Subject:Subject;") {
			t.Errorf("signed fields: %s", sig)
		}
		signed = sig + signed
	}
	z := zone{"r._domainkey.example.com": rsaTXT, "e._domainkey.example.com": edTXT}
	res, err := Verify(context.Background(), z, strings.NewReader(signed))
	if err != nil || len(res) != 2 {
		t.Fatalf("Verify: %+v, %v", res, err)
	}
	// The last signature added is the first field.
	if r := res[0]; r.Value != Pass || r.Selector != "e" || r.Algorithm != "ed25519-sha256" || r.Domain != "example.com" || len(r.B) != 8 {
		t.Errorf("ed25519: %+v", r)
	}
	if r := res[1]; r.Value != Pass || r.Selector != "r" || r.Algorithm != "rsa-sha256" {
		t.Errorf("rsa: %+v", r)
	}

	changed := strings.Replace(signed, "\r\nbody\r\n", "\r\nbody!\r\n", 1)
	res, _ = Verify(context.Background(), z, strings.NewReader(changed))
	for _, r := range res {
		if r.Value != Fail || r.Reason != "body hash did not verify" {
			t.Errorf("changed body: %+v", r)
		}
	}
	res, _ = Verify(context.Background(), zone{"r._domainkey.example.com": txtzone.Temp}, strings.NewReader(signed))
	if res[0].Value != PermError || res[1].Value != TempError {
		t.Errorf("no key, temporary failure: %+v", res)
	}
	if res, err := Verify(context.Background(), z, strings.NewReader(message)); err != nil || len(res) != 0 {
		t.Errorf("unsigned: %+v, %v", res, err)
	}
}

func TestKeyErrors(t *testing.T) {
	for _, s := range []string{"example.com:sel", "example.com::/k", ":s:/k", ""} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "cert.pem")
	os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600)
	var keys Keys
	if _, err := keys.Signer(bad); err == nil || !strings.Contains(err.Error(), `cert.pem: a PEM "CERTIFICATE" block`) {
		t.Errorf("certificate as key: %v", err)
	}
	if _, err := keys.Signer(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key file accepted")
	}
}

// BenchmarkSignVerify: signing and verifying a 2 KiB message with a 2048-bit
// RSA key and with Ed25519 (key lookups answered from memory).
func BenchmarkSignVerify(b *testing.B) {
	rsaFile, edFile, rsaTXT, edTXT := keyFiles(b)
	msg := message + strings.Repeat("a line of body text, about sixty characters long......\r\n", 36)
	z := zone{"r._domainkey.example.com": rsaTXT, "e._domainkey.example.com": edTXT}
	var keys Keys
	for _, k := range []struct {
		name string
		key  Key
	}{{"rsa", Key{"example.com", "r", rsaFile}}, {"ed25519", Key{"example.com", "e", edFile}}} {
		signer, err := keys.Signer(k.key.File)
		if err != nil {
			b.Fatal(err)
		}
		var sig string
		b.Run("sign/"+k.name, func(b *testing.B) {
			for b.Loop() {
				if sig, err = Sign(strings.NewReader(msg), k.key, signer, []string{"From", "To", "Subject"}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("verify/"+k.name, func(b *testing.B) {
			for b.Loop() {
				if res, err := Verify(context.Background(), z, strings.NewReader(sig+msg)); err != nil || res[0].Value != Pass {
					b.Fatal(res, err)
				}
			}
		})
	}
}
