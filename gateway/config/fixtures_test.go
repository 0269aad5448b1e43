package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expect files of testdata/bad and testdata/warn")

// TestBadFixtures loads each testdata/bad/NAME directory, which must fail, and
// compares every diagnostic (warnings included) with NAME/expect.
func TestBadFixtures(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/bad/*")
	if len(dirs) < 12 {
		t.Fatalf("%d bad fixtures, want at least 12", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := Load(dir)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load(%s) = %v, want *Error", dir, err)
			}
			checkExpect(t, dir, diagStrings(e.Diags))
			if strings.Contains(e.Error(), "warning:") {
				t.Errorf("Error() lists warnings:\n%s", e.Error())
			}
		})
	}
}

// TestWarningFixtures loads each testdata/warn/NAME directory, which must load,
// and compares its diagnostics with NAME/expect.
func TestWarningFixtures(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/warn/*")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, err := Load(dir)
			if err != nil {
				t.Fatalf("Load(%s): %v", dir, err)
			}
			got := diagStrings(c.Diagnostics())
			for _, d := range got {
				if !strings.HasPrefix(d, "warning: ") {
					t.Errorf("not a warning: %s", d)
				}
			}
			checkExpect(t, dir, got)
		})
	}
}

func checkExpect(t *testing.T, dir string, got []string) {
	t.Helper()
	path := filepath.Join(dir, "expect")
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("diagnostics of %s:\n%s\nwant (%s):\n%s", dir, text, path, want)
	}
}
