package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// Character classes and escapes of pcre: patterns. Without UTF, every
// class is a set of bytes, and PCRE2's built-in tables are the "C"
// locale's: translating each class to its explicit set of bytes keeps
// regexp2's Unicode definitions of \w, \d and \s out of the match.

// byteSet is a set of byte values.
type byteSet [256]bool

func (s *byteSet) addRange(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s[c] = true
	}
}

func (s *byteSet) addSet(o *byteSet) {
	for c, in := range o {
		s[c] = s[c] || in
	}
}

func (s byteSet) complement() byteSet {
	for c := range s {
		s[c] = !s[c]
	}
	return s
}

func newByteSet(ranges ...byte) byteSet {
	var s byteSet
	for i := 0; i+1 < len(ranges); i += 2 {
		s.addRange(ranges[i], ranges[i+1])
	}
	return s
}

// The "C" locale classes, and the sets of PCRE2's escapes without UTF.
var (
	digitSet   = newByteSet('0', '9')
	spaceSet   = newByteSet('\t', '\r', ' ', ' ') // \s includes VT since PCRE2 10.0
	wordSet    = newByteSet('0', '9', 'A', 'Z', 'a', 'z', '_', '_')
	hspaceSet  = newByteSet('\t', '\t', ' ', ' ', 0xA0, 0xA0)
	vspaceSet  = newByteSet('\n', '\r', 0x85, 0x85)
	anyByte    = newByteSet(0, 0xFF)
	notNewline = newByteSet('\n', '\n').complement()

	posixClasses = map[string]byteSet{
		"alpha":  newByteSet('A', 'Z', 'a', 'z'),
		"digit":  digitSet,
		"alnum":  newByteSet('0', '9', 'A', 'Z', 'a', 'z'),
		"upper":  newByteSet('A', 'Z'),
		"lower":  newByteSet('a', 'z'),
		"space":  spaceSet,
		"blank":  newByteSet('\t', '\t', ' ', ' '),
		"cntrl":  newByteSet(0, 0x1F, 0x7F, 0x7F),
		"print":  newByteSet(0x20, 0x7E),
		"graph":  newByteSet(0x21, 0x7E),
		"punct":  newByteSet('!', '/', ':', '@', '[', '`', '{', '~'),
		"xdigit": newByteSet('0', '9', 'A', 'F', 'a', 'f'),
		"word":   wordSet,
		"ascii":  newByteSet(0, 0x7F),
	}
)

// net writes the set as a .NET class over matchable runes.
func (s byteSet) net() string {
	var b strings.Builder
	b.WriteByte('[')
	empty := true
	for c := 0; c < 256; {
		if !s[c] {
			c++
			continue
		}
		lo := c
		// A range stops at 0x7F: bytes above it are matchable runes.
		for c < 256 && s[c] && (c != 0x80 || lo == 0x80) {
			c++
		}
		fmt.Fprintf(&b, `\u%04X`, matchableRune(byte(lo)))
		if c-1 > lo {
			fmt.Fprintf(&b, `-\u%04X`, matchableRune(byte(c-1)))
		}
		empty = false
	}
	if empty {
		// Matches nothing: a key in matchable form has only ASCII and
		// the runes of high bytes.
		return `[^\u0000-\uFFFF]`
	}
	b.WriteByte(']')
	return b.String()
}

// caseClose adds the other case of each ASCII letter in s, as PCRE2 does
// for the characters and ranges of a caseless class.
func caseClose(s *byteSet) {
	for c := 'A'; c <= 'Z'; c++ {
		if s[c] || s[c+32] {
			s[c], s[c+32] = true, true
		}
	}
}

