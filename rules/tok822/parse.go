package tok822

import "strings"

// Scan tokenizes s as tok822_scan_limit does, reading at most limit
// tokens when limit > 0 (0 means no limit). It returns the first and last
// token, nil for text without tokens. The tokens have no owner.
func Scan(s string, limit int) (first, last *Token) {
	return new(Arena).Scan(s, limit)
}

// Parse turns s into a token tree as tok822_parse_limit does, reading at
// most limit tokens when limit > 0 (0 means no limit, as tok822_parse).
// It returns the first top-level token, nil for text without tokens.
func Parse(s string, limit int) *Token {
	return new(Arena).Parse(s, limit)
}

// Scan is the package's Scan with the tokens taken from a.
func (a *Arena) Scan(s string, limit int) (first, last *Token) {
	n, _ := count(s, limit)
	a.reserve(n)
	return a.scan(s, limit)
}

// count returns how many tokens a scan of s reads, and how many of them
// are ',', ';' or '>', after each of which the parser may start an
// address.
func count(s string, limit int) (n, separators int) {
	for i := 0; limit <= 0 || n < limit; n++ {
		typ, _, _, next := lex(s, i)
		if typ == 0 {
			break
		}
		if typ == ',' || typ == ';' || typ == '>' {
			separators++
		}
		i = next
	}
	return n, separators
}

func (a *Arena) scan(s string, limit int) (first, last *Token) {
	for i, n := 0, 0; limit <= 0 || n < limit; n++ {
		typ, start, end, next := lex(s, i)
		if typ == 0 {
			break
		}
		i = next
		tp := a.alloc(typ)
		switch typ {
		case Comment:
			tp.Text = s[start:end]
		case QuotedString, DomainLiteral:
			tp.Text = a.decode(s[start:end])
		case Atom:
			tp.Text = a.decode(s[start:end])
			if needsQuoting(tp.Text) {
				tp.Type = QuotedString
			}
		}
		if first == nil {
			first, last = tp, tp
		} else {
			last = appendList(last, tp)
		}
	}
	return first, last
}

// lex finds the token that starts at or after s[i], as tok822_scan_limit
// does: its type (0 for none), its text s[start:end], and the index after
// it. A comment's text is its external form; the text of the others is
// still to be decoded.
func lex(s string, i int) (typ, start, end, next int) {
	for i < len(s) && isLWSP(s[i]) {
		i++
	}
	if i == len(s) {
		return 0, i, i, i
	}
	switch c := s[i]; {
	case c == '(':
		end = skipComment(s, i+1)
		return Comment, i, end, end
	case c == '[':
		end = skipRun(s, i+1, func(c byte) bool { return c != ']' })
		return DomainLiteral, i + 1, end, min(end+1, len(s))
	case c == '"':
		end = skipRun(s, i+1, func(c byte) bool { return c != '"' })
		return QuotedString, i + 1, end, min(end+1, len(s))
	case c != '\\' && isOpchar(c):
		return int(c), i, i + 1, i + 1
	default: // an atom, which may start with a backslash
		end = skipRun(s, i, func(c byte) bool { return !isLWSP(c) && !isOpchar(c) })
		return Atom, i, end, end
	}
}

// skipRun returns the index of the first byte from s[i] on for which cond
// does not hold, a backslash protecting the byte after it, as Postfix's
// COLLECT reads. A backslash at the very end is taken.
func skipRun(s string, i int, cond func(byte) bool) int {
	for i < len(s) {
		if c := s[i]; c == '\\' {
			if i++; i == len(s) {
				break
			}
		} else if !cond(c) {
			break
		}
		i++
	}
	return i
}

// decode turns the bytes of an atom, quoted string or domain literal into
// its text as COLLECT does: a backslash is dropped and the byte after it
// kept (a backslash at the end goes), white space becomes a space. Text
// with neither is s itself; only the rest is copied.
func (a *Arena) decode(s string) string {
	if strings.IndexByte(s, '\\') < 0 && strings.IndexAny(s, "\t\r\n") < 0 {
		return s
	}
	b := a.scratch[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			if i++; i == len(s) {
				break
			}
			c = s[i]
		}
		if isLWSP(c) {
			c = ' '
		}
		b = append(b, c)
	}
	a.scratch = b
	return string(b)
}

