package dkim

import (
	"context"
	"strings"
	"testing"
)

// FuzzVerify: any message, signed or not, verifies without a panic, with
// at most MaxSignatures results, each one of the four values.
func FuzzVerify(f *testing.F) {
	rsaFile, _, rsaTXT, _ := keyFiles(f)
	var keys Keys
	signer, err := keys.Signer(rsaFile)
	if err != nil {
		f.Fatal(err)
	}
	sig, err := Sign(strings.NewReader(message), Key{Domain: "example.com", Selector: "r"}, signer, []string{"From", "Subject"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig + message)
	f.Add(message)
	f.Add("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=r; h=From; bh=; b=\r\n\tx\r\n" + message)
	f.Add(strings.Repeat("DKIM-Signature: v=1; d=x; s=y\r\n", 7) + "\r\n")
	z := zone{"r._domainkey.example.com": rsaTXT}
	f.Fuzz(func(t *testing.T, msg string) {
		res, err := Verify(context.Background(), z, strings.NewReader(msg))
		if err != nil {
			return
		}
		if len(res) > MaxSignatures {
			t.Fatalf("%d results", len(res))
		}
		for _, r := range res {
			switch r.Value {
			case Pass, Fail, TempError, PermError:
			default:
				t.Fatalf("result %q", r.Value)
			}
		}
	})
}
