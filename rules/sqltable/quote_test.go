package sqltable

import "testing"

// Quoting keeps an attacker's text inside the literal for each server's
// rules (the injection test against real servers is in ../../test).
func TestQuote(t *testing.T) {
	for _, c := range []struct {
		name, in, pg, my string
	}{
		{"plain", "user@example.com", "user@example.com", "user@example.com"},
		{"quote", "x'; DROP TABLE t; --", "x''; DROP TABLE t; --", "x''; DROP TABLE t; --"},
		{"backslash then quote", `x\'`, `x\''`, `x\\''`},
		{"double quote", `a"b`, `a"b`, `a\"b`},
		{"controls", "a\nb\rc\x1a", "a\nb\rc\x1a", `a\nb\rc\Z`},
		{"utf-8", "josé@exemple.fr", "josé@exemple.fr", "josé@exemple.fr"},
	} {
		pg, err := quotePgsql(c.in)
		if err != nil || pg != c.pg {
			t.Errorf("%s: quotePgsql(%q) = %q, %v; want %q", c.name, c.in, pg, err, c.pg)
		}
		my, err := quoteMysql(c.in)
		if err != nil || my != c.my {
			t.Errorf("%s: quoteMysql(%q) = %q, %v; want %q", c.name, c.in, my, err, c.my)
		}
	}
	for _, bad := range []string{"a\x00b", "a\xffb"} {
		if _, err := quotePgsql(bad); err == nil {
			t.Errorf("quotePgsql(%q): no error", bad)
		}
		if _, err := quoteMysql(bad); err == nil {
			t.Errorf("quoteMysql(%q): no error", bad)
		}
	}
}
