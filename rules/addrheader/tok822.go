package addrheader

import "strings"

// This file is Postfix's RFC 822 address parser (tok822_parse.c,
// tok822_tree.c): a scanner that turns text into a flat list of tokens,
// and a parser that walks the list from right to left, gathers the tokens
// of each address under an address node, moves comments out of the way
// and inserts the commas a list of addresses lacks. Nothing is thrown
// away: what the parser does not understand stays in the list.

// Token types: an operator is its own byte value; the rest count from 256.
const (
	tokAtom       = 256 + iota // a run of ordinary bytes
	tokQuoted                  // "...", or an atom that needs quoting
	tokComment                 // (...), kept in external form
	tokDomLit                  // [...]
	tokAddr                    // a group node: the tokens of one address
	tokStartGroup              // the ':' after the name of a group
)

// opchars stand alone as tokens: RFC 822's specials and the routing
// operators '%' and '!' (and '|', for aliases).
const opchars = "|%!()<>@,;:\\\".[]"

// A tok is a node in a doubly linked list. An address node holds its
// tokens as a sublist (head, tail) whose members point back at it
// (owner). Whether a token has an owner decides whether a space is put
// after it on output (appendSpace), as in Postfix.
type tok struct {
	typ        int
	text       []byte
	prev, next *tok
	head, tail *tok
	owner      *tok
}

// appendList links the list starting at t2 in after t1, gives the
// inserted tokens t1's owner, and returns the last inserted token.
func appendList(t1, t2 *tok) *tok {
	next := t1.next
	t1.next, t2.prev = t2, t1
	t2.owner = t1.owner
	for t2.next != nil {
		t2 = t2.next
		t2.owner = t1.owner
	}
	t2.next = next
	if next != nil {
		next.prev = t2
	}
	return t2
}

// prependList links the list starting at t2 in before t1 and returns the
// last inserted token.
func prependList(t1, t2 *tok) *tok {
	prev := t1.prev
	if prev != nil {
		prev.next = t2
	}
	t2.prev = prev
	t2.owner = t1.owner
	for t2.next != nil {
		t2 = t2.next
		t2.owner = t1.owner
	}
	t2.next, t1.prev = t1, t2
	return t2
}

// cutBefore splits the list before tp.
func cutBefore(tp *tok) {
	if prev := tp.prev; prev != nil {
		prev.next, tp.prev = nil, nil
	}
}

// unlink takes tp out of its list and returns its predecessor.
func unlink(tp *tok) *tok {
	prev, next := tp.prev, tp.next
	if prev != nil {
		prev.next = next
	}
	if next != nil {
		next.prev = prev
	}
	tp.prev, tp.next = nil, nil
	return prev
}

// subAppend appends the list starting at t2 to t1's sublist.
func subAppend(t1, t2 *tok) {
	if t1.head != nil {
		t1.tail = appendList(t1.tail, t2)
		return
	}
	t1.head = t2
	t2.owner = t1
	for t2.next != nil {
		t2 = t2.next
		t2.owner = t1
	}
	t1.tail = t2
}