// needsQuoting tells whether an atom holds a byte that would need quoting
// (it can, through backslash escapes), as tok822_quote_atom. 8-bit bytes
// are left alone.
func needsQuoting(text string) bool {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c == ' ' || isCntrl(c) || isOpchar(c) {
			return true
		}
	}
	return false
}

// skipComment returns the index after a comment whose '(' is s[i-1], as
// tok822_comment reads it: comments nest, and a backslash protects the
// byte after it. An unterminated comment runs to the end of s.
func skipComment(s string, i int) int {
	for level := 1; i < len(s); {
		c := s[i]
		i++
		if c == '(' {
			level++
		} else if c == ')' {
			if level--; level == 0 {
				break
			}
		} else if c == '\\' {
			if i == len(s) {
				break
			}
			i++
		}
	}
	return i
}

// Parser states.
const (
	doWord  = 1 << iota // a word may come next without starting an address
	doGroup             // inside "name: ...;"
)

// Parse is the package's Parse with the tokens taken from a.
func (a *Arena) Parse(s string, limit int) *Token {
	n, separators := count(s, limit)
	if n == 0 {
		return nil
	}
	// The sentinels, and an address before each separator and after the
	// last; a missing comma adds two tokens more, from a block of their own.
	a.reserve(n + 3 + separators)
	first, last := a.scan(s, limit)
	// Sentinels (type 0) at both ends spare the nil checks.
	head, tail := a.alloc(0), a.alloc(0)
	head.Next, first.Prev = first, head
	last.Next, tail.Prev = tail, last

	// Going leftwards, tp is the token at hand; the tokens of the address
	// being built lie between tp and right.
	state, right, tp := doWord, tail, tail.Prev
	for tp.Type != 0 {
		switch {
		case tp.Type == Comment:
			tp, right = moveComment(tp, right)
			continue
		case tp.Type == ';': // end of a group
			right = a.group(tp, right, ',')
			state = doGroup | doWord
		case tp.Type == ':' && state&doGroup != 0: // start of a group
			tp.Type = StartGroup
			a.group(tp, right, 0)
			for tp.Type != 0 && tp.Type != ',' { // the group name stays as is
				tp = tp.Prev
			}
			right = tp
			continue
		case tp.Type == '>': // end of a <route-addr>
			right = a.group(tp, right, ',')
			for tp.Type != 0 && tp.Type != '<' {
				if tp.Type == Comment {
					tp, right = moveComment(tp, right)
					continue
				}
				tp = tp.Prev
			}
			a.group(tp, right, 0)
			for tp.Type != 0 && (tp.Type > 0xff || strings.IndexByte(">;,:", byte(tp.Type)) < 0) {
				tp = tp.Prev // the phrase before '<' stays as is
			}
			right = tp
			state |= doWord
			continue
		case tp.Type == Atom || tp.Type == QuotedString || tp.Type == DomainLiteral:
			if state&doWord == 0 { // two words in a row: two addresses
				right = a.group(tp, right, ',').Next
			}
			state &^= doWord
		case tp.Type == ',':
			right = a.group(tp, right, 0)
			state |= doWord
		default:
			state |= doWord
		}
		tp = tp.Prev
	}
	a.group(tp, right, 0)

	var list *Token
	if head.Next != tail {
		list = head.Next
	}
	cutBefore(head.Next)
	cutBefore(tail)
	return list
}

// moveComment moves the comment tp to just before right, out of the
// address being built; it returns the token before the comment's old
// place and the comment as the new right.
func moveComment(tp, right *Token) (*Token, *Token) {
	prev := unlink(tp)
	return prev, prependList(right, tp)
}

// group gathers the tokens strictly between left and right, if any,
// under a new Address token and, with a non-zero sync, puts that token (a
// comma) between left and the address. It returns left (tok822_group).
func (a *Arena) group(left, right *Token, sync int) *Token {
	first := left.Next
	if left == right || first == right {
		return left
	}
	cutBefore(right)
	cutBefore(first)
	g := a.alloc(Address)
	subAppend(g, first)
	appendList(left, g)
	// Linked by hand: Postfix's tok822_append walks all of right's list to
	// give it g's owner, which is nil as theirs already is (every token
	// being parsed is top level), and that walk made parsing quadratic.
	g.Next, right.Prev = right, g
	if sync != 0 {
		appendList(left, a.alloc(sync))
	}
	return left
}