// class translates a bracket expression, t.pos at its '['.
func (t *pcreTranslator) class(st *pcreState) (string, error) {
	t.pos++
	negate := false
	if t.peek(0) == '^' {
		negate = true
		t.pos++
	}
	var set byteSet
	quoting := false
	for first := true; ; first = false {
		if t.pos >= len(t.src) {
			return "", t.errorf("missing terminating ] for character class")
		}
		c := t.src[t.pos]
		switch {
		case quoting && c == '\\' && t.peek(1) == 'E':
			quoting = false
			t.pos += 2
			continue
		case quoting:
		case c == ']' && !first:
			t.pos++
			if negate {
				set = set.complement()
			}
			return set.net(), nil
		case c == '\\' && (t.peek(1) == 'Q' || t.peek(1) == 'E'):
			quoting = t.peek(1) == 'Q'
			t.pos += 2
			continue
		case c == '[' && (t.peek(1) == ':' || t.peek(1) == '.' || t.peek(1) == '='):
			if ok, err := t.posixClass(st, &set); ok || err != nil {
				if err == nil && t.isRangeDash() {
					err = t.errorf("invalid range in character class")
				}
				if err != nil {
					return "", err
				}
				continue
			}
		}
		lo, esc, err := t.classItem(quoting)
		if err != nil {
			return "", err
		}
		if esc != nil {
			if t.isRangeDash() {
				return "", t.errorf("invalid range in character class")
			}
			set.addSet(esc)
			continue
		}
		var item byteSet
		item[lo] = true
		if !quoting && t.isRangeDash() {
			t.pos++
			if t.peek(0) == '[' && (t.peek(1) == ':' || t.peek(1) == '.' || t.peek(1) == '=') {
				return "", t.errorf("invalid range in character class")
			}
			hi, esc, err := t.classItem(false)
			if err != nil {
				return "", err
			}
			if esc != nil {
				return "", t.errorf("invalid range in character class")
			}
			if hi < lo {
				return "", t.errorf("range out of order in character class")
			}
			item.addRange(lo, hi)
		}
		if st.caseless {
			caseClose(&item)
		}
		set.addSet(&item)
	}
}

// isRangeDash reports a '-' at t.pos that makes a range: one not last in
// the class.
func (t *pcreTranslator) isRangeDash() bool {
	return t.peek(0) == '-' && t.pos+1 < len(t.src) && t.peek(1) != ']'
}

// classItem reads one character of a class, or an escape that stands for
// a set (returned in esc).
func (t *pcreTranslator) classItem(quoting bool) (c byte, esc *byteSet, err error) {
	c = t.src[t.pos]
	if c != '\\' || quoting {
		t.pos++
		return c, nil, nil
	}
	e, err := t.escape(true)
	if err != nil {
		return 0, nil, err
	}
	return e.char, e.set, nil
}

// posixClass reads [:name:] or [:^name:] at t.pos into set. ok is false
// when the text is not a POSIX class after all (the '[' is then literal).
func (t *pcreTranslator) posixClass(st *pcreState, set *byteSet) (ok bool, err error) {
	kind := t.peek(1)
	end := strings.Index(t.src[t.pos+2:], string(kind)+"]")
	if end < 0 || strings.ContainsAny(t.src[t.pos+2:t.pos+2+end], "[]\\") {
		return false, nil
	}
	if kind != ':' {
		return false, t.errorf("POSIX collating elements are not supported")
	}
	name := t.src[t.pos+2 : t.pos+2+end]
	negate := strings.HasPrefix(name, "^")
	name = strings.TrimPrefix(name, "^")
	if st.caseless && (name == "upper" || name == "lower") {
		name = "alpha" // as PCRE2 does for a caseless class
	}
	s, known := posixClasses[name]
	if !known {
		return false, t.errorf("unknown POSIX class name")
	}
	if negate {
		s = s.complement()
	}
	set.addSet(&s)
	t.pos += 2 + end + 2
	return true, nil
}

// pcreEscape is what a backslash sequence stands for: a character, a set,
// or (outside a class) an item of its own.
type pcreEscape struct {
	char byte
	set  *byteSet
	atom *pcreAtom
}

// escapeAtom translates a backslash sequence outside a class.
func (t *pcreTranslator) escapeAtom(st *pcreState) (pcreAtom, error) {
	e, err := t.escape(false)
	switch {
	case err != nil:
		return pcreAtom{}, err
	case e.atom != nil:
		return *e.atom, nil
	case e.set != nil:
		return pcreAtom{out: e.set.net(), length: 1}, nil
	}
	return charAtom(e.char, st), nil
}

