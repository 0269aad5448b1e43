package dbcommon

import (
	"strings"
	"testing"
)

// doubleQuotes stands for an SQL driver's quoting.
func doubleQuotes(s string) (string, error) { return strings.ReplaceAll(s, "'", "''"), nil }

// The expansions of db_common_expand (Postfix's db_common.c): which keys
// are skipped, and what each % sequence becomes.
func TestExpandQuery(t *testing.T) {
	for _, c := range []struct {
		name, query, key, want string
		skip                   bool
	}{
		{name: "whole key", query: "k='%s'", key: "user@example.com", want: "k='user@example.com'"},
		{name: "prefix", query: "postfix:%s", key: "a@b.c", want: "postfix:a@b.c"},
		{name: "local part", query: "u='%u'", key: "user@example.com", want: "u='user'"},
		{name: "local part of a bare name", query: "u='%u'", key: "user", want: "u='user'"},
		{name: "domain", query: "d='%d'", key: "user@example.com", want: "d='example.com'"},
		{name: "domain of a bare name skips", query: "d='%d'", key: "example.com", skip: true},
		{name: "domain empty skips", query: "d='%d'", key: "user@", skip: true},
		{name: "user empty skips", query: "u='%u'", key: "@example.com", skip: true},
		{name: "empty key skips", query: "%s", key: "", skip: true},
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
			tm, err := ParseTemplates(c.query, "%s")
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := tm.ExpandQuery(c.key, doubleQuotes)
			if err != nil {
				t.Fatal(err)
			}
			if ok == c.skip || got != c.want {
				t.Errorf("ExpandQuery(%q) with %q = %q, %v; want %q, skip %v", c.key, c.query, got, ok, c.want, c.skip)
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
		{name: "empty value skipped", query: "%s", result: "%s", value: "", key: "k", skip: true},
		{name: "key parts", query: "%s", result: "smtp:[%D] %U %S", value: "v", key: "k@x.y", want: "smtp:[x.y] k k@x.y"},
		{name: "key labels", query: "%2", result: "%1/%2 %s", value: "v", key: "k@x.y", want: "y/x v"},
		{name: "percent", query: "%s", result: "%s 50%%", value: "v", key: "k", want: "v 50%"},
		{name: "no quoting in results", query: "%s", result: "%s", value: "o'neil", key: "k", want: "o'neil"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tm, err := ParseTemplates(c.query, c.result)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := tm.ExpandResult(c.value, c.key)
			if ok == c.skip || got != c.want {
				t.Errorf("ExpandResult(%q, %q) with %q = %q, %v; want %q, skip %v", c.value, c.key, c.result, got, ok, c.want, c.skip)
			}
		})
	}
}

func TestBadTemplates(t *testing.T) {
	for _, c := range []struct{ query, result, err string }{
		{"%x", "%s", `query: invalid template "%x": unknown %x`},
		{"%s", "%", `result_format: invalid template "%": % at the end`},
		{"a%0", "%s", "unknown %0"},
		{"%s", "%q", "result_format: invalid template"},
	} {
		if _, err := ParseTemplates(c.query, c.result); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("query %q result %q: error %v, want %q", c.query, c.result, err, c.err)
		}
	}
}
