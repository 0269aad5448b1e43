package rules

import (
	"context"
	"strings"
	"testing"
)

// FuzzRegexpTable loads admin-written table text and looks a key up in it.
// Seeds are in testdata/fuzz/FuzzRegexpTable. Properties: loading never
// panics, every load error names the table and line (or, for the inline
// form, the table type), and a loaded table answers every key without
// error, the same way twice and the same way without prefilters.
func FuzzRegexpTable(f *testing.F) {
	f.Fuzz(func(t *testing.T, text, key string) {
		rules, err := parsePatternTable(regexpDialect, "fuzz", text, OpenOptions{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "regexp map fuzz, line ") {
				t.Fatalf("load error without table and line: %v", err)
			}
		} else {
			checkSameLookup(t, regexpDialect, rules, key)
			tb := &regexpTable{dialect: regexpDialect, name: "fuzz", src: staticRules[regexpRule](rules)}
			v1, ok1, err1 := tb.Lookup(context.Background(), key)
			v2, ok2, err2 := tb.Lookup(context.Background(), key)
			if err1 != nil || err2 != nil {
				t.Fatalf("lookup error: %v, %v", err1, err2)
			}
			if v1 != v2 || ok1 != ok2 {
				t.Fatalf("two lookups differ: %q, %v and %q, %v", v1, ok1, v2, ok2)
			}
		}
		if got := fromMatchable(toMatchable(key)); got != key {
			t.Fatalf("matchable form does not round-trip: %q -> %q", key, got)
		}
		if _, err := openRegexp("regexp", "{"+text+"}", OpenOptions{}); err != nil && !strings.HasPrefix(err.Error(), "regexp map") {
			t.Fatalf("inline load error without the table: %v", err)
		}
	})
}
