package command

import (
	"strings"
	"testing"
)

// dumpTree shows a token list: address nodes as {...}, quoted strings in
// quotes, domain literals in brackets, a group start as ":group", anything
// else as its text.
func dumpTree(list *node) string {
	var parts []string
	for tp := list; tp != nil; tp = tp.next {
		switch tp.typ {
		case tokAddress:
			parts = append(parts, "{"+dumpTree(tp.head)+"}")
		case tokAtom, tokComment:
			parts = append(parts, string(tp.text))
		case tokQuoted:
			parts = append(parts, `"`+string(tp.text)+`"`)
		case tokDomainLiteral:
			parts = append(parts, "["+string(tp.text)+"]")
		case tokStartGroup:
			parts = append(parts, ":group")
		default:
			parts = append(parts, string(rune(tp.typ)))
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
}

func TestParse(t *testing.T) {
	for _, tc := range parseTests {
		t.Run(tc.name, func(t *testing.T) {
			tree := parse(tc.text)
			if got := dumpTree(tree); got != tc.tree {
				t.Errorf("parse(%q) = %s, want %s", tc.text, got, tc.tree)
			}
			if got := string(internalize(nil, tree)); got != tc.internal {
				t.Errorf("internalize(parse(%q)) = %q, want %q", tc.text, got, tc.internal)
			}
			checkLinks(t, tree, nil)
		})
	}
}

// checkLinks verifies the list invariants: prev and next agree, owners
// point at the enclosing address node, head and tail bound each sublist.
func checkLinks(t *testing.T, list, owner *node) {
	t.Helper()
	var prev *node
	for tp := list; tp != nil; tp = tp.next {
		if tp.prev != prev {
			t.Fatalf("broken prev link at %q", dumpTree(tp))
		}
		if tp.owner != owner {
			t.Fatalf("wrong owner at %q", dumpTree(tp))
		}
		if tp.typ == tokAddress {
			if tp.head == nil || tp.head.prev != nil {
				t.Fatalf("bad address head")
			}
			checkLinks(t, tp.head, tp)
			last := tp.head
			for last.next != nil {
				last = last.next
			}
			if tp.tail != last {
				t.Fatalf("bad address tail")
			}
		}
		prev = tp
	}
}
