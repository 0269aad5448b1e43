package sqltable

import "testing"

// The expansions of db_common_expand (Postfix's db_common.c): which keys
// are skipped, and what each % sequence becomes.
func TestExpandQuery(t *testing.T) {
	for _, c := range []struct {
		name, query, key, want string
		skip                   bool
	}{
		{name: "whole key", query: "k='%s'", key: "user@example.com", want: "k='user@example.com'"},
		{name: "local part", query: "u='%u'", key: "user@example.com", want: "u='user'"},
		{name: "local part of a bare name", query: "u='%u'", key: "user", want: "u='user'"},
		{name: "domain", query: "d='%d'", key: "user@example.com", want: "d='example.com'"},
		{name: "domain of a bare name skips", query: "d='%d'", key: "example.com", skip: true},
		{name: "domain empty skips", query: "d='%d'", key: "user@", skip: true},
		{name: "user empty skips", query: "u='%u'", key: "@example.com", skip: true},
		{name: "%s takes @domain", query: "k='%s'", key: "@example.com", want: "k='@example.com'"},
		{name: "upper case in a query", query: "%S %U %D", key: "a@b.c", want: "a@b.c a b.c"},
		{name: "labels from the right", query: "%1 %2 %3", key: "u@mail.example.com", want: "com example mail"},
		{name: "too few labels skip", query: "%3", key: "u@example.com", skip: true},
		{name: "empty labels dropped as argv_split does", query: "%1 %2", key: "u@example..com.", want: "com example"},
		{name: "last @ splits", query: "%u|%d", key: `"a@b"@c.d`, want: `"a@b"|c.d`},
		{name: "percent", query: "LIKE '100%%' %s", key: "x", want: "LIKE '100%' x"},
		{name: "quoted", query: "k='%s' u='%u'", key: "o'neil@x.y", want: "k='o''neil@x.y' u='o''neil'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tm, err := parseTemplates(c.query, "%s")
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := tm.expandQuery(c.key, quotePgsql)
			if err != nil {
				t.Fatal(err)
			}
			if ok == c.skip || got != c.want {
				t.Errorf("expandQuery(%q) with %q = %q, %v; want %q, skip %v", c.key, c.query, got, ok, c.want, c.skip)
			}
		})
	}
}

func TestExpandResult(t *testing.T) {
	for _, c := range []struct {
		name, query, result, value, key, want string
		skip                                  bool
	}{
		{name: "default", query: "%s", result: "%s", value: "a@b.c", key: "k@x.y", want: "a@b.c"},
		{name: "value parts", query: "%s", result: "%u at %d", value: "a@b.c", key: "k", want: "a at b.c"},
		{name: "value without domain skipped", query: "%s", result: "%d", value: "abc", key: "k", skip: true},
		{name: "key parts", query: "%s", result: "smtp:[%D] %U %S", value: "v", key: "k@x.y", want: "smtp:[x.y] k k@x.y"},
		{name: "key labels", query: "%2", result: "%1/%2 %s", value: "v", key: "k@x.y", want: "y/x v"},
		{name: "percent", query: "%s", result: "%s 50%%", value: "v", key: "k", want: "v 50%"},
		{name: "no quoting in results", query: "%s", result: "%s", value: "o'neil", key: "k", want: "o'neil"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tm, err := parseTemplates(c.query, c.result)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := tm.expandResult(c.value, c.key)
			if ok == c.skip || got != c.want {
				t.Errorf("expandResult(%q, %q) with %q = %q, %v; want %q, skip %v", c.value, c.key, c.result, got, ok, c.want, c.skip)
			}
		})
	}
}

func TestBadTemplates(t *testing.T) {
	for _, c := range [][2]string{{"%x", "%s"}, {"%s", "%"}, {"a%0", "%s"}, {"%s", "%q"}} {
		if _, err := parseTemplates(c[0], c[1]); err == nil {
			t.Errorf("query %q result %q: no error", c[0], c[1])
		}
	}
}

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
