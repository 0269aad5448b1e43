package command

import (
	"reflect"
	"testing"
)

// ok and bad build expected tokens.
func ok(text string) Token  { return Token{Text: text} }
func bad(text string) Token { return Token{Text: text, Bad: true} }

// The expected tokens were checked against Postfix 3.7's smtpd_token.
var tokenizeTests = []struct {
	name string
	line string
	want []Token
}{
	{"mail with parameter", "MAIL FROM:<a@b> SIZE=10", []Token{ok("MAIL"), ok("FROM:"), ok("<a@b>"), ok("SIZE=10")}},
	{"space after colon", "MAIL FROM: <a@b>", []Token{ok("MAIL"), ok("FROM:"), ok("<a@b>")}},
	{"space before colon", "MAIL FROM :<a@b>", []Token{ok("MAIL"), ok("FROM"), ok(":<a@b>")}},
	{"rcpt", "RCPT TO:<u@example.com>", []Token{ok("RCPT"), ok("TO:"), ok("<u@example.com>")}},
	{"lower case to: and from:", "mail from:<x> to:y", []Token{ok("mail"), ok("from:"), ok("<x>"), ok("to:"), ok("y")}},
	{"mixed case", "rcpt tO:<x>", []Token{ok("rcpt"), ok("tO:"), ok("<x>")}},
	{"other colon stays", "XCLIENT ADDR=::1 a:b", []Token{ok("XCLIENT"), ok("ADDR=::1"), ok("a:b")}},
	{"colon word", "from::<x>", []Token{ok("from:"), ok(":<x>")}},
	{"longer word ending in to:", "into:<x>", []Token{ok("into:<x>")}},
	{"space inside brackets", "RCPT TO:<a b@c>", []Token{ok("RCPT"), ok("TO:"), ok("<a b@c>")}},
	{"unterminated bracket", "MAIL FROM:<a", []Token{ok("MAIL"), ok("FROM:"), bad("<a")}},
	{"quote inside bracket opens", `MAIL FROM:<a"b>`, []Token{ok("MAIL"), ok("FROM:"), bad(`<a"b>`)}},
	{"quote inside bracket closed", `MAIL FROM:<"a b>"@c> X`, []Token{ok("MAIL"), ok("FROM:"), ok(`<"a b>"@c>`), ok("X")}},
	{"bracket text continues", "<a>b c", []Token{ok("<a>b"), ok("c")}},
	{"nested brackets", "<<a> b> c", []Token{ok("<<a> b>"), ok("c")}},
	{"nested unterminated", "<<a> b", []Token{bad("<<a> b")}},
	{"bracket in quotes does not nest", `"<" x`, []Token{ok(`"<"`), ok("x")}},
	{"quoted word", `"a b" c`, []Token{ok(`"a b"`), ok("c")}},
	{"unterminated quote", `x "a b`, []Token{ok("x"), bad(`"a b`)}},
	{"backslash escapes space", `a\ b c`, []Token{ok(`a\ b`), ok("c")}},
	{"backslash at end", `a\`, []Token{ok(`a\`)}},
	{"backslash in brackets", `<a\>b> c`, []Token{ok(`<a\>b>`), ok("c")}},
	{"backslash at end in brackets", `<a\`, []Token{bad(`<a\`)}},
	{"escaped quote in brackets", `<a\"b> c`, []Token{ok(`<a\"b>`), ok("c")}},
	{"c isspace", "a\tb\vc\fd\re\nf", []Token{ok("a"), ok("b"), ok("c"), ok("d"), ok("e"), ok("f")}},
	{"8-bit is not space", "a\x85b\xa0c", []Token{ok("a\x85b\xa0c")}},
	{"leading and trailing space", "  NOOP  ", []Token{ok("NOOP")}},
	{"empty", "", nil},
	{"only space", " \t ", nil},
	{"nul ends the line", "NOOP\x00 x", []Token{ok("NOOP")}},
	{"nul in address", "MAIL FROM:<a\x00b>", []Token{ok("MAIL"), ok("FROM:"), bad("<a")}},
	{"close bracket alone", "a>b <>", []Token{ok("a>b"), ok("<>")}},
}

func TestTokenize(t *testing.T) {
	for _, tc := range tokenizeTests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Tokenize(tc.line); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Tokenize(%q) = %+v, want %+v", tc.line, got, tc.want)
			}
		})
	}
}
