package tlsfacts

import (
	"crypto/sha256"
	"crypto/tls"
	"testing"
)

func TestProtocols(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		min, max uint16
		bad      bool
	}{
		{spec: ">=TLSv1", min: tls.VersionTLS10, max: tls.VersionTLS13},
		{spec: ">=TLSv1.2", min: tls.VersionTLS12, max: tls.VersionTLS13},
		{spec: "<=TLSv1.2", min: tls.VersionTLS10, max: tls.VersionTLS12},
		{spec: "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", min: tls.VersionTLS12, max: tls.VersionTLS13},
		{spec: "!SSLv2:!SSLv3", min: tls.VersionTLS10, max: tls.VersionTLS13},
		{spec: "TLSv1.2 TLSv1.3", min: tls.VersionTLS12, max: tls.VersionTLS13},
		{spec: "", min: tls.VersionTLS10, max: tls.VersionTLS13},
		{spec: "!TLSv1.2", bad: true},      // a hole Go cannot express
		{spec: "TLSv1 TLSv1.2", bad: true}, // the same, by inclusion
		{spec: "<=TLSv1.1 >=TLSv1.2", bad: true},
		{spec: "TLSv9", bad: true},
	} {
		min, max, err := Protocols(tc.spec)
		if tc.bad {
			if err == nil {
				t.Errorf("Protocols(%q) = %x..%x, want an error", tc.spec, min, max)
			}
			continue
		}
		if err != nil || min != tc.min || max != tc.max {
			t.Errorf("Protocols(%q) = %x..%x, %v; want %x..%x", tc.spec, min, max, err, tc.min, tc.max)
		}
	}
}

func TestCipher(t *testing.T) {
	for _, tc := range []struct {
		id         uint16
		name       string
		bits, algs int
	}{
		{tls.TLS_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384", 256, 256},
		{tls.TLS_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256", 128, 128},
		{tls.TLS_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256", 256, 256},
		{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384", 256, 256},
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA", 128, 128},
		{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, "DES-CBC3-SHA", 112, 168},
	} {
		name, bits, algs := Cipher(tc.id)
		if name != tc.name || bits != tc.bits || algs != tc.algs {
			t.Errorf("Cipher(%#x) = %s (%d/%d), want %s (%d/%d)", tc.id, name, bits, algs, tc.name, tc.bits, tc.algs)
		}
	}
}

func TestFingerprint(t *testing.T) {
	if got, want := Fingerprint(sha256.New, []byte("abc")), "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"; got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
	if _, err := Digest("sha3"); err == nil {
		t.Error("Digest(sha3) accepted")
	}
}

// Protocol lists come from main.cf and policy tables: any text gives a
// range within what Go offers, or an error.
func FuzzProtocols(f *testing.F) {
	for _, s := range []string{">=TLSv1.2", "!SSLv2, !SSLv3", "TLSv1 TLSv1.2", "<=TLSv1.1 >=TLSv1.2", "", "!TLSv1.3:TLSv1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		min, max, err := Protocols(spec)
		if err == nil && (min < tls.VersionTLS10 || max > tls.VersionTLS13 || min > max) {
			t.Errorf("Protocols(%q) = %x..%x", spec, min, max)
		}
	})
}
