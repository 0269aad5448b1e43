package rules

import "strings"

// ValidDSN returns the length of the RFC 3463 enhanced status code at the
// start of s ("d.ddd.ddd" with first digit 2, 4 or 5, followed by the end
// of s or whitespace), or 0 when s does not start with one.
func ValidDSN(s string) int {
	if len(s) < 2 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return 0
	}
	i := 2
	n := digits(s[i:])
	if n < 1 || n > 3 || i+n >= len(s) || s[i+n] != '.' {
		return 0
	}
	i += n + 1
	n = digits(s[i:])
	if n < 1 || n > 3 || (i+n < len(s) && !isSpace(s[i+n])) {
		return 0
	}
	return i + n
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// SplitDSN splits optional reply text into a leading enhanced status code
// and the free text after it (Postfix's dsn_split). dsn is "" when the text
// does not start with one.
func SplitDSN(text string) (dsn, rest string) {
	text = strings.TrimLeft(text, " \t\r\n\v\f")
	if n := ValidDSN(text); n > 0 {
		return text[:n], strings.TrimLeft(text[n:], " \t\r\n\v\f")
	}
	return "", text
}