func isLWSP(c byte) bool   { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
func isOpchar(c byte) bool { return strings.IndexByte(opchars, c) >= 0 }
func isCntrl(c byte) bool  { return c < 0x20 || c == 0x7f }

// scan tokenizes s as tok822_scan_limit does: at most limit tokens when
// limit > 0. It returns the first and last token, nil for none.
func scan(s string, limit int) (first, last *tok) {
	count := 0
	for i := 0; i < len(s); {
		c := s[i]
		i++
		if isLWSP(c) {
			continue
		}
		var tp *tok
		switch {
		case c == '(':
			tp = &tok{typ: tokComment}
			i = scanComment(tp, s, i)
		case c == '[':
			tp = &tok{typ: tokDomLit}
			i = collectSkipLast(tp, s, i, func(c byte) bool { return c != ']' })
		case c == '"':
			tp = &tok{typ: tokQuoted}
			i = collectSkipLast(tp, s, i, func(c byte) bool { return c != '"' })
		case c != '\\' && isOpchar(c):
			tp = &tok{typ: int(c)}
		default:
			tp = &tok{typ: tokAtom}
			// A backslash may start an atom: collect from c itself.
			i = collect(tp, s, i-1, func(c byte) bool { return !isLWSP(c) && !isOpchar(c) })
			quoteAtom(tp)
		}
		if first == nil {
			first, last = tp, tp
		} else {
			last = appendList(last, tp)
		}
		count++
		if limit > 0 && count >= limit {
			break
		}
	}
	return first, last
}

// collect appends to tp's text the bytes from s[i] on while cond holds,
// a backslash escaping the byte after it, white space becoming a space;
// it returns the index of the first byte not taken.
func collect(tp *tok, s string, i int, cond func(byte) bool) int {
	for i < len(s) {
		c := s[i]
		if c == '\\' {
			i++
			if i == len(s) {
				break
			}
			c = s[i]
		} else if !cond(c) {
			break
		}
		if isLWSP(c) {
			c = ' '
		}
		tp.text = append(tp.text, c)
		i++
	}
	return i
}

// collectSkipLast is collect, then steps over the closing delimiter.
func collectSkipLast(tp *tok, s string, i int, cond func(byte) bool) int {
	i = collect(tp, s, i, cond)
	if i < len(s) {
		i++
	}
	return i
}

// quoteAtom makes an atom a quoted string when it holds a byte that would
// need quoting (it can, through backslash escapes). 8-bit bytes are left
// alone.
func quoteAtom(tp *tok) {
	for _, c := range tp.text {
		if c == ' ' || isCntrl(c) || isOpchar(c) {
			tp.typ = tokQuoted
			return
		}
	}
}

// scanComment reads a comment after its '(' into tp, keeping it in
// external form (parentheses and backslashes included); comments nest.
func scanComment(tp *tok, s string, i int) int {
	level := 1
	tp.text = append(tp.text, '(')
	for i < len(s) {
		c := s[i]
		tp.text = append(tp.text, c)
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
			tp.text = append(tp.text, s[i])
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

// parse turns s into a token tree as tok822_parse_limit does, reading at
// most limit tokens when limit > 0. It returns the first top-level token.
func parse(s string, limit int) *tok {
	first, last := scan(s, limit)
	if first == nil {
		return nil
	}
	// Sentinels (type 0) at both ends spare the nil checks.
	head, tail := &tok{}, &tok{}
	head.next, first.prev = first, head
	last.next, tail.prev = tail, last

	// Going leftwards, tp is the token at hand; the tokens of the address
	// being built lie between tp and right.
	state, right, tp := doWord, tail, tail.prev
	for tp.typ != 0 {
		switch {
		case tp.typ == tokComment:
			tp, right = moveComment(tp, right)
			continue
		case tp.typ == ';': // end of a group
			right = group(tp, right, ',')
			state = doGroup | doWord
		case tp.typ == ':' && state&doGroup != 0: // start of a group
			tp.typ = tokStartGroup
			group(tp, right, 0)
			for tp.typ != 0 && tp.typ != ',' { // the group name stays as is
				tp = tp.prev
			}
			right = tp
			continue
		case tp.typ == '>': // end of a <route-addr>
			right = group(tp, right, ',')
			for tp.typ != 0 && tp.typ != '<' {
				if tp.typ == tokComment {
					tp, right = moveComment(tp, right)
					continue
				}
				tp = tp.prev
			}
			group(tp, right, 0)
			for tp.typ != 0 && (tp.typ > 0xff || strings.IndexByte(">;,:", byte(tp.typ)) < 0) {
				tp = tp.prev // the phrase before '<' stays as is
			}
			right = tp
			state |= doWord
			continue
		case tp.typ == tokAtom || tp.typ == tokQuoted || tp.typ == tokDomLit:
			if state&doWord == 0 { // two words in a row: two addresses
				right = group(tp, right, ',').next
			}
			state &^= doWord
		case tp.typ == ',':
			right = group(tp, right, 0)
			state |= doWord
		default:
			state |= doWord
		}
		tp = tp.prev
	}
	group(tp, right, 0)

	var list *tok
	if head.next != tail {
		list = head.next
	}
	cutBefore(head.next)
	cutBefore(tail)
	return list
}

// moveComment moves the comment tp to just before right, out of the
// address being built; it returns the token before the comment's old
// place and the comment as the new right.
func moveComment(tp, right *tok) (*tok, *tok) {
	prev := unlink(tp)
	return prev, prependList(right, tp)
}

// group gathers the tokens strictly between left and right, if any,
// under a new address node and, with a non-zero sync, puts that token (a
// comma) between left and the address node. It returns left.
func group(left, right *tok, sync int) *tok {
	first := left.next
	if left == right || first == right {
		return left
	}
	cutBefore(right)
	cutBefore(first)
	g := &tok{typ: tokAddr}
	subAppend(g, first)
	appendList(left, g)
	// Linked by hand: Postfix's tok822_append walks all of right's list to
	// give it g's owner, which is nil as theirs already is (every token
	// being parsed is top level), and that walk made parsing quadratic.
	g.next, right.prev = right, g
	if sync != 0 {
		appendList(left, &tok{typ: sync})
	}
	return left
}
