package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary main.cf bytes to Parse: it must not panic, and what
// NonDefault prints for a configuration that loads must load again as the same
// settings.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/main.cf")
	for _, path := range seeds {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"a = ${b?{${c:{$d}}}:{e}}\nb = $a\n",
		"x = ${{$y} <level {2} ? {a} : {b}}\ny = 1.2.3\n",
		"  lead\n# c\n\tmore\nz = 1 \\\n",
		"smtpd_restriction_classes = $k\nk = a b\na = ldap:q\nq_server_host = h\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("/f/main.cf", data, "", nil)
		if err != nil {
			return
		}
		lines := c.NonDefault()
		again, err := Parse("/f/main.cf", []byte(strings.Join(lines, "\n")+"\n"), "", nil)
		if err != nil {
			// A value may mean something else once its whitespace is squeezed
			// (postconf -n has the same property); only the syntax must hold.
			for _, d := range err.(*Error).Diags {
				if !d.Warning && d.Param == "" {
					t.Fatalf("NonDefault output does not re-parse: %s\n%s", d, strings.Join(lines, "\n"))
				}
			}
			return
		}
		for _, line := range lines {
			name, value, _ := strings.Cut(line, " =")
			got, set := again.Raw(name)
			if !set || got != strings.TrimFunc(value, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) {
				t.Fatalf("%q re-parses as %q (set %v)", line, got, set)
			}
		}
	})
}

// FuzzParseMaster feeds arbitrary master.cf bytes to Parse: it must not panic.
func FuzzParseMaster(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/master.cf")
	for _, path := range seeds {
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("/f/main.cf", []byte("myhostname = f.example\n"), "/f/master.cf", data)
		if err != nil {
			return
		}
		for _, s := range c.Services() {
			_ = c.ForService(s).Get("smtpd_banner")
		}
	})
}
