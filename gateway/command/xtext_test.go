package command

import "testing"

// The expected values were checked against Postfix 3.7's xtext_unquote
// and uxtext_unquote.
var xtextTests = []struct {
	name string
	in   string
	out  string
	ok   bool
}{
	{"plain", "abc", "abc", true},
	{"empty", "", "", true},
	{"plus", "a+2Bb", "a+b", true},
	{"lower case hex", "a+2bb", "a+b", true},
	{"equals", "x+3Dy", "x=y", true},
	{"8-bit", "+C3+A9", "é", true},
	{"nul", "a+00b", "a\x00b", true},
	{"short", "a+2", "", false},
	{"plus at end", "a+", "", false},
	{"not hex", "a+G0", "", false},
	{"second not hex", "a+0G", "", false},
	{"space not hex", "+ 0", "", false},
	{"forbidden bytes copied", "a=b c\x01", "a=b c\x01", true},
	{"backslash x is not xtext", `\x{41}`, `\x{41}`, true},
	{"input nul ends the value", "ab\x00+", "ab", true},
}

func TestXtext(t *testing.T) {
	for _, tc := range xtextTests {
		t.Run(tc.name, func(t *testing.T) {
			if out, ok := Xtext(tc.in); out != tc.out || ok != tc.ok {
				t.Errorf("Xtext(%q) = %q, %v; want %q, %v", tc.in, out, ok, tc.out, tc.ok)
			}
		})
	}
}

var uxtextTests = []struct {
	name string
	in   string
	out  string
	ok   bool
}{
	{"plain", "user@example.com", "user@example.com", true},
	{"empty", "", "", true},
	{"two bytes", `a\x{E9}b`, "aéb", true},
	{"lower case hex", `\x{e9}`, "é", true},
	{"ascii", `\x{41}`, "A", true},
	{"leading zeros", `\x{0000000041}`, "A", true},
	{"three bytes", `\x{20AC}`, "€", true},
	{"four bytes", `\x{1F600}`, "\U0001F600", true},
	{"largest", `\x{10FFFF}`, "\U0010FFFF", true},
	{"too large", `\x{110000}`, "", false},
	{"surrogate kept", `\x{D800}`, "\xed\xa0\x80", true},
	{"empty braces give nul", `a\x{}b`, "a\x00b", true},
	{"unterminated", `\x{41`, "", false},
	{"not hex", `\x{4G}`, "", false},
	{"upper case X is literal", `\X{41}`, `\X{41}`, true},
	{"backslash alone", `a\b`, `a\b`, true},
	{"backslash at end", `a\`, `a\`, true},
	{"backslash x at end", `a\x`, `a\x`, true},
	{"plus is literal", "a+2B", "a+2B", true},
	{"utf-8 copied", "é", "é", true},
	{"input nul ends the value", "ab\x00\\x{", "ab", true},
}

func TestUXtext(t *testing.T) {
	for _, tc := range uxtextTests {
		t.Run(tc.name, func(t *testing.T) {
			if out, ok := UXtext(tc.in); out != tc.out || ok != tc.ok {
				t.Errorf("UXtext(%q) = %q, %v; want %q, %v", tc.in, out, ok, tc.out, tc.ok)
			}
		})
	}
}
