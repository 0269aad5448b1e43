package addrheader

import (
	"strings"
	"unicode/utf8"
)

// Output flags, as tok822_externalize's TOK822_STR_LINE and _TRNC.
const (
	strLine = 1 << iota // a newline, not a space, after each comma
	strTrnc             // strip the non-address text of a long address expression
)

// maxNonAddr is how much non-address text (phrases, comments) one address
// expression may carry before Postfix reduces it to <address>, a guard
// against Sendmail's CA-2003-07 buffer overflow.
const maxNonAddr = 250

// internalize appends list in internal form: quoted strings without
// their quotes.
func internalize(b []byte, list *tok) []byte {
	for tp := list; tp != nil; tp = tp.next {
		switch tp.typ {
		case tokAddr:
			b = internalize(b, tp.head)
		case tokComment, tokAtom, tokQuoted:
			b = append(b, tp.text...)
		case tokDomLit:
			b = append(b, '[')
			b = append(b, tp.text...)
			b = append(b, ']')
		case tokStartGroup:
			b = append(b, ':')
		default:
			b = append(b, byte(tp.typ))
		}
		if appendSpace(tp) {
			b = append(b, ' ')
		}
	}
	return b
}

// externalize appends list in external form, each address with its local
// part quoted by quoteLocal. With strTrnc, an address expression (the
// text between commas) whose non-address text exceeds maxNonAddr bytes
// becomes <address>; warn is told so in Postfix's words.
func externalize(b []byte, list *tok, flags int, warn func(string)) []byte {
	start, addrLen := len(b), 0
	var addr *tok
	enforce := func() {
		if addr != nil && len(b)-addrLen > start+maxNonAddr {
			b = stripAddress(b, start, addr.head, warn)
		}
	}
	for tp := list; tp != nil; tp = tp.next {
		switch tp.typ {
		case ',':
			if flags&strTrnc != 0 {
				enforce()
			}
			if flags&strLine != 0 {
				b = append(b, ',', '\n')
			} else {
				b = append(b, ',', ' ')
			}
			start, addr, addrLen = len(b), nil, 0
			continue
		case tokAddr:
			addr = tp
			n := len(b)
			b = quoteLocal(b, string(internalize(nil, tp.head)))
			addrLen = len(b) - n
		case tokAtom, tokComment, tokQuoted, tokDomLit:
			b = externalWord(b, tp)
		case tokStartGroup:
			b = append(b, ':')
		case '<':
			if tp.next != nil && tp.next.typ == '>' { // <> is an address too
				addr, addrLen = tp, 0
			}
			b = append(b, '<')
		default:
			b = append(b, byte(tp.typ))
		}
		if appendSpace(tp) {
			b = append(b, ' ')
		}
	}
	if flags&strTrnc != 0 {
		enforce()
	}
	return b
}

// externalWord appends an atom, comment, quoted string or domain
// literal in external form.
func externalWord(b []byte, tp *tok) []byte {
	switch tp.typ {
	case tokQuoted:
		b = append(b, '"')
		b = copyQuoted(b, tp.text, "\"\\\r\n")
		return append(b, '"')
	case tokDomLit:
		b = append(b, '[')
		b = copyQuoted(b, tp.text, "\\\r\n")
		return append(b, ']')
	}
	return append(b, tp.text...)
}

// stripAddress replaces b[start:] by <address>, addr being the tokens of
// the address (none for <>).
func stripAddress(b []byte, start int, addr *tok, warn func(string)) []byte {
	shown := printable(b[start:])
	if len(shown) > 100 {
		shown = shown[:100]
	}
	warn("stripping too many comments from address: " + shown + "...")
	b = append(b[:start], '<')
	if addr != nil {
		b = quoteLocal(b, string(internalize(nil, addr)))
	}
	return append(b, '>')
}

// printable is Postfix's printable(s, '?') with UTF-8 enabled: bytes of
// valid UTF-8 stay, ASCII controls and broken sequences become '?'.
func printable(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1:
			sb.WriteByte('?')
			n = 1
		case r < 0x80 && (r < 0x20 || r == 0x7f):
			sb.WriteByte('?')
		default:
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// copyQuoted appends s with a backslash before each byte of set.
func copyQuoted(b, s []byte, set string) []byte {
	for _, c := range s {
		if strings.IndexByte(set, c) >= 0 {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}

// appendSpace tells whether a space follows tp on output. Tokens inside
// an address node (with an owner) never get one.
func appendSpace(tp *tok) bool {
	next := tp.next
	if next == nil || tp.owner != nil {
		return false
	}
	if tp.typ == ',' || tp.typ == tokStartGroup || next.typ == '<' {
		return true
	}
	return isWord(tp) && isWord(next)
}

func isWord(tp *tok) bool {
	switch tp.typ {
	case tokAtom, tokQuoted, tokComment, tokDomLit, tokAddr:
		return true
	}
	return false
}

// quoteLocal appends addr (internal form) with its local part made a
// quoted string unless it is a dot-string, as quote_822_local with
// 8-bit bytes left alone. A source route (@a,@b:) is skipped; the local
// part ends at the last '@'.
func quoteLocal(b []byte, addr string) []byte {
	start := 0
	if strings.HasPrefix(addr, "@") {
		if i := strings.IndexByte(addr, ':'); i >= 0 {
			start = i + 1
		}
	}
	end := strings.LastIndexByte(addr[start:], '@')
	if end < 0 {
		end = len(addr)
	} else {
		end += start
	}
	local := addr[start:end]
	if isDotString(local) {
		return append(b, addr...)
	}
	b = append(b, addr[:start]...)
	b = append(b, '"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' || c == '\r' {
			b = append(b, '\\')
		}
		b = append(b, local[i])
	}
	b = append(b, '"')
	return append(b, addr[end:]...)
}

// isDotString tells whether a local part is atoms separated by single
// dots, as is_822_dot_string with 8-bit bytes allowed.
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || isCntrl(c) || strings.IndexByte("()<>@,;:\\\"[]", c) >= 0 {
			return false
		}
	}
	return true
}

// unquoteLocal turns an external address into internal form as
// unquote_822_local does: quotes go, a backslash keeps the byte after
// it; a source route and the text after the last unquoted '@' stay as
// they are.
func unquoteLocal(addr string) string {
	var dst []byte
	start := 0
	if strings.HasPrefix(addr, "@") {
		if i := strings.IndexByte(addr, ':'); i >= 0 {
			start = i + 1
			dst = append(dst, addr[:start]...)
		}
	}
	inQuote, atDst, atSrc := false, -1, 0
	for i := start; i < len(addr); i++ {
		c := addr[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			continue
		case c == '@':
			if !inQuote {
				atDst, atSrc = len(dst), i
			}
		case c == '\\':
			if i+1 == len(addr) {
				continue // a backslash at the end goes
			}
			i++
			c = addr[i]
		}
		dst = append(dst, c)
	}
	if atDst >= 0 {
		dst = append(dst[:atDst], addr[atSrc:]...)
	}
	return string(dst)
}
