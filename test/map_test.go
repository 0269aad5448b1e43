package test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"postgate/test/harness"
)

// TestMapMatchesPostmap: `postgate map -q - TABLE` and Debian's
// `postmap -q - TABLE` print the same over one key corpus, for every table
// type both read from a file or inline text; `map -s` lists as `postmap -s`.
func TestMapMatchesPostmap(t *testing.T) {
	t.Parallel()
	postmap := harness.Need(t, "postmap", "postfix")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("main.cf", "")
	access := write("access", "example.com OK\nUser@Example.COM  REJECT no\n\"quoted key\" x\n10.1.2 DUNNO\n# comment\nlong value\n  continued\n")
	// hash: Postfix reads access.db, postgate the source next to it.
	if out, err := exec.Command(postmap, "-c", dir, "hash:"+access).CombinedOutput(); err != nil {
		t.Fatalf("postmap hash: %v\n%s", err, out)
	}
	cidr := write("cidr", "10.0.0.0/8 ten\n!192.168.0.0/16 public\nif 172.16.0.0/12\n172.16.1.0/24 one\nendif\n2001:db8::/32 doc\n")
	re := write("regexp", "/^(.*)@example\\.com$/ user $1\nif /^10\\./\n/\\.1$/ ends-one\nendif\n!/@/ no-at\n")
	pcre := write("pcre", "/^(?!user)(\\w+)@example\\.com$/ other $1\n/^(\\d+)\\.\\1\\./ repeated $1\n/^[a-z]+$/i word\n")
	keys := []string{"example.com", "EXAMPLE.COM", "user@example.com", "User@Example.COM", "quoted key", "\"quoted key\"",
		"10.1.2", "10.1.2.3", "10.0.0.1", "long", "172.16.1.9", "172.17.0.1", "192.168.1.1", "8.8.8.8", "2001:db8::5",
		"x@y.z", "nobody", "unknown.test"}
	input := strings.Join(keys, "\n") + "\n"
	for _, spec := range []string{"texthash:" + access, "hash:" + access, "cidr:" + cidr, "regexp:" + re, "pcre:" + pcre,
		"inline:{ example.com=OK, {user@example.com = REJECT no} }", "static:{ fixed value }",
		"unionmap:{cidr:" + cidr + ", regexp:" + re + ", inline:{10.0.0.1=x}}",
		"pipemap:{texthash:" + access + ", inline:{ok=accepted, dunno=maybe}}"} {
		want := run(t, input, postmap, "-c", dir, "-q", "-", spec)
		got := run(t, input, harness.Binary(t), "map", "-q", "-", spec)
		if strings.Count(want, "\n") < 2 {
			t.Errorf("%s: postmap found almost nothing, the corpus tests little:\n%s", spec, want)
		}
		if got != want {
			t.Errorf("%s:\npostgate map -q -:\n%s\npostmap -q -:\n%s", spec, got, want)
		}
	}
	for _, spec := range []string{"texthash:" + access, "inline:{ b=2, A=1 }"} {
		if got, want := run(t, "", harness.Binary(t), "map", "-s", spec), run(t, "", postmap, "-c", dir, "-s", spec); got != sortLines(want) {
			t.Errorf("%s: map -s:\n%s\npostmap -s (sorted):\n%s", spec, got, sortLines(want))
		}
	}
	// One key, several tables: the first that has it; exit 1 when none has.
	if got := run(t, "", harness.Binary(t), "map", "-q", "10.9.9.9", "texthash:"+access, "cidr:"+cidr); got != "ten\n" {
		t.Errorf("map -q over two tables: %q", got)
	}
	cmd := exec.Command(harness.Binary(t), "map", "-q", "nothing.test", "cidr:"+cidr)
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("map -q of a missing key: %v, want exit status 1", err)
	}
}

// run runs a command with stdin and returns its standard output; a
// non-zero exit status is fine (nothing found).
func run(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errOut.String())
	}
	return out.String()
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestMapQueryPCRE runs `postgate map -q KEY pcre:FILE` as an admin checks
// a table with postmap -q: the value and exit 0 when a rule matches, exit 1
// when none does, exit 1 with the file and line when the table is broken (postmap: fatal).
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
		{"x", "pcre:" + bad, "", "pcre map " + bad + ", line 2: error in regex at offset 0: lookbehind assertion is not fixed length", 1},
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
