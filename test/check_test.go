package test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestCheckBadFixtures runs `postgate check` on every bad fixture: the
// config package's (syntax, values, master.cf) and this package's (what
// only compiling the runtime finds: restriction names, table types, relay
// guard). Each must exit 1 and print its expected diagnostics, naming file
// and line, in order.
func TestCheckBadFixtures(t *testing.T) {
	t.Parallel()
	bin := harness.Binary(t)
	var dirs []string
	for _, glob := range []string{"../gateway/config/testdata/bad/*", "testdata/check/*"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, m...)
	}
	n := 0
	for _, dir := range dirs {
		expect, err := os.ReadFile(filepath.Join(dir, "expect"))
		if errors.Is(err, os.ErrNotExist) {
			continue // a valid fixture
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(bin, "check", "-c", abs)
			cmd.Stderr = &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("postgate check: %v, want exit status 1\n%s", err, stderr.String())
			}
			// The config package's expect files name paths relative to its
			// own directory; this package's use DIR.
			want := strings.ReplaceAll(string(expect), "testdata/bad/"+filepath.Base(dir), abs)
			want = strings.ReplaceAll(want, "DIR", abs)
			got := stderr.String()
			pos := 0
			for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
				i := strings.Index(got[pos:], "postgate: "+line+"\n")
				if i < 0 {
					t.Fatalf("stderr lacks (in order) %q:\n%s", "postgate: "+line, got)
				}
				pos += i + len(line)
			}
		})
	}
	if n < 10 {
		t.Errorf("only %d bad fixtures", n)
	}
}

// TestCheckWarnFixtures: warnings (a leading continuation line, unknown and
// not-implemented parameters, ...) are printed and do not fail the check.
func TestCheckWarnFixtures(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob("../gateway/config/testdata/warn/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no warning fixtures: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			expect, err := os.ReadFile(filepath.Join(dir, "expect"))
			if err != nil {
				t.Fatal(err)
			}
			abs, _ := filepath.Abs(dir)
			var stderr bytes.Buffer
			cmd := exec.Command(harness.Binary(t), "check", "-c", abs)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("postgate check: %v\n%s", err, stderr.String())
			}
			want := strings.ReplaceAll(string(expect), "testdata/warn/"+filepath.Base(dir), abs)
			for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
				if !strings.Contains(stderr.String(), "postgate: "+line+"\n") {
					t.Errorf("stderr lacks %q:\n%s", "postgate: "+line, stderr.String())
				}
			}
		})
	}
}

// TestCheckMatchesPostconf: on a valid configuration, `postgate check`
// prints exactly what Debian's `postconf -n` prints for the same files.
func TestCheckMatchesPostconf(t *testing.T) {
	t.Parallel()
	postconf := harness.Need(t, "postconf", "postfix")
	for _, dir := range []string{"testdata/check/valid", "../gateway/config/testdata/good/debian", "../gateway/config/testdata/good/expansion"} {
		if _, err := os.Stat(filepath.Join(dir, "main.cf")); err != nil {
			continue
		}
		abs, _ := filepath.Abs(dir)
		want, err := exec.Command(postconf, "-n", "-c", abs).Output()
		if err != nil {
			t.Fatalf("postconf -n -c %s: %v", abs, err)
		}
		got, err := exec.Command(harness.Binary(t), "check", "-c", abs).Output()
		if err != nil {
			t.Fatalf("postgate check -c %s: %v", abs, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: postgate check prints\n%s\npostconf -n prints\n%s", dir, got, want)
		}
	}
}

// TestTableWarnings: what a table reports without failing (a duplicate key,
// a reload that failed and kept the previous contents) reaches the mail
// log of the daemon and the output of `postgate check`.
func TestTableWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	access := filepath.Join(dir, "access")
	if err := os.WriteFile(access, []byte("bad.test REJECT first\nbad.test REJECT second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cidr := filepath.Join(dir, "clients.cidr")
	if err := os.WriteFile(cidr, []byte("127.0.0.5 REJECT listed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"+
		"smtpd_recipient_restrictions = check_sender_access texthash:"+access+", check_client_access cidr:"+cidr+"\n", "")
	dup := "warning: " + access + ":2: duplicate entry: \"bad.test\""
	if log := p.Log(dup); !strings.Contains(log, dup) {
		t.Errorf("mail log lacks %q:\n%s", dup, log)
	}
	out, _ := exec.Command(harness.Binary(t), "check", "-c", p.Dir).CombinedOutput()
	if !strings.Contains(string(out), "postgate: "+dup) {
		t.Errorf("postgate check output lacks %q:\n%s", dup, out)
	}
	// A broken edit keeps the previous rules in service, with a warning.
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	if code, _ := c.Cmd("RCPT TO:<u@relay.test>"); code != 554 {
		t.Fatalf("listed client: %d, want 554", code)
	}
	future := time.Now().Add(time.Minute)
	if err := os.WriteFile(cidr, []byte("127.0.0.5/33 REJECT broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(cidr, future, future)
	time.Sleep(1100 * time.Millisecond) // the tables look at their files once a second
	if code, _ := c.Cmd("RCPT TO:<u@relay.test>"); code != 554 {
		t.Errorf("after a broken edit: %d, want 554 from the previous rules", code)
	}
	want := "warning: cidr map " + cidr + ", line 1: bad mask length in \"127.0.0.5/33\"; keeping the previous contents of " + cidr
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("mail log lacks %q:\n%s", want, log)
	}
}
