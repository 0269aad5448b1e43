// Package tok822 is Postfix's RFC 822 address parser
// (src/global/tok822_parse.c, tok822_tree.c) and the local-part quoting
// it writes addresses with (quote_822_local.c): Scan turns text into a flat list of
// tokens; Parse walks that list from right to left, gathers the tokens of
// each address under an Address token, moves comments out of the way and
// inserts the commas a list of addresses lacks; Internalize and
// Externalize write a token list back. Nothing is thrown away: what the
// parser does not understand stays in the list, next to the addresses.
//
// smtpd's envelope addresses (gateway/command) and cleanup's header
// address rewriting (rules/addrheader) both use it, as in Postfix.
//
// Postfix works on C strings: callers cut the text at a NUL byte first.
package tok822

import "strings"

// Token types. An operator is its own byte value; the rest count from
// 256, above any byte.
const (
	Atom          = 256 + iota // a run of ordinary bytes
	QuotedString               // "...", or an atom that needs quoting
	Comment                    // (...), kept in external form
	DomainLiteral              // [...]
	Address                    // the tokens of one address, as a sublist
	StartGroup                 // the ':' after the name of a group
)

// opchars stand alone as tokens: RFC 822's specials and the routing
// operators '%' and '!' (and '|', for aliases).
const opchars = "|%!()<>@,;:\\\".[]"

// A Token is a node in a doubly linked list. An Address token holds its
// tokens as a sublist (Head, Tail) whose members point back at it
// (Owner); top-level tokens have no owner. Whether a token has an owner
// decides whether a space is put after it on output, as in Postfix.
type Token struct {
	Type int // an operator byte, or Atom ... StartGroup
	// Text is an atom's, quoted string's or domain literal's text in
	// internal form (no quotes, brackets or backslashes), a comment's in
	// external form (parentheses and backslashes kept).
	Text       string
	Prev, Next *Token
	Head, Tail *Token
	Owner      *Token
}

// An Arena hands out the tokens of the scans and parses made through it
// from blocks instead of one heap object per token: a scan counts its
// tokens first and takes them from one block. A block stays in memory as
// long as any of its tokens is referenced. The zero Arena is ready for
// use; it is not safe for concurrent use.
type Arena struct {
	block   []Token
	scratch []byte // text being unescaped
}

// reserve makes room for n more tokens.
func (a *Arena) reserve(n int) {
	if cap(a.block)-len(a.block) < n {
		a.block = make([]Token, 0, n)
	}
}

// alloc returns a new token of type typ. Beyond the room reserved, tokens
// come in blocks of 8 (a parse may add more than it reserved).
func (a *Arena) alloc(typ int) *Token {
	if len(a.block) == cap(a.block) {
		a.block = make([]Token, 0, 8)
	}
	a.block = a.block[:len(a.block)+1]
	tp := &a.block[len(a.block)-1]
	tp.Type = typ
	return tp
}

// appendList links the list starting at t2 in after t1, gives the
// inserted tokens t1's owner, and returns the last inserted token
// (tok822_append).
func appendList(t1, t2 *Token) *Token {
	next := t1.Next
	t1.Next, t2.Prev = t2, t1
	t2.Owner = t1.Owner
	for t2.Next != nil {
		t2 = t2.Next
		t2.Owner = t1.Owner
	}
	t2.Next = next
	if next != nil {
		next.Prev = t2
	}
	return t2
}

// prependList links the list starting at t2 in before t1 and returns the
// last inserted token (tok822_prepend).
func prependList(t1, t2 *Token) *Token {
	prev := t1.Prev
	if prev != nil {
		prev.Next = t2
	}
	t2.Prev = prev
	t2.Owner = t1.Owner
	for t2.Next != nil {
		t2 = t2.Next
		t2.Owner = t1.Owner
	}
	t2.Next, t1.Prev = t1, t2
	return t2
}

// cutBefore splits the list before tp.
func cutBefore(tp *Token) {
	if prev := tp.Prev; prev != nil {
		prev.Next, tp.Prev = nil, nil
	}
}

// unlink takes tp out of its list and returns its predecessor.
func unlink(tp *Token) *Token {
	prev, next := tp.Prev, tp.Next
	if prev != nil {
		prev.Next = next
	}
	if next != nil {
		next.Prev = prev
	}
	tp.Prev, tp.Next = nil, nil
	return prev
}

// subAppend appends the list starting at t2 to t1's sublist.
func subAppend(t1, t2 *Token) {
	if t1.Head != nil {
		t1.Tail = appendList(t1.Tail, t2)
		return
	}
	t1.Head = t2
	t2.Owner = t1
	for t2.Next != nil {
		t2 = t2.Next
		t2.Owner = t1
	}
	t1.Tail = t2
}

func isLWSP(c byte) bool   { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
func isOpchar(c byte) bool { return strings.IndexByte(opchars, c) >= 0 }
func isCntrl(c byte) bool  { return c < 0x20 || c == 0x7f }
