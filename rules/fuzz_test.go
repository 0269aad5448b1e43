package rules

import (
	"context"
	"strings"
	"testing"
)

func FuzzInline(f *testing.F) {
	for _, s := range []string{"{ a=b, {c = d e} }", "{}", "{a", "{a=b}}", "{{}}", "{ {=} }", "{ a=b, {c=d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := openInline("inline", s, OpenOptions{})
		if err != nil {
			return
		}
		if _, _, err := tb.Lookup(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzStatic(f *testing.F) {
	for _, s := range []string{"x", "{ a b }", "{a}b", "{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = openStatic("static", s, OpenOptions{})
	})
}

func FuzzTexthash(f *testing.F) {
	for _, s := range []string{"a b\n", "# c\n  x\n", "\"a b\" c\n", "\"a\\\"\n", "k\n", " a b\n", "a b\r\n  c\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseTexthash("/f", s, OpenOptions{Warn: func(string) {}})
		if err != nil {
			return
		}
		for k, v := range m {
			if k == "" || v == "" {
				t.Fatalf("empty key or value: %q=%q", k, v)
			}
		}
	})
}

func FuzzSplitList(f *testing.F) {
	for _, s := range []string{"a, b {c, d} e", "}{", "{{{", "x:{a=b, c}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, item := range SplitList(s) {
			if item == "" {
				t.Fatalf("empty item from %q", s)
			}
		}
	})
}

// FuzzCIDRTable: any table text either loads or fails with an error that
// names the table and line; a loaded table answers any key.
func FuzzCIDRTable(f *testing.F) {
	for _, s := range []string{cidrFile, "1.2.3.4/33 X\n", "[::1]/128 a\nif !::/0\nendif\n", "if 1.0.0.0/8\n", "endif\n", "!\n"} {
		f.Add(s, "1.2.3.4")
	}
	f.Fuzz(func(t *testing.T, text, key string) {
		rules, err := parseCIDRTable("/f", text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cidr map /f, line ") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		tb := &cidrTable{spec: "cidr:/f", src: staticRules[cidrRule](rules)}
		if _, _, err := tb.Lookup(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAliases: any aliases(5) text loads; every name is lowercased and
// has a value.
func FuzzAliases(f *testing.F) {
	for _, s := range []string{"postmaster: root\n", "\"a b\": c\n  d\n", "x\n", "a:\n", ":b\n", "\"unclosed: x\n", "A: b, c\nA: d\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseAliases("/f", s, OpenOptions{Warn: func(string) {}})
		if err != nil {
			return // a logical-line error, as texthash's
		}
		for k, v := range m {
			if k != strings.ToLower(k) || v == "" {
				t.Fatalf("name %q value %q", k, v)
			}
		}
	})
}
