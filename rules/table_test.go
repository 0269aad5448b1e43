package rules

import (
	"context"
	"strings"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"foo:bar", "unsupported dictionary type: foo"},
		{"nocolon", `open dictionary: expecting "type:name" form instead of "nocolon"`},
		{"static:", `open dictionary: expecting "type:name" form instead of "static:"`},
		{"sqlite:/etc/x", "dictionary type sqlite is not implemented yet"},
		{"inline:k=v", `bad syntax: "inline:k=v"; need "inline:{name=value...}"`},
		{"inline:{}", `bad syntax: "inline:{}"; need "inline:{name=value...}"`},
		{"inline:{k1}", `missing '=' after attribute name: "inline:{k1}"; need "inline:{name=value...}"`},
		{"inline:{a=b", `bad syntax: "inline:{a=b"`},
		{"static:{a}b", `bad static:name syntax: syntax error after '}' in "{a}b"`},
		{"static:{a", `bad static:name syntax: missing '}' in "{a"`},
	} {
		t.Run(c.spec, func(t *testing.T) {
			_, err := Open(c.spec)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("Open(%q) error = %v, want %q", c.spec, err, c.want)
			}
		})
	}
}

func TestInline(t *testing.T) {
	tb, err := Open("inline:{ Foo=bar, { k2 = v with spaces } , k3=v3, {a=b,c}, a2=b=c, foo=last }")
	if err != nil {
		t.Fatal(err)
	}
	if !IsFixedString(tb) {
		t.Error("inline is not a fixed-string table")
	}
	for key, want := range map[string]string{
		"foo": "last", "FOO": "last", "k2": "v with spaces", "k3": "v3", "a": "b,c", "a2": "b=c",
	} {
		if v, ok := lookup(t, tb, key); !ok || v != want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", key, v, ok, want)
		}
	}
	if _, ok := lookup(t, tb, "missing"); ok {
		t.Error("missing key found")
	}
}

func TestStatic(t *testing.T) {
	for spec, want := range map[string]string{
		"static:abc":                  "abc",
		"static:{ text with spaces }": "text with spaces",
		"static:{}":                   "",
	} {
		tb, err := Open(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if v, ok := lookup(t, tb, "anything"); !ok || v != want {
			t.Errorf("%s: got %q, %v; want %q", spec, v, ok, want)
		}
	}
}

func TestFailTable(t *testing.T) {
	tb, err := Open("fail:x")
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := tb.Lookup(context.Background(), "k"); err == nil || found {
		t.Errorf("fail: table: found=%v err=%v", found, err)
	}
}

func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{
		"a, b,c  d": {"a", "b", "c", "d"},
		"check_policy_service { inet:h:1, timeout=10s }":     {"check_policy_service", "{ inet:h:1, timeout=10s }"},
		"check_recipient_access inline:{ a=b, c=d }, reject": {"check_recipient_access", "inline:{ a=b, c=d }", "reject"},
		"  ,, ":  nil,
		"a}b, c": {"a}b", "c"},
	} {
		got := SplitList(in)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}
