package command

// Xtext decodes an RFC 3461 xtext value as Postfix's xtext_unquote (false
// on a malformed +XX). Everything but "+XX" (two hex digits, any case) is
// copied as is; Postfix does not reject bytes that RFC 3461 forbids.
//
// "+00" decodes to a NUL byte, which is kept. Postfix keeps it in an
// ORCPT address (it passes the length on), but its ENVID check reads the
// result as a C string and so sees only what precedes the NUL.
func Xtext(s string) (string, bool) {
	s = cString(s)
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '+' {
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := hexValue(s[i+1])
			lo, ok2 := hexValue(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			c = hi<<4 | lo
			i += 2
		}
		out = append(out, c)
	}
	return string(out), true
}

// UXtext decodes the utf-8-addr-xtext/unitext of an ORCPT=utf-8; value as
// Postfix's uxtext_unquote: each "\x{HEX}" (lower-case x, one or more hex
// digits, at most U+10FFFF) becomes the UTF-8 bytes of that code point;
// everything else is copied as is. A "\x{" that is not closed by '}' after
// hex digits makes the value malformed.
//
// As in Postfix, the code point is not checked further: "\x{0}" gives a
// NUL byte and "\x{D800}" the three bytes a surrogate would have.
func UXtext(s string) (string, bool) {
	s = cString(s)
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+2 >= len(s) || s[i+1] != 'x' || s[i+2] != '{' {
			out = append(out, c)
			continue
		}
		r := 0
		for i += 3; ; i++ {
			if i == len(s) {
				return "", false
			}
			if s[i] == '}' {
				break
			}
			v, ok := hexValue(s[i])
			if !ok {
				return "", false
			}
			if r = r<<4 | int(v); r > 0x10ffff {
				return "", false
			}
		}
		out = appendUTF8(out, r)
	}
	return string(out), true
}

// appendUTF8 encodes r (at most 0x10FFFF) without Go's substitution of
// surrogates.
func appendUTF8(b []byte, r int) []byte {
	switch {
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xc0|byte(r>>6), 0x80|byte(r)&0x3f)
	case r < 0x10000:
		return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	}
	return append(b, 0xf0|byte(r>>18), 0x80|byte(r>>12)&0x3f, 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
