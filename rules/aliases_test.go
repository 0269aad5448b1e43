package rules

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAliasesMatchPostalias: which names an aliases(5) file defines, and
// their plain values, as the real postalias builds them.
func TestAliasesMatchPostalias(t *testing.T) {
	postmap, conf := postmapPath(t)
	postalias := filepath.Join(filepath.Dir(postmap), "postalias")
	path := filepath.Join(t.TempDir(), "aliases")
	writeFile(t, path, "# c\npostmaster:    root\nAbuse: \"quoted, value\", other\n   continued\n\"Odd Name\": x\nnocolon line\nempty:\ndup: a\ndup: b\nMAILER-DAEMON:postmaster\n")
	if out, err := exec.Command(postalias, "-c", conf, path).CombinedOutput(); err != nil {
		t.Fatalf("postalias: %v\n%s", err, out)
	}
	var warns []string
	tb, err := OpenWith("hash:"+path, OpenOptions{Aliases: true, Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"postmaster", "abuse", "odd name", "\"odd name\"", "empty", "dup", "nocolon", "mailer-daemon", "Postmaster"} {
		out, err := exec.Command(postalias, "-c", conf, "-q", key, "hash:"+path).Output()
		want, wantFound := strings.TrimSuffix(string(out), "\n"), err == nil
		got, found := lookup(t, tb, key)
		if found != wantFound || (found && !strings.Contains(want, "\"") && got != want) {
			t.Errorf("%q: postgate %q, %v; postalias %q, %v", key, got, found, want, wantFound)
		}
	}
	if len(warns) != 3 {
		t.Errorf("warnings %q, want postalias's three (two lines without a pair, one duplicate)", warns)
	}
}
