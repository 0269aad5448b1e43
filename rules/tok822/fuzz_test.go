package tok822

import (
	"strings"
	"testing"
)

// FuzzParse checks that any text parses into a well-linked tree, that a
// token limit reads a prefix of the tokens, and that the tree writes out
// in both forms.
func FuzzParse(f *testing.F) {
	for _, tc := range parseTests {
		f.Add(tc.text, 3)
	}
	f.Add(` "Bloggs, Joe" <joe@x.test> (c (d)), team: a, b;`, 0)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if i := strings.IndexByte(text, 0); i >= 0 {
			text = text[:i] // callers give C strings
		}
		limit %= 50
		tree := Parse(text, limit)
		checkLinks(t, tree, nil)
		Internalize(nil, tree)
		Externalize(nil, tree, Line|Truncate, func(string) {})

		some, _ := Scan(text, limit)
		all, _ := Scan(text, 0)
		n := 0
		for tp, full := some, all; tp != nil; tp, full = tp.Next, full.Next {
			if full == nil || tp.Type != full.Type || tp.Text != full.Text {
				t.Fatalf("Scan(%q, %d) is not a prefix of the whole scan at token %d", text, limit, n)
			}
			n++
		}
		if limit > 0 && n > limit {
			t.Fatalf("Scan(%q, %d) read %d tokens", text, limit, n)
		}
	})
}