// escape reads the backslash sequence at t.pos.
func (t *pcreTranslator) escape(inClass bool) (pcreEscape, error) {
	start := t.pos
	t.pos++
	if t.pos >= len(t.src) {
		return pcreEscape{}, t.errorf(`\ at end of pattern`)
	}
	c := t.src[t.pos]
	t.pos++
	if simple, ok := pcreCharEscapes[c]; ok {
		return pcreEscape{char: simple}, nil
	}
	if s, ok := pcreSetEscapes[c]; ok {
		return pcreEscape{set: &s}, nil
	}
	anchor := func(out string) (pcreEscape, error) {
		if inClass {
			t.pos--
			return pcreEscape{}, t.errorf("escape sequence is invalid in character class")
		}
		return pcreEscape{atom: &pcreAtom{out: out, noRepeat: notRepeatable}}, nil
	}
	switch c {
	case 'b':
		if inClass {
			return pcreEscape{char: '\b'}, nil
		}
		return anchor(`\b`)
	case 'B':
		return anchor(`\B`)
	case 'A', 'G':
		// \G is where matching started: Postfix always starts at 0.
		return anchor(`\A`)
	case 'z':
		return anchor(`\z`)
	case 'Z':
		return anchor(`\Z`)
	case 'N':
		if inClass || t.peek(0) == '{' {
			return pcreEscape{}, t.unsupported(`\N here`)
		}
		return pcreEscape{set: &notNewline}, nil
	case 'C':
		if inClass {
			return pcreEscape{}, t.errorf("escape sequence is invalid in character class")
		}
		return pcreEscape{set: &anyByte}, nil // one code unit
	case 'R':
		if inClass {
			return pcreEscape{}, t.errorf("escape sequence is invalid in character class")
		}
		nl := vspaceSet.net()
		return pcreEscape{atom: &pcreAtom{out: `(?>\r\n|` + nl + ")", length: -1}}, nil
	case '0':
		return t.octal(0, 2)
	case 'o':
		return t.bracedNumber(8)
	case 'x':
		if t.peek(0) == '{' {
			return t.bracedNumber(16)
		}
		return pcreEscape{char: t.hex2()}, nil
	case 'c':
		x := t.peek(0)
		if x < 0x20 || x > 0x7E {
			return pcreEscape{}, t.errorf(`\c must be followed by a printable ASCII character`)
		}
		t.pos++
		if x >= 'a' && x <= 'z' {
			x -= 32
		}
		return pcreEscape{char: x ^ 0x40}, nil
	case 'g', 'k':
		if inClass {
			t.pos--
			return pcreEscape{}, t.errorf("escape sequence is invalid in character class")
		}
		a, err := t.backrefEscape(c, start)
		return pcreEscape{atom: &a}, err
	}
	if c >= '1' && c <= '9' {
		return t.digitEscape(c, start, inClass)
	}
	switch {
	case strings.IndexByte("KXpPLlUuF", c) >= 0:
		return pcreEscape{}, t.unsupported(`\` + string(c))
	case isAlnum(c):
		return pcreEscape{}, t.errorf(`unrecognized character follows \`)
	}
	return pcreEscape{char: c}, nil // an escaped punctuation or high byte is itself
}

var pcreCharEscapes = map[byte]byte{
	'a': 0x07, 'e': 0x1B, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t',
}

var pcreSetEscapes = map[byte]byteSet{
	'd': digitSet, 'D': digitSet.complement(),
	's': spaceSet, 'S': spaceSet.complement(),
	'w': wordSet, 'W': wordSet.complement(),
	'h': hspaceSet, 'H': hspaceSet.complement(),
	'v': vspaceSet, 'V': vspaceSet.complement(),
}

// octal reads up to max more octal digits after a first value.
func (t *pcreTranslator) octal(v, max int) (pcreEscape, error) {
	for i := 0; i < max && t.peek(0) >= '0' && t.peek(0) <= '7'; i++ {
		v = v*8 + int(t.peek(0)-'0')
		t.pos++
	}
	if v > 0xFF {
		return pcreEscape{}, t.errorf(`octal value is greater than \377 in 8-bit non-UTF-8 mode`)
	}
	return pcreEscape{char: byte(v)}, nil
}

// hex2 reads up to two hex digits (none is \x00).
func (t *pcreTranslator) hex2() byte {
	v := 0
	for i := 0; i < 2; i++ {
		d, ok := hexDigit(t.peek(0))
		if !ok {
			break
		}
		v = v*16 + d
		t.pos++
	}
	return byte(v)
}

func hexDigit(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// bracedNumber reads {digits} after \o or \x.
func (t *pcreTranslator) bracedNumber(base int) (pcreEscape, error) {
	if t.peek(0) != '{' {
		return pcreEscape{}, t.errorf("missing opening brace after \\o")
	}
	t.pos++
	start := t.pos
	for t.pos < len(t.src) && t.src[t.pos] != '}' {
		t.pos++
	}
	if t.pos >= len(t.src) || t.pos == start {
		return pcreEscape{}, t.errorf("digits missing in \\x{} or \\o{} or \\N{U+}")
	}
	v, err := strconv.ParseUint(t.src[start:t.pos], base, 64)
	t.pos++
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return pcreEscape{}, t.errorf("character code point value in \\x{} or \\o{} is too large")
		}
		return pcreEscape{}, t.errorf("non-hex character in \\x{} (closing brace missing?)")
	}
	if v > 0xFF {
		return pcreEscape{}, t.errorf("character code point value in \\x{} or \\o{} is too large")
	}
	return pcreEscape{char: byte(v)}, nil
}

// digitEscape reads \1 to \9 and what follows: a back reference, or in a
// class and where PCRE2 says so an octal character.
func (t *pcreTranslator) digitEscape(c byte, start int, inClass bool) (pcreEscape, error) {
	if inClass {
		if c > '7' {
			return pcreEscape{}, t.unsupported(`\8 or \9 in a class`)
		}
		return t.octal(int(c-'0'), 2)
	}
	end := t.pos
	for end < len(t.src) && t.src[end] >= '0' && t.src[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(t.src[start+1 : end])
	// PCRE2: a back reference when below 10, starting with 8 or 9, or
	// naming a group already opened; otherwise up to three octal digits.
	if err == nil && (n < 10 || c >= '8' || n <= t.groups) {
		t.pos = end
		a := t.numberedRef(start, n)
		return pcreEscape{atom: &a}, nil
	}
	if err != nil {
		return pcreEscape{}, t.errorf("number is too big")
	}
	return t.octal(int(c-'0'), 2)
}

// backrefEscape reads \g and \k back references, t.pos after the letter.
func (t *pcreTranslator) backrefEscape(c byte, start int) (pcreAtom, error) {
	if c == 'k' {
		switch t.peek(0) {
		case '<', '\'', '{':
			closing := map[byte]byte{'<': '>', '\'': '\'', '{': '}'}[t.peek(0)]
			t.pos++
			ref, err := t.namedRef(closing)
			return pcreAtom{out: ref, length: -1}, err
		}
		return pcreAtom{}, t.errorf(`\k is not followed by a braced, angle-bracketed, or quoted name`)
	}
	braced := t.peek(0) == '{'
	switch {
	case t.peek(0) == '<' || t.peek(0) == '\'':
		return pcreAtom{}, t.unsupported("subroutine calls")
	case braced:
		t.pos++
	}
	numStart := t.pos
	if t.peek(0) == '-' || t.peek(0) == '+' {
		t.pos++
	}
	for t.pos < len(t.src) && t.src[t.pos] >= '0' && t.src[t.pos] <= '9' {
		t.pos++
	}
	num := t.src[numStart:t.pos]
	if braced && (num == "" || num[0] != '-' && num[0] != '+' && (num[0] < '0' || num[0] > '9')) {
		t.pos = numStart
		ref, err := t.namedRef('}')
		return pcreAtom{out: ref, length: -1}, err
	}
	if braced {
		if t.peek(0) != '}' {
			return pcreAtom{}, t.errorf(`\g is not followed by a braced, angle-bracketed, or quoted name/number or by a plain number`)
		}
		t.pos++
	}
	n, err := strconv.Atoi(num)
	switch {
	case err != nil || num[0] == '+' || n == 0:
		return pcreAtom{}, t.errorf(`\g is not followed by a braced, angle-bracketed, or quoted name/number or by a plain number`)
	case n < 0:
		// Relative: \g{-1} is the most recently opened group.
		if n = t.groups + n + 1; n <= 0 {
			return pcreAtom{}, &pcreError{start, "reference to non-existent subpattern"}
		}
	}
	return t.numberedRef(start, n), nil
}
