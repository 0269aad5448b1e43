package command

import "strings"

// Token is one word of a command line, split as Postfix's smtpd_token does.
type Token struct {
	Text string // as sent: <>, quotes and backslashes kept
	Bad  bool   // an unterminated <...> or "..." (Postfix's SMTPD_TOK_ERROR)
}

// Tokenize splits a command line. Postfix works on C strings, so the line
// ends at its first NUL byte (a NUL inside an address thus makes it
// unterminated).
//
// Words are separated by white space (C isspace: space, \t, \n, \v, \f,
// \r), except inside <...> (which nests) and "..."; a backslash protects
// the next byte. A word also ends after a colon that completes "to:" or
// "from:" (any case), so "FROM:<a@b>" is two words; a ':' anywhere else
// stays in the word. A word may mix forms: `<a>b` is one word.
func Tokenize(line string) []Token {
	line = cString(line)
	var toks []Token
	for i := 0; ; {
		var tok Token
		tok, i = nextToken(line, i)
		if tok.Text == "" {
			return toks
		}
		toks = append(toks, tok)
	}
}

// nextToken reads one word starting at line[i]; the word is empty at the
// end of the line.
func nextToken(line string, i int) (Token, int) {
	var buf []byte
	bad := false
	for i < len(line) {
		c := line[i]
		i++
		switch {
		case isSpace(c):
			for i < len(line) && isSpace(line[i]) {
				i++
			}
			if len(buf) > 0 {
				return Token{Text: string(buf)}, i
			}
		case c == '<':
			buf, i, bad = quoted(line, i, buf, '<', '>')
		case c == '"':
			buf, i, bad = quoted(line, i, buf, '"', '"')
		case c == ':':
			buf = append(buf, c)
			if asciiEqualFold(buf, "to:") || asciiEqualFold(buf, "from:") {
				return Token{Text: string(buf)}, i
			}
		default:
			if c == '\\' {
				buf = append(buf, c)
				if i == len(line) { // a trailing backslash stays
					return Token{Text: string(buf)}, i
				}
				c = line[i]
				i++
			}
			buf = append(buf, c)
		}
	}
	return Token{Text: string(buf), Bad: bad}, i
}

// quoted copies a <...> or "..." span whose opening byte start was just
// read. Inside <...>, a '<' opens a nested level and a '"' a quoted string
// that must close first; inside "..." only the closing quote counts. bad
// reports that the line ended before the span closed.
func quoted(line string, i int, buf []byte, start, end byte) ([]byte, int, bool) {
	buf = append(buf, start)
	depth, inQuote := 0, false // nested '<' levels; a '"' opened inside <...>
	for i < len(line) {
		c := line[i]
		i++
		buf = append(buf, c)
		wanted := end
		if inQuote {
			wanted = '"'
		} else if depth > 0 {
			wanted = '>'
		}
		switch {
		case c == '\\':
			if i == len(line) {
				return buf, i, true
			}
			buf = append(buf, line[i])
			i++
		case c == wanted:
			switch {
			case inQuote:
				inQuote = false
			case depth > 0:
				depth--
			default:
				return buf, i, false
			}
		case c == '"':
			inQuote = true
		case c == '<' && wanted == '>':
			depth++
		}
	}
	return buf, i, true
}

// isSpace is C isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c >= '\t' && c <= '\r'
}

// asciiEqualFold compares b with the lower-case ASCII word w, ignoring
// ASCII case only (strncasecmp in the C locale).
func asciiEqualFold(b []byte, w string) bool {
	if len(b) != len(w) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// cString is what a C function sees of s: the part before the first NUL.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
