package rules

import (
	"context"
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
