package command

import "strings"

// This file is Postfix's RFC 822 address parser (tok822): a scanner that
// turns text into a flat list of tokens, and a parser that walks that
// list from right to left and gathers the tokens of each address under an
// address node, moving comments out of the way and inserting the commas
// that a list of addresses lacks. Nothing is thrown away: text the parser
// does not understand stays in the list, next to the address nodes.

// Token types. An operator is its own byte value; the rest count from 256,
// above any byte.
const (
	tokAtom          = 256 + iota // a run of ordinary bytes
	tokQuoted                     // "...", or an atom that needs quoting
	tokComment                    // (...), parentheses and backslashes kept
	tokDomainLiteral              // [...]
	tokAddress                    // a group: the tokens of one address
	tokStartGroup                 // the ':' after the name of a group
)

// operators are the bytes that stand alone as tokens: RFC 822's specials
// and the routing operators '%' and '!' (and '|', for aliases).
const operators = "|%!()<>@,;:\\\".[]"

// A node is a token in a doubly linked list. An address node holds its
// tokens as a sublist (head, tail), whose members point back at it
// (owner); top-level nodes have no owner.
type node struct {
	typ        int
	text       []byte // atom, quoted string, comment, domain literal
	prev, next *node
	head, tail *node
	owner      *node
}

