package dnsbl

import (
	"fmt"
	"net/netip"
)

// Filter is a reply filter: the A records of a listing that count, as
// Postfix's ip_match patterns write them. Each of the four fields is a
// number or a "[...]" set of ";"-separated numbers and "n..m" ranges:
// "127.0.0.2", "127.0.0.[2..11]", "127.0.[0..255].[2;4;10..12]"; brackets
// around the whole pattern are allowed ("[127.0.0.[2;3]]").
type Filter struct {
	text   string
	fields [4][]octetRange
}

// octetRange is one number (lo == hi) or range of a field.
type octetRange struct{ lo, hi byte }

// String is the filter as written.
func (f *Filter) String() string { return f.text }

// Match reports whether addr, an A record, passes the filter. Other
// addresses never do.
func (f *Filter) Match(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.Is4() {
		return false
	}
	b := addr.As4()
	for i, field := range f.fields {
		in := false
		for _, r := range field {
			if b[i] >= r.lo && b[i] <= r.hi {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// Token kinds of the filter syntax besides single characters.
const (
	tokEOF    = -1
	tokNumber = -2 // a decimal number 0..255
	tokBadNum = -3 // a decimal number above 255
)

// filterLexer splits a pattern into numbers and single characters, and
// says where each token was, so errors can point at it as Postfix does:
// `need "." at "1.2.3>;<4"`.
type filterLexer struct {
	s          string
	pos, start int
	val        int
}

func (l *filterLexer) next() int {
	l.start = l.pos
	if l.pos == len(l.s) {
		return tokEOF
	}
	c := l.s[l.pos]
	if c < '0' || c > '9' {
		l.pos++
		return int(c)
	}
	tok, v := tokNumber, 0
	for ; l.pos < len(l.s) && l.s[l.pos] >= '0' && l.s[l.pos] <= '9'; l.pos++ {
		if v = v*10 + int(l.s[l.pos]-'0'); v > 255 {
			tok, v = tokBadNum, 256
		}
	}
	l.val = v
	return tok
}

// errorf is an error with the token just read marked in the pattern.
func (l *filterLexer) errorf(format string, args ...any) error {
	return fmt.Errorf(format+" at \"%s>%s<%s\"", append(args, l.s[:l.start], l.s[l.start:l.pos], l.s[l.pos:])...)
}

// ParseFilter parses a reply filter. Errors read as Postfix's ("need
// decimal number 0..255 or \"[\" at \"1.2.>300<.4\"").
func ParseFilter(pattern string) (*Filter, error) {
	f := &Filter{text: pattern}
	s := pattern
	if len(s) > 0 && s[0] == '[' {
		end := closingBracket(s)
		if end < 0 {
			return nil, fmt.Errorf("missing \"]\" character")
		}
		if end == len(s)-1 {
			s = s[1:end]
		}
	}
	if s == "" {
		return nil, fmt.Errorf("empty address pattern")
	}
	l := &filterLexer{s: s}
	for i := range f.fields {
		switch l.next() {
		case tokNumber:
			f.fields[i] = []octetRange{{byte(l.val), byte(l.val)}}
		case '[':
			set, err := l.set()
			if err != nil {
				return nil, err
			}
			f.fields[i] = set
		default:
			return nil, l.errorf("need decimal number 0..255 or \"[\"")
		}
		if i == 3 {
			if l.pos < len(s) {
				l.next()
				return nil, l.errorf("garbage after pattern")
			}
			break
		}
		if l.next() != '.' {
			return nil, l.errorf("need \".\"")
		}
	}
	return f, nil
}

// set parses the inside of "[...]" after the "[".
func (l *filterLexer) set() ([]octetRange, error) {
	var set []octetRange
	for {
		if l.next() != tokNumber {
			return nil, l.errorf("need decimal number 0..255")
		}
		lo := l.val
		tok := l.next()
		if tok == '.' {
			if l.next() != '.' || l.next() != tokNumber || lo > l.val {
				return nil, l.errorf("numeric range error")
			}
			set = append(set, octetRange{byte(lo), byte(l.val)})
			tok = l.next()
		} else {
			set = append(set, octetRange{byte(lo), byte(lo)})
		}
		switch tok {
		case ';':
			continue
		case ']':
			return set, nil
		}
		return nil, l.errorf("need \";\" or \"]\"")
	}
}

// closingBracket gives the index of the "]" that closes the "[" at s[0],
// or -1.
func closingBracket(s string) int {
	level := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			level++
		case ']':
			if level--; level == 0 {
				return i
			}
		}
	}
	return -1
}
