package command

import "testing"

// The expected values were checked against Postfix 3.7's tok822_parse and
// tok822_internalize, through the syntactic part of smtpd's extract_addr.
var extractTests = []struct {
	name     string
	token    string
	addr     string
	naddr    int  // address nodes at the top level
	nonAddr  int  // other nodes, '<' and '>' aside
	ok       bool // strict_rfc821_envelopes = no
	strictOK bool // strict_rfc821_envelopes = yes
}{
	{"plain", "<a@b>", "a@b", 1, 0, true, true},
	{"no brackets", "a@b", "a@b", 1, 0, true, false},
	{"null", "<>", "", 0, 0, true, true},
	{"double brackets", "<<>>", "", 0, 0, true, true},
	{"quoted local part", `<"a b"@c>`, "a b@c", 1, 0, true, true},
	{"space: two addresses", "<a b@c>", "b@c", 2, 1, false, false},
	{"tab: two addresses", "<a\tb@c>", "b@c", 2, 1, false, false},
	{"double at", "<a@@b>", "a@@b", 1, 0, true, true},
	{"source route", "<@r1,@r2:u@d>", "u@d", 1, 0, true, true},
	{"source route without brackets", "@a:b@c", "b@c", 1, 0, true, false},
	{"route only", "<@a:>", "", 0, 0, true, true},
	{"route without colon", "<@a,@b>", "@b", 2, 1, false, false},
	{"at start", "<@a>", "@a", 1, 0, true, false},
	{"empty quoted local part", `<""@b>`, "@b", 1, 0, true, false},
	{"empty quoted string", `<"">`, "", 1, 0, true, true},
	{"comment inside", "<a(comment)@b>", "a@b", 1, 1, true, false},
	{"comment first", "<(c)a@b>", "a@b", 1, 1, true, false},
	{"comment last", "<a@b(c)>", "a@b", 1, 1, true, false},
	{"comment after", "<a@b>(c)", "a@b", 1, 1, true, false},
	{"comment before", "(c)<a@b>", "a@b", 1, 1, true, false},
	{"comment only", "<(c)>", "", 0, 1, true, false},
	{"nested comment", "<(a(b)c)x@y>", "x@y", 1, 1, true, false},
	{"unterminated comment", "<(unterminated@b>", "", 0, 1, true, false},
	{"escaped at", `<a\@b@c>`, "a@b@c", 1, 0, true, true},
	{"escaped space", `<a\ b@c>`, "a b@c", 1, 0, true, true},
	{"escaped quote", `<"a\"b"@c>`, `a"b@c`, 1, 0, true, true},
	{"escaped backslash", `<"a\\b"@c>`, `a\b@c`, 1, 0, true, true},
	{"leading backslash", `<\a@b>`, "a@b", 1, 0, true, true},
	{"trailing backslash", `<a@b\>`, "a@b", 1, 0, true, true},
	{"lone backslash", `\`, "", 1, 0, true, false},
	{"quoted at", `<"a@b"@c>`, "a@b@c", 1, 0, true, true},
	{"quoted brackets", `<"<a@b>">`, "<a@b>", 1, 0, true, true},
	{"quoted domain", `<a@"b">`, "a@b", 1, 0, true, true},
	{"unterminated quote", `<"unterminated@b>`, "unterminated@b", 1, 0, true, true},
	{"address literal", "<a@[1.2.3.4]>", "a@[1.2.3.4]", 1, 0, true, true},
	{"ipv6 literal", "<user@[IPv6:::1]>", "user@[IPv6:::1]", 1, 0, true, true},
	{"literal with spaces", "<a@[ 1.2.3.4 ]>", "a@[ 1.2.3.4 ]", 1, 0, true, true},
	{"escaped bracket in literal", `<a@[1.2\]3]>`, "a@[1.2]3]", 1, 0, true, true},
	{"unterminated literal", "<a@[1.2.3.4>", "a@[1.2.3.4]", 1, 0, true, true},
	{"literal only", "<[1.2.3.4]>", "[1.2.3.4]", 1, 0, true, true},
	{"control byte", "<a\x01b@c>", "a\x01b@c", 1, 0, true, true},
	{"vertical tab", "<a\vb@c>", "a\vb@c", 1, 0, true, true},
	{"delete", "<a\x7fb@c>", "a\x7fb@c", 1, 0, true, true},
	{"utf-8 local part", "<é@c>", "é@c", 1, 0, true, true},
	{"8-bit bytes", "<\xff\xfe@c>", "\xff\xfe@c", 1, 0, true, true},
	{"junk after", "<a@b> junk", "junk", 2, 1, false, false},
	{"trailing dot", "<a.@b>", "a.@b", 1, 0, true, true},
	{"leading dot", "<.a@b>", ".a@b", 1, 0, true, true},
	{"double dot", "<a..b@c>", "a..b@c", 1, 0, true, true},
	{"dot at end of domain", "<a@b.>", "a@b.", 1, 0, true, true},
	{"spaces around operators", "<a . b @ c>", "a.b@c", 1, 0, true, true},
	{"routing operators", "<a%b!c|d@e>", "a%b!c|d@e", 1, 0, true, true},
	{"stray parenthesis", "<a)b@c>", "a)b@c", 1, 0, true, true},
	{"stray bracket", "<a]b@c>", "a]b@c", 1, 0, true, true},
	{"colon in local part", "<a:b@c>", "a:b@c", 1, 0, true, true},
	{"leading colon", "<:a@b>", ":a@b", 1, 0, true, true},
	{"name and address", "Name <a@b>", "a@b", 1, 1, true, false},
	{"name and address in brackets", "<Name <a@b>>", "a@b", 1, 1, true, false},
	{"name, address and junk", "<Name <a@b> junk>", "junk", 2, 2, false, false},
	{"two route-addrs", "<<a@b> <c@d>>", "c@d", 2, 0, false, false},
	{"two with comma", "<<a@b>,<c@d>>", "c@d", 2, 1, false, false},
	{"list", "<a@b,c@d>", "c@d", 2, 1, false, false},
	{"two quoted words", `<"a" "b"@c>`, "b@c", 2, 1, false, false},
	{"two addresses", "<a@b c@d>", "c@d", 2, 1, false, false},
	{"comma after", "<a@b>,", "a@b", 1, 1, true, false},
	{"comma before", ",<a@b>", "a@b", 1, 1, true, false},
	{"comma inside", "<a@b,>", "a@b", 1, 1, true, false},
	{"semicolon", "<a@b;>", "a@b", 1, 1, true, false},
	{"group", "<g:a@b;>", "a@b", 1, 3, true, false},
	{"empty group", "<g:;>", "", 0, 3, true, false},
	{"group list", "g: a, b;", "b", 2, 4, false, false},
	{"name colon address", "Name:<a@b>", "a@b", 2, 1, false, false},
	{"name colon address semicolon", "Name:<a@b>;", "a@b", 1, 3, true, false},
	{"extra close", "<a@b>>", "a@b", 1, 0, true, true},
	{"extra open", "<<a@b>", "<a@b", 1, 0, true, true},
	{"open open close", "<<>", "<", 1, 0, true, true},
	{"bracket inside", "<a<b>c>", "c", 2, 2, false, false},
	{"open only", "<", "<", 1, 0, true, true},
	{"close only", ">", "", 0, 0, true, false},
	{"unterminated", "<a", "<a", 1, 0, true, true},
	{"quoted, no brackets", `"a b"`, "a b", 1, 0, true, false},
	{"empty", "", "", 0, 0, true, false},
	{"nul ends the token", "<a\x00b>", "<a", 1, 0, true, true},
}

func TestExtractAddress(t *testing.T) {
	for _, tc := range extractTests {
		t.Run(tc.name, func(t *testing.T) {
			addr, naddr, nonAddr := parseEnvelopeAddress(cString(tc.token))
			if addr != tc.addr || naddr != tc.naddr || nonAddr != tc.nonAddr {
				t.Errorf("parse %q = %q, %d addresses, %d other; want %q, %d, %d",
					tc.token, addr, naddr, nonAddr, tc.addr, tc.naddr, tc.nonAddr)
			}
			if addr, ok := ExtractAddress(tc.token, false); addr != tc.addr || ok != tc.ok {
				t.Errorf("ExtractAddress(%q, false) = %q, %v; want %q, %v", tc.token, addr, ok, tc.addr, tc.ok)
			}
			if addr, ok := ExtractAddress(tc.token, true); addr != tc.addr || ok != tc.strictOK {
				t.Errorf("ExtractAddress(%q, true) = %q, %v; want %q, %v", tc.token, addr, ok, tc.addr, tc.strictOK)
			}
		})
	}
}

// TestExtractTokenized runs whole command lines through Tokenize and
// ExtractAddress, the way smtpd handles MAIL FROM.
func TestExtractTokenized(t *testing.T) {
	for _, tc := range []struct {
		line     string
		addr     string
		ok, bad  bool
		strictOK bool
	}{
		{"MAIL FROM:<a@b> SIZE=10", "a@b", true, false, true},
		{"MAIL FROM: <a@b>", "a@b", true, false, true},
		{"MAIL FROM:a@b", "a@b", true, false, false},
		{`MAIL FROM:<"a b"@c>`, "a b@c", true, false, true},
		{"RCPT TO:<a b@c>", "b@c", false, false, false},
		{"MAIL FROM:<a", "<a", true, true, true}, // smtpd rejects Bad before parsing
		{"MAIL FROM:<Name <a@b>>", "a@b", true, false, false},
	} {
		toks := Tokenize(tc.line)
		if len(toks) < 3 {
			t.Errorf("Tokenize(%q) = %+v", tc.line, toks)
			continue
		}
		arg := toks[2]
		if arg.Bad != tc.bad {
			t.Errorf("%q: Bad = %v", tc.line, arg.Bad)
		}
		if addr, ok := ExtractAddress(arg.Text, false); addr != tc.addr || ok != tc.ok {
			t.Errorf("%q: ExtractAddress(%q, false) = %q, %v", tc.line, arg.Text, addr, ok)
		}
		if _, ok := ExtractAddress(arg.Text, true); ok != tc.strictOK {
			t.Errorf("%q: ExtractAddress(%q, true) ok = %v", tc.line, arg.Text, ok)
		}
	}
}
