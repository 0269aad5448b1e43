package tok822

import (
	"strings"
	"unicode/utf8"
)

// Flags of Externalize, as tok822_externalize's TOK822_STR_LINE and _TRNC.
type Flags int

const (
	Line     Flags = 1 << iota // a newline, not a space, after each comma
	Truncate                   // strip the non-address text of a long address expression
)

// maxNonAddr is how much non-address text (phrases, comments) one address
// expression may carry before Postfix reduces it to <address>, a guard
// against Sendmail's CA-2003-07 buffer overflow.
const maxNonAddr = 250

// Internalize appends list in internal form, as tok822_internalize: quoted
// strings without their quotes, domain literals in brackets, comments as
// they are. A space follows a top-level comma or group start, precedes a
// top-level '<' and separates two top-level words; the tokens of an
// address are never separated.
func Internalize(b []byte, list *Token) []byte {
	for tp := list; tp != nil; tp = tp.Next {
		switch tp.Type {
		case Address:
			b = Internalize(b, tp.Head)
		case Comment, Atom, QuotedString:
			b = append(b, tp.Text...)
		case DomainLiteral:
			b = append(b, '[')
			b = append(b, tp.Text...)
			b = append(b, ']')
		case StartGroup:
			b = append(b, ':')
		default:
			b = append(b, byte(tp.Type))
		}
		if appendSpace(tp) {
			b = append(b, ' ')
		}
	}
	return b
}

// Externalize appends list in external form, as tok822_externalize: each
// address with its local part quoted by QuoteLocal, quoted strings and
// domain literals with their delimiters and escapes. With Truncate, an
// address expression (the text between commas) whose non-address text
// exceeds 250 bytes becomes <address>, and warn is told so in Postfix's
// words (without "warning: "); warn may be nil without Truncate.
func Externalize(b []byte, list *Token, flags Flags, warn func(string)) []byte {
	start, addrLen := len(b), 0
	var addr *Token
	enforce := func() {
		if addr != nil && len(b)-addrLen > start+maxNonAddr {
			b = stripAddress(b, start, addr.Head, warn)
		}
	}
	var internal []byte // one address in internal form
	for tp := list; tp != nil; tp = tp.Next {
		switch tp.Type {
		case ',':
			if flags&Truncate != 0 {
				enforce()
			}
			if flags&Line != 0 {
				b = append(b, ',', '\n')
			} else {
				b = append(b, ',', ' ')
			}
			start, addr, addrLen = len(b), nil, 0
			continue
		case Address:
			addr = tp
			n := len(b)
			internal = Internalize(internal[:0], tp.Head)
			b = QuoteLocal(b, string(internal))
			addrLen = len(b) - n
		case Atom, Comment, QuotedString, DomainLiteral:
			b = ExternalWord(b, tp)
		case StartGroup:
			b = append(b, ':')
		case '<':
			if tp.Next != nil && tp.Next.Type == '>' { // <> is an address too
				addr, addrLen = tp, 0
			}
			b = append(b, '<')
		default:
			b = append(b, byte(tp.Type))
		}
		if appendSpace(tp) {
			b = append(b, ' ')
		}
	}
	if flags&Truncate != 0 {
		enforce()
	}
	return b
}

// ExternalWord appends an atom, comment, quoted string or domain literal
// in external form.
func ExternalWord(b []byte, tp *Token) []byte {
	switch tp.Type {
	case QuotedString:
		b = append(b, '"')
		b = copyQuoted(b, tp.Text, "\"\\\r\n")
		return append(b, '"')
	case DomainLiteral:
		b = append(b, '[')
		b = copyQuoted(b, tp.Text, "\\\r\n")
		return append(b, ']')
	}
	return append(b, tp.Text...)
}

// stripAddress replaces b[start:] by <address>, addr being the tokens of
// the address (none for <>).
func stripAddress(b []byte, start int, addr *Token, warn func(string)) []byte {
	shown := printable(b[start:])
	if len(shown) > 100 {
		shown = shown[:100]
	}
	warn("stripping too many comments from address: " + shown + "...")
	b = append(b[:start], '<')
	if addr != nil {
		b = QuoteLocal(b, string(Internalize(nil, addr)))
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
func copyQuoted(b []byte, s, set string) []byte {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) >= 0 {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return b
}

// appendSpace tells whether a space follows tp on output
// (tok822_append_space). Tokens inside an address (with an owner) never
// get one.
func appendSpace(tp *Token) bool {
	next := tp.Next
	if next == nil || tp.Owner != nil {
		return false
	}
	if tp.Type == ',' || tp.Type == StartGroup || next.Type == '<' {
		return true
	}
	return isWord(tp) && isWord(next)
}

func isWord(tp *Token) bool {
	switch tp.Type {
	case Atom, QuotedString, Comment, DomainLiteral, Address:
		return true
	}
	return false
}
