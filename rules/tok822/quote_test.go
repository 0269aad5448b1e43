package tok822

import "testing"

// quote_822_local and unquote_822_local, as used on the way to and from
// the rewriting.
func TestQuoteLocal(t *testing.T) {
	for _, c := range []struct{ internal, external string }{
		{"joe@x", "joe@x"},
		{"a b@x", `"a b"@x`},
		{"a.b.c@x", "a.b.c@x"},
		{".a@x", `".a"@x`},
		{"a.@x", `"a."@x`},
		{"a..b@x", `"a..b"@x`},
		{`a"b\c@x`, `"a\"b\\c"@x`},
		{"a@b@x", `"a@b"@x`},
		{"@r1,@r2:a b@x", `@r1,@r2:"a b"@x`},
		{"j\xc3\xb6e@x", "j\xc3\xb6e@x"},
		{"", `""`},
		{"nodomain", "nodomain"},
	} {
		if got := string(QuoteLocal(nil, c.internal)); got != c.external {
			t.Errorf("QuoteLocal(%q) = %q, want %q", c.internal, got, c.external)
		}
		if got := UnquoteLocal(c.external); got != c.internal {
			t.Errorf("UnquoteLocal(%q) = %q, want %q", c.external, got, c.internal)
		}
	}
	// The text after the last unquoted '@' stays quoted; a trailing
	// backslash goes.
	for in, want := range map[string]string{`"a"@"b"`: `a@"b"`, `a\`: "a", `"a@b"`: "a@b"} {
		if got := UnquoteLocal(in); got != want {
			t.Errorf("UnquoteLocal(%q) = %q, want %q", in, got, want)
		}
	}
}
