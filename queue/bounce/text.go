package bounce

import (
	"strings"
	"unicode/utf8"
)

// clean masks what must not reach a notice verbatim, as bounce(8) does
// with the texts it reads back: control characters (a CR or LF would end
// the line) and bytes that are not UTF-8 become '?'; so does any non-ASCII
// character unless allow8bit.
func clean(s string, allow8bit bool) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteByte('?')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteByte('?')
		case r >= 0x80 && !allow8bit:
			b.WriteByte('?')
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// quoteAddr renders an envelope address for a header, quoting a local part
// that is not a dot-atom as Postfix's quote_822_local(3) does
// ("john smith"@example.com).
func quoteAddr(addr string, allow8bit bool) string {
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i:]
	}
	if needsQuote(local) {
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(local); i++ {
			if local[i] == '"' || local[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(local[i])
		}
		b.WriteByte('"')
		local = b.String()
	}
	return clean(local+domain, allow8bit)
}

// needsQuote reports whether a local part is not a dot-atom (RFC 5322, with
// RFC 6532's UTF-8 atext) and is not quoted already.
func needsQuote(local string) bool {
	if local == "" {
		return false
	}
	if len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		return false
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return true
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c >= 0x80, 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return true
		}
	}
	return false
}
