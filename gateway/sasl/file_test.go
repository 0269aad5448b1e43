package sasl

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestFile: PLAIN and LOGIN against the password file, a changed file
// read again, and a bad line named by file and line.
func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	os.WriteFile(path, []byte("u:"+string(h)+"\n"), 0o600)
	b, err := Open(Options{Type: "file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	srv := b.NewServer(Session{})
	if st := srv.Start(ctx, "PLAIN", enc("\x00u\x00pw")); st.Status != Done || st.Username != "u" {
		t.Errorf("PLAIN right: %+v", st)
	}
	if st := srv.Start(ctx, "PLAIN", enc("\x00u\x00no")); st.Status != Fail || st.Reason != "authentication failure" {
		t.Errorf("PLAIN wrong: %+v", st)
	}
	if st := srv.Start(ctx, "PLAIN", enc("other\x00u\x00pw")); st.Status != Fail {
		t.Errorf("PLAIN with another authorization identity: %+v", st)
	}
	st := srv.Start(ctx, "LOGIN", "")
	if st.Status != More || st.Challenge != loginUser {
		t.Fatalf("LOGIN start: %+v", st)
	}
	if st = srv.Next(ctx, enc("u")); st.Status != More || st.Challenge != loginPass {
		t.Fatalf("LOGIN user: %+v", st)
	}
	if st = srv.Next(ctx, enc("pw")); st.Status != Done {
		t.Errorf("LOGIN password: %+v", st)
	}
	if st = srv.Start(ctx, "PLAIN", "not base64!"); st.Status != Fail || !strings.Contains(st.Reason, "Invalid base64") {
		t.Errorf("bad base64: %+v", st)
	}

	h2, _ := bcrypt.GenerateFromPassword([]byte("new"), bcrypt.MinCost)
	os.WriteFile(path, []byte("# changed\nu:"+string(h2)+"\n"), 0o600)
	if st := srv.Start(ctx, "PLAIN", enc("\x00u\x00new")); st.Status != Done {
		t.Errorf("after the file changed: %+v", st)
	}

	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("u:"+string(h)+"\nv:plaintext\n"), 0o600)
	if _, err := Open(Options{Type: "file", Path: bad}); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := Open(Options{Type: "cyrus"}); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("cyrus: %v", err)
	}
}
