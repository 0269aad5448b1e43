package rules

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// postmapPath finds Postfix's postmap(1), the oracle for table semantics.
// A missing oracle is a failure: `make test` installs package postfix.
func postmapPath(t *testing.T) (postmap, configDir string) {
	t.Helper()
	p, err := exec.LookPath("postmap")
	if err != nil {
		if p, err = exec.LookPath("/usr/sbin/postmap"); err != nil {
			t.Fatal("postmap(1) not found: `make test` installs Debian package postfix")
		}
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.cf"), "")
	return p, dir
}

const cidrFile = `# comment
192.168.1.1          exact
192.168.0.0/16       net16
[10.0.0.0]/8         bracket8
[172.16.0.0/12]      bracket12
2001:db8::1          v6exact
2001:db8::/32        v6net
::ffff:0:0/96        mapped
!127.0.0.0/8         not-loopback
  continued
IF 100.64.0.0/10
100.64.1.0/24        inside
if !100.64.2.0/24
100.64.0.0/16        nested
endif
endif
!!0.0.0.0/0          any v4 at all
`

var cidrKeys = []string{
	"192.168.1.1", "192.168.2.3", "[192.168.1.1]", "10.1.2.3", "172.20.0.1", "2001:db8::1",
	"2001:DB8:0::2", "::ffff:1.2.3.4", "127.0.0.1", "100.64.1.5", "100.64.2.5", "100.64.3.5",
	"100.65.0.1", "fe80::1%eth0", "010.1.2.3", "example.com", "1.2.3", "::1", "2001:db8::1.2.3.4",
	"1.2.3.4/32", "::", "0.0.0.0", "255.255.255.255", "1.2.3.4.5", "1::2::3",
}

// TestCIDRMatchesPostmap asks the real Postfix: every key of the corpus
// through postmap -q - cidr:FILE and through postgate's table.
func TestCIDRMatchesPostmap(t *testing.T) {
	postmap, conf := postmapPath(t)
	path := filepath.Join(t.TempDir(), "cidr")
	writeFile(t, path, cidrFile)
	cmd := exec.Command(postmap, "-c", conf, "-q", "-", "cidr:"+path)
	cmd.Stdin = strings.NewReader(strings.Join(cidrKeys, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("postmap: %v", err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		want[k] = v
	}
	if len(want) < 10 {
		t.Fatalf("postmap found only %d keys:\n%s", len(want), out)
	}
	for _, spec := range []string{"cidr:" + path, "proxy:cidr:" + path} {
		tb, err := Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		if IsFixedString(tb) {
			t.Errorf("%s is a fixed-string table", spec)
		}
		for _, k := range cidrKeys {
			v, ok := lookup(t, tb, k)
			if wv, wok := want[k]; v != wv || ok != wok {
				t.Errorf("Lookup(%q) = %q, %v; postmap says %q, %v", k, v, ok, wv, wok)
			}
		}
	}
}

// TestCIDRLoadErrors: where postmap warns "skipping this rule", postgate
// refuses the table with the same text, file and line.
func TestCIDRLoadErrors(t *testing.T) {
	postmap, conf := postmapPath(t)
	warning := regexp.MustCompile(`warning: (cidr map [^\n]*?)(: skipping this rule)?\n`)
	for _, text := range []string{
		"1.2.3.4/33 X\n",
		"1.2.3.4/x X\n",
		"1.2.3.4/24 X\n",
		"2001:db8::1/32 X\n",
		"1.2.3 X\n",
		"1.2.3.4/ X\n",
		"[1.2.3.4 X\n",
		"[1.2.3.4]x X\n",
		"1.2.3.4\n",
		"10.0.0.0/8 ok\n!\n",
		"if\nendif\n",
		"endif\n",
		"if 10.0.0.0/8\nendif x\n",
		"a.b.c.d/8 X\n",
		"ok 1.2.3.4\n",
		"if 10.0.0.0/8\n10.1.0.0/16 X\n",
		"2001:db8:::1 X\n",
	} {
		path := filepath.Join(t.TempDir(), "cidr")
		writeFile(t, path, text)
		cmd := exec.Command(postmap, "-c", conf, "-q", "9.9.9.9", "cidr:"+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		m := warning.FindStringSubmatch(stderr.String())
		if m == nil {
			t.Errorf("%q: postmap gave no warning: %s", text, stderr.String())
			continue
		}
		_, err := Open("cidr:" + path)
		if err == nil || err.Error() != m[1] {
			t.Errorf("%q: Open error = %v\npostmap warns: %s", text, err, m[1])
		}
	}
}

func TestCIDRInline(t *testing.T) {
	tb, err := Open("cidr:{ {10.0.0.0/8 ten}, {!192.168.0.0/16 { not private }} }")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"10.1.1.1": "ten", "8.8.8.8": "{ not private }", "192.168.1.1": ""} {
		if v, _ := lookup(t, tb, key); v != want {
			t.Errorf("Lookup(%s) = %q, want %q", key, v, want)
		}
	}
	if _, err := Open("cidr:{ {10.0.0.0/33 X} }"); err == nil || !strings.Contains(err.Error(), "line 1: bad mask length") {
		t.Errorf("bad inline rule: %v", err)
	}
}

// TestCIDRReload: an edited or replaced file is served without a restart;
// a broken edit keeps the previous rules, with one warning.
func TestCIDRReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cidr")
	writeFile(t, path, "10.0.0.0/8 old\n")
	var warns []string
	tb, err := OpenWith("cidr:"+path, OpenOptions{Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	ft := tb.(*cidrTable).src.(*fileTable[[]cidrRule])
	ft.interval = 0
	ft.nextCheck.Store(0)
	writeFile(t, path, "10.0.0.0/8 new-longer\n") // in place, same second
	if v, _ := lookup(t, tb, "10.1.1.1"); v != "new-longer" {
		t.Errorf("after an in-place edit: %q", v)
	}
	tmp := path + ".tmp"
	writeFile(t, tmp, "10.0.0.0/8 renamed\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if v, _ := lookup(t, tb, "10.1.1.1"); v != "renamed" {
		t.Errorf("after a rename: %q", v)
	}
	future := time.Now().Add(time.Minute)
	writeFile(t, path, "10.0.0.0/33 broken\n")
	os.Chtimes(path, future, future)
	if v, _ := lookup(t, tb, "10.1.1.1"); v != "renamed" {
		t.Errorf("after a broken edit: %q, want the previous rules", v)
	}
	lookup(t, tb, "10.1.1.1")
	if len(warns) != 1 || !strings.Contains(warns[0], "line 1: bad mask length") || !strings.Contains(warns[0], "keeping the previous contents") {
		t.Errorf("warnings: %q", warns)
	}
}
