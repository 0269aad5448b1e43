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

// TestMapQueryPCRE runs `postgate map -q KEY pcre:FILE` as an admin checks
// a table with postmap -q: the value and exit 0 when a rule matches, exit 1
// when none does, exit 2 with the file and line when the table is broken.
func TestMapQueryPCRE(t *testing.T) {
	t.Parallel()
	bin := harness.Binary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "sender_access.pcre")
	bad := filepath.Join(dir, "broken.pcre")
	for path, text := range map[string]string{
		good: "/^friend@(?!my\\.domain).*$/ 550 not from here\n/^(\\w+)@(?:mail\\.)?my\\.domain$/ OK local $1\n",
		bad:  "/a/ ok\n/(?<=a+)b/ X\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		key, spec, stdout, stderr string
		code                      int
	}{
		{"friend@example.com", "pcre:" + good, "550 not from here\n", "", 0},
		{"friend@my.domain", "pcre:" + good, "OK local friend\n", "", 0},
		{"nobody@elsewhere", "pcre:" + good, "", "", 1},
		{"Joe@Mail.My.Domain", "pcre:" + good, "OK local Joe\n", "", 0},
		{"x", "pcre:" + bad, "", "pcre map " + bad + ", line 2: error in regex at offset 0: lookbehind assertion is not fixed length", 2},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "map", "-q", c.key, c.spec)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || stdout.String() != c.stdout || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("postgate map -q %q %s: exit %d, stdout %q, stderr %q; want exit %d, %q, %q",
				c.key, c.spec, code, stdout.String(), stderr.String(), c.code, c.stdout, c.stderr)
		}
	}
}
