package dbcommon

import "testing"

// FuzzTemplates: templates are admin input and keys and values remote
// input; templates that parse expand anything without a panic, and "%s"
// inserts the key or value as it is.
func FuzzTemplates(f *testing.F) {
	f.Add("SELECT v FROM t WHERE k='%s' AND d='%d'", "%u@%D %1", "o'neil@a.b.c", "x@y")
	f.Add("%2.%1", "%S", `a\'@x..y.`, "@")
	f.Add("%%%s", "%U%%", "\x1a\n\r\"\\'", "")
	f.Add("%1.%2.%9", "%s", "user@a.b.c", "v")
	f.Fuzz(func(t *testing.T, query, result, key, value string) {
		if tm, err := ParseTemplates(query, result); err == nil {
			tm.ExpandQuery(key, nil)
			tm.ExpandResult(value, key)
		}
		tm, err := ParseTemplates("%s", "%s")
		if err != nil {
			t.Fatal(err)
		}
		if got, ok, _ := tm.ExpandQuery(key, nil); ok != (key != "") || ok && got != key {
			t.Fatalf("%%s expands %q to %q, %v", key, got, ok)
		}
		if got, ok := tm.ExpandResult(value, key); ok != (value != "") || ok && got != value {
			t.Fatalf("result %%s expands %q to %q, %v", value, got, ok)
		}
	})
}