// insertAfter links the list that starts at t2 in after t1 and returns its
// last node; the inserted nodes take t1's owner.
func insertAfter(t1, t2 *node) *node {
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

// insertBefore links the single node t2 in before t1 and returns it.
func insertBefore(t1, t2 *node) *node {
	prev := t1.prev
	if prev != nil {
		prev.next = t2
	}
	t2.prev, t2.next, t2.owner = prev, t1, t1.owner
	t1.prev = t2
	return t2
}

// unlink takes tp out of its list and returns the node that preceded it.
func unlink(tp *node) *node {
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

// cutBefore splits the list in front of tp.
func cutBefore(tp *node) {
	if prev := tp.prev; prev != nil {
		prev.next, tp.prev = nil, nil
	}
}

// isLWSP is RFC 822 linear white space: space, tab, CR, LF.
func isLWSP(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isOperator(c byte) bool { return strings.IndexByte(operators, c) >= 0 }

// scan splits s into tokens and returns the first and last, nil for text
// without tokens.
func scan(s string) (first, last *node) {
	for i := 0; i < len(s); {
		c := s[i]
		i++
		var tp *node
		switch {
		case isLWSP(c):
			continue
		case c == '(':
			tp = &node{typ: tokComment}
			i = scanComment(tp, s, i)
		case c == '[':
			tp = &node{typ: tokDomainLiteral}
			i = collect(tp, s, i, func(c byte) bool { return c == ']' })
			if i < len(s) {
				i++ // the ']'
			}
		case c == '"':
			tp = &node{typ: tokQuoted}
			i = collect(tp, s, i, func(c byte) bool { return c == '"' })
			if i < len(s) {
				i++ // the '"'
			}
		case c != '\\' && isOperator(c):
			tp = &node{typ: int(c)}
		default: // an atom, which may start with a backslash
			tp = &node{typ: tokAtom}
			i = collect(tp, s, i-1, func(c byte) bool { return isLWSP(c) || isOperator(c) })
			if needsQuoting(tp.text) {
				tp.typ = tokQuoted
			}
		}
		if first == nil {
			first, last = tp, tp
		} else {
			last = insertAfter(last, tp)
		}
	}
	return first, last
}

// collect appends s[i:] to the token's text up to the first byte that
// stops it, and returns the index of that byte. A backslash makes the
// next byte ordinary and is dropped; white space becomes a space. A
// backslash at the very end is dropped too.
func collect(tp *node, s string, i int, stop func(byte) bool) int {
	for i < len(s) {
		c := s[i]
		if c == '\\' {
			if i++; i == len(s) {
				break
			}
			c = s[i]
		} else if stop(c) {
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

// needsQuoting reports whether an atom holds a byte that only a quoted
// string may hold: a space, an ASCII control or an operator (put there
// with a backslash). 8-bit bytes are left alone.
func needsQuoting(text []byte) bool {
	for _, c := range text {
		if c == ' ' || c < 0x20 || c == 0x7f || isOperator(c) {
			return true
		}
	}
	return false
}

// scanComment reads a comment whose '(' was just read: comments nest, and
// a backslash protects the next byte. The text keeps its external form,
// parentheses and backslashes included. An unterminated comment runs to
// the end of s.
func scanComment(tp *node, s string, i int) int {
	tp.text = append(tp.text, '(')
	for level := 1; i < len(s); {
		c := s[i]
		tp.text = append(tp.text, c)
		i++
		switch c {
		case '(':
			level++
		case ')':
			if level--; level == 0 {
				return i
			}
		case '\\':
			if i == len(s) {
				return i
			}
			tp.text = append(tp.text, s[i])
			i++
		}
	}
	return i
}

// Parser states.
const (
	doWord  = 1 << iota // a word may come next (going leftwards)
	doGroup             // inside "name: address, ...;"
)

// parse turns s into a token tree: a top-level list in which each address
// is an address node, next to the text that is not part of any address
// (commas, comments, phrases, group names, stray operators).
func parse(s string) *node {
	first, last := scan(s)
	if first == nil {
		return nil
	}
	// Sentinels (type 0) at both ends spare the nil checks.
	head, tail := &node{}, &node{}
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
		case tp.typ == tokAtom || tp.typ == tokQuoted || tp.typ == tokDomainLiteral:
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

	list := head.next
	cutBefore(list)
	cutBefore(tail)
	if list == tail {
		return nil
	}
	return list
}

// moveComment moves the comment tp to just before right, out of the
// address being built, and returns the token before the comment's old
// place and the new right.
func moveComment(tp, right *node) (*node, *node) {
	prev := unlink(tp)
	return prev, insertBefore(right, tp)
}

// group gathers the tokens strictly between left and right under a new
// address node, if there are any, and then, with a non-zero sync, puts a
// sync token (a comma) between left and the address node. It returns
// left.
func group(left, right *node, sync int) *node {
	first := left.next
	if left == right || first == right {
		return left
	}
	last := right.prev
	left.next, first.prev = nil, nil
	last.next, right.prev = nil, nil

	g := &node{typ: tokAddress, head: first, tail: last, owner: left.owner}
	for n := first; n != nil; n = n.next {
		n.owner = g
	}
	// Every node in the list being parsed is top level, so linking the
	// group in needs no change of owner to its right (Postfix walks the
	// rest of the list to set the same nil owner again).
	left.next, g.prev = g, left
	g.next, right.prev = right, g
	if sync != 0 {
		insertAfter(left, &node{typ: sync})
	}
	return left
}

// internalize appends the internal form of a token list to b: quoted
// strings lose their quotes and backslashes, domain literals keep their
// brackets, comments keep their external form. A space separates two
// top-level words, as well as what follows a comma or group start and
// what precedes a '<'; the tokens of an address are never separated.
func internalize(b []byte, list *node) []byte {
	for tp := list; tp != nil; tp = tp.next {
		switch tp.typ {
		case tokAddress:
			b = internalize(b, tp.head)
		case tokComment, tokAtom, tokQuoted:
			b = append(b, tp.text...)
		case tokDomainLiteral:
			b = append(b, '[')
			b = append(b, tp.text...)
			b = append(b, ']')
		case tokStartGroup:
			b = append(b, ':')
		default:
			b = append(b, byte(tp.typ))
		}
		if spaceAfter(tp) {
			b = append(b, ' ')
		}
	}
	return b
}

// spaceAfter reports whether internalize puts a space after tp.
func spaceAfter(tp *node) bool {
	next := tp.next
	if next == nil || tp.owner != nil {
		return false
	}
	if tp.typ == ',' || tp.typ == tokStartGroup || next.typ == '<' {
		return true
	}
	return isWord(tp) && isWord(next)
}

func isWord(tp *node) bool {
	switch tp.typ {
	case tokAtom, tokQuoted, tokComment, tokDomainLiteral, tokAddress:
		return true
	}
	return false
}
