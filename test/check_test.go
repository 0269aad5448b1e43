package test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
