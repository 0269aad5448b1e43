package tok822

import "strings"

// QuoteLocal appends addr (internal form) with its local part made a
// quoted string unless it is a dot-string, as quote_822_local with 8-bit
// bytes left alone. A source route (@a,@b:) is skipped; the local part
// ends at the last '@'.
func QuoteLocal(b []byte, addr string) []byte {
	start, end := localPart(addr)
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

// QuotedLocal is QuoteLocal as a string: addr itself, not a copy, when
// its local part needs no quotes, as almost every address's does.
func QuotedLocal(addr string) string {
	if start, end := localPart(addr); isDotString(addr[start:end]) {
		return addr
	}
	return string(QuoteLocal(nil, addr))
}

// localPart is where addr's local part starts and ends: after a source
// route (@a,@b:), up to the last '@'.
func localPart(addr string) (start, end int) {
	if strings.HasPrefix(addr, "@") {
		if i := strings.IndexByte(addr, ':'); i >= 0 {
			start = i + 1
		}
	}
	end = strings.LastIndexByte(addr[start:], '@')
	if end < 0 {
		return start, len(addr)
	}
	return start, end + start
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

// UnquoteLocal turns an external address into internal form as
// unquote_822_local does: quotes go, a backslash keeps the byte after
// it; a source route and the text after the last unquoted '@' stay as
// they are.
func UnquoteLocal(addr string) string {
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
