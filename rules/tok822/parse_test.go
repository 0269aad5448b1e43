package tok822

import (
	"strings"
	"testing"
)

// dumpTree shows a token list: address nodes as {...}, quoted strings in
// quotes, domain literals in brackets, a group start as ":group", anything
// else as its text.
func dumpTree(list *Token) string {
	var parts []string
	for tp := list; tp != nil; tp = tp.Next {
		switch tp.Type {
		case Address:
			parts = append(parts, "{"+dumpTree(tp.Head)+"}")
		case Atom, Comment:
			parts = append(parts, tp.Text)
		case QuotedString:
			parts = append(parts, `"`+tp.Text+`"`)
		case DomainLiteral:
			parts = append(parts, "["+tp.Text+"]")
		case StartGroup:
			parts = append(parts, ":group")
		default:
			parts = append(parts, string(rune(tp.Type)))
		}
	}
	return strings.Join(parts, " ")
}

// The expected trees and internal forms were checked against Postfix
// 3.7's tok822_parse and tok822_internalize.
var parseTests = []struct {
	name     string
	text     string
	tree     string
	internal string // the whole list internalized
}{
	{"address", "a@b", "{a @ b}", "a@b"},
	{"dots", "a.b@c.d", "{a . b @ c . d}", "a.b@c.d"},
	{"route-addr", "<a@b>", "< {a @ b} >", "<a@b>"},
	{"phrase", "Name <a@b>", "Name < {a @ b} >", "Name <a@b>"},
	{"two-word phrase", "John Doe <a@b>", "John Doe < {a @ b} >", "John Doe <a@b>"},
	{"quoted phrase", `"Doe, John" <a@b>`, `"Doe, John" < {a @ b} >`, "Doe, John <a@b>"},
	{"list", "a@b, c@d", "{a @ b} , {c @ d}", "a@b, c@d"},
	{"missing comma", "a b", "{a} , {b}", "a, b"},
	{"comment moved aside", "a(x)@b", "{a @ b} (x)", "a@b (x)"},
	{"comment after", "a@b (x)", "{a @ b} (x)", "a@b (x)"},
	{"comment in route-addr", "<a(x)@b>", "< {a @ b} (x) >", "<a@b (x)>"},
	{"comments in route-addr keep order", "<(x)a(y)@b>", "< {a @ b} (x) (y) >", "<a@b (x) (y)>"},
	{"group", "g: a, b;", "g :group {a} , {b} ;", "g: a, b;"},
	{"group then address", "g: a; c", "g :group {a} ; , {c}", "g: a;, c"},
	{"quoted atom", `a\ b@c`, `{"a b" @ c}`, "a b@c"},
	{"escaped operator", `a\@b`, `{"a@b"}`, "a@b"},
	{"control byte quotes an atom", "a\x01b", "{\"a\x01b\"}", "a\x01b"},
	{"8-bit stays an atom", "\xc3\xa9", "{\xc3\xa9}", "\xc3\xa9"},
	{"whitespace in quotes becomes space", "\"a\tb\"", `{"a b"}`, "a b"},
	{"domain literal", "a@[1.2.3.4]", "{a @ [1.2.3.4]}", "a@[1.2.3.4]"},
	{"unterminated quote", `"a b`, `{"a b"}`, "a b"},
	{"unterminated comment", "a (b", "{a} (b", "a (b"},
	{"nested comment", "a (b (c) d) e", "{a} , {e} (b (c) d)", "a, e (b (c) d)"},
	{"escape kept in comment", `a (b\) c)`, `{a} (b\) c)`, `a (b\) c)`},
	{"stray operators", "@", "{@}", "@"},
	{"only a comment", "(x)", "(x)", "(x)"},
	{"only a comma", ",", ",", ","},
	{"empty", "", "", ""},
	{"white space", " \t\r\n", "", ""},
	{"routing operators", "a%b!c|d", "{a % b ! c | d}", "a%b!c|d"},
	{"escapes in quotes", "\"a\\\"b\\\tc\"", "{\"a\"b c\"}", "a\"b c"},
	{"escape in domain literal", `a@[1\]2]`, "{a @ [1]2]}", "a@[1]2]"},
	{"escaped tab quotes an atom", "a\\\tb", `{"a b"}`, "a b"},
	{"backslash at the end", `a\`, "{a}", "a"},
	{"two escaped atoms keep their texts", `a\,b c\,d`, `{"a,b"} , {"c,d"}`, "a,b, c,d"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseTests {
		t.Run(tc.name, func(t *testing.T) {
			tree := Parse(tc.text, 0)
			if got := dumpTree(tree); got != tc.tree {
				t.Errorf("Parse(%q) = %s, want %s", tc.text, got, tc.tree)
			}
			if got := string(Internalize(nil, tree)); got != tc.internal {
				t.Errorf("Internalize(Parse(%q, 0)) = %q, want %q", tc.text, got, tc.internal)
			}
			checkLinks(t, tree, nil)
		})
	}
}

// tok822_scan_limit stops after limit tokens; the parse sees only those.
func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		text  string
		limit int
		tree  string
	}{
		{"a, b, c", 3, "{a} , {b}"},
		{"a b c d", 2, "{a} , {b}"},
		{"<a@b> c", 4, "{< a @ b}"}, // no '>': no route-addr
		{"(x) a", 1, "(x)"},
		{"a, b, c", 0, "{a} , {b} , {c}"},
		{"a, b, c", 100, "{a} , {b} , {c}"},
	} {
		tree := Parse(tc.text, tc.limit)
		if got := dumpTree(tree); got != tc.tree {
			t.Errorf("Parse(%q, %d) = %s, want %s", tc.text, tc.limit, got, tc.tree)
		}
		checkLinks(t, tree, nil)
	}
}

// One Arena serves several parses, and a parse whose tokens outgrow a
// block: every tree keeps its own tokens and texts.
func TestArena(t *testing.T) {
	var a Arena
	long := strings.Repeat(`"q\ x"@b, `, 400) // 2,800 tokens in about 4,400 bytes
	trees := []*Token{a.Parse("x@y", 0), a.Parse(long, 0), a.Parse(`<"c\ d"@e>`, 0)}
	first, last := a.Scan("f g", 0)
	want := []string{"x@y", strings.Repeat("q x@b, ", 399) + "q x@b,", "<c d@e>"}
	for i, tree := range trees {
		checkLinks(t, tree, nil)
		if got := string(Internalize(nil, tree)); got != want[i] {
			t.Errorf("tree %d: %q, want %q", i, got, want[i])
		}
	}
	if first.Text != "f" || last.Text != "g" || first.Next != last || last.Prev != first {
		t.Errorf("Scan through the arena: %s", dumpTree(first))
	}
}

// checkLinks verifies the list invariants: prev and next agree, owners
// point at the enclosing address node, head and tail bound each sublist.
func checkLinks(t *testing.T, list, owner *Token) {
	t.Helper()
	var prev *Token
	for tp := list; tp != nil; tp = tp.Next {
		if tp.Prev != prev {
			t.Fatalf("broken prev link at %q", dumpTree(tp))
		}
		if tp.Owner != owner {
			t.Fatalf("wrong owner at %q", dumpTree(tp))
		}
		if tp.Type == Address {
			if tp.Head == nil || tp.Head.Prev != nil {
				t.Fatalf("bad address head")
			}
			checkLinks(t, tp.Head, tp)
			last := tp.Head
			for last.Next != nil {
				last = last.Next
			}
			if tp.Tail != last {
				t.Fatalf("bad address tail")
			}
		}
		prev = tp
	}
}
