package rules

import (
	"context"
	"strings"
	"testing"
)

// FuzzPCRETable loads admin-written pcre: table text and looks a key up in
// it. Seeds are in testdata/fuzz/FuzzPCRETable. Properties: loading never
// panics, every load error names the table and line (or, for the inline
// form, the table type), every translated pattern compiles in regexp2 (a
// failure there is a gap in pcreToNET), and a loaded table answers every
// key the same way twice and the same way without prefilters; a lookup
// may fail only on the match timeout or backtracking limit, naming the
// table and line.
func FuzzPCRETable(f *testing.F) {
	f.Fuzz(func(t *testing.T, text, key string) {
		rules, err := parsePatternTable(pcreDialect, "fuzz", text, OpenOptions{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pcre map fuzz, line ") {
				t.Fatalf("load error without table and line: %v", err)
			}
			if strings.Contains(err.Error(), "unsupported construct") {
				t.Fatalf("translation regexp2 cannot compile: %v", err)
			}
		} else {
			checkSameLookup(t, pcreDialect, rules, key)
			tb := &regexpTable{dialect: pcreDialect, name: "fuzz", src: staticRules[regexpRule](rules)}
			v1, ok1, err1 := tb.Lookup(context.Background(), key)
			v2, ok2, err2 := tb.Lookup(context.Background(), key)
			for _, err := range []error{err1, err2} {
				if err != nil && !strings.HasPrefix(err.Error(), "pcre map fuzz, line ") {
					t.Fatalf("lookup error without table and line: %v", err)
				}
			}
			if err1 == nil && err2 == nil && (v1 != v2 || ok1 != ok2) {
				t.Fatalf("two lookups differ: %q, %v and %q, %v", v1, ok1, v2, ok2)
			}
		}
		if _, err := openPCRE("pcre", "{"+text+"}", OpenOptions{}); err != nil && !strings.HasPrefix(err.Error(), "pcre map") {
			t.Fatalf("inline load error without the table: %v", err)
		}
	})
}
