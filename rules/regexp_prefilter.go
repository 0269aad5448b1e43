package rules

import (
	"regexp/syntax"
	"slices"
	"strings"
)

// A table of a few hundred patterns is tried rule by rule on every header
// and body line, and almost never matches. Most patterns contain a literal
// that any match must contain ("-offer-", "X-Campaign-"), often at the start
// of the key; testing for that literal costs a fraction of running the
// engine, so each pattern carries such a test, found at load, and the
// engine runs only for keys that pass it. The test only ever rules a match
// out: a key that passes is decided by the engine.

// prefilter is a necessary condition for a pattern to match; the zero value
// lets every key through. Before looking for inner, it checks that each
// pair of adjacent bytes of inner occurs in the key (see pairSet): a few
// bit tests, where a search of a line for each of many literals that share
// a beginning ("pharmacy-deal-1", "pharmacy-deal-2", ...) costs a
// comparison at every candidate position.
type prefilter struct {
	prefix literal // the key starts with it
	inner  literal // the key contains it
	pairs  []uint16
}

func newPrefilter(prefix, inner literal) prefilter {
	p := prefilter{prefix: prefix, inner: inner}
	lower := asciiLower(inner.text)
	for i := 1; i < len(lower); i++ {
		if h := pairHash(lower[i-1], lower[i]); !slices.Contains(p.pairs, h) {
			p.pairs = append(p.pairs, h)
		}
	}
	return p
}

// literal is ASCII text that a match must contain. With fold it is in
// lower case and compared with the key's ASCII lower case. Only ASCII is
// taken: a key in matchable form (toMatchable) has only ASCII characters and
// the caseless runes standing for bytes 0x80-0xFF, so ASCII case folding
// is all the folding the engines can do on it (Go would fold 'k' with the
// Kelvin sign, which no matchable key contains).
type literal struct {
	text string
	fold bool
}

// isPrefix reports whether s starts with l, without the lower-case copy
// of a key that a search needs.
func (l literal) isPrefix(s string) bool {
	if !l.fold || len(s) < len(l.text) {
		return strings.HasPrefix(s, l.text)
	}
	for i := 0; i < len(l.text); i++ {
		if lowerByte(s[i]) != l.text[i] {
			return false
		}
	}
	return true
}

// mayMatch reports whether key passes the test.
func (p *prefilter) mayMatch(key *lookupKey) bool {
	if p.prefix.text != "" && !p.prefix.isPrefix(key.text) {
		return false
	}
	if p.inner.text == "" {
		return true
	}
	if len(p.pairs) > 0 {
		set := key.pairSet()
		for _, h := range p.pairs {
			if set[h/64]&(1<<(h%64)) == 0 {
				return false
			}
		}
	}
	return strings.Contains(key.form(p.inner.fold), p.inner.text)
}

// pairSet is a set of hashed pairs of adjacent bytes in ASCII lower case:
// a pair absent from a key's set is absent from the key, in either case.
type pairSet [1024 / 64]uint64

func pairHash(a, b byte) uint16 {
	return uint16((uint32(a)<<8 | uint32(b)) * 0x9E3779B1 >> 22)
}

// lookupKey is a key in matchable form and, made when a prefilter first
// needs them, its ASCII lower case and its pairSet.
type lookupKey struct {
	text   string
	lower  string
	folded bool
	pairs  pairSet
	paired bool
}

func (k *lookupKey) pairSet() *pairSet {
	if !k.paired {
		for i := 1; i < len(k.text); i++ {
			h := pairHash(lowerByte(k.text[i-1]), lowerByte(k.text[i]))
			k.pairs[h/64] |= 1 << (h % 64)
		}
		k.paired = true
	}
	return &k.pairs
}

func (k *lookupKey) form(fold bool) string {
	if !fold {
		return k.text
	}
	if !k.folded {
		k.lower, k.folded = asciiLower(k.text), true
	}
	return k.lower
}

// asciiLower lower-cases A-Z only; other bytes, including those of
// multi-byte runes, stay as they are.
func asciiLower(s string) string {
	i := 0
	for i < len(s) && !isUpper(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if isUpper(b[i]) {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func lowerByte(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// literalRun collects consecutive literal characters of a pattern.
type literalRun struct {
	b    strings.Builder
	fold bool
}

// add appends c, matched with or without case.
func (r *literalRun) add(c byte, fold bool) {
	if fold && !r.fold && r.b.Len() > 0 {
		// A run that mixes both is tested caselessly: weaker, still
		// necessary.
		s := asciiLower(r.b.String())
		r.b.Reset()
		r.b.WriteString(s)
	}
	r.fold = r.fold || fold
	if r.fold && isUpper(c) {
		c += 'a' - 'A'
	}
	r.b.WriteByte(c)
}

// end returns the run and starts a new one.
func (r *literalRun) end() literal {
	l := literal{text: r.b.String(), fold: r.fold}
	r.b.Reset()
	r.fold = false
	return l
}

// longer returns the longer of a and b, a on a tie.
func longer(a, b literal) literal {
	if len(b.text) > len(a.text) {
		return b
	}
	return a
}

// erePrefilter finds the prefilter of a parsed regexp: pattern (see
// compileERE): the literal a match starts with when the pattern starts with
// ^ (outside REG_NEWLINE), and the longest literal every match contains
// after that.
func erePrefilter(re *syntax.Regexp) prefilter {
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return newPrefilter(literal{}, ereRequired(re))
	}
	var run literalRun
	rest := re.Sub[1:]
	for len(rest) > 0 && rest[0].Op == syntax.OpLiteral && ereLiteral(&run, rest[0]) {
		rest = rest[1:]
	}
	return newPrefilter(run.end(), ereRequired(&syntax.Regexp{Op: syntax.OpConcat, Sub: rest}))
}

// ereLiteral adds the characters of an OpLiteral to run up to the first
// non-ASCII one and reports whether it took them all.
func ereLiteral(run *literalRun, re *syntax.Regexp) bool {
	for _, c := range re.Rune {
		if c >= 0x80 {
			return false
		}
		run.add(byte(c), re.Flags&syntax.FoldCase != 0)
	}
	return true
}

// ereRequired returns the longest literal that every match of re contains.
func ereRequired(re *syntax.Regexp) literal {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpConcat:
		subs := re.Sub
		if re.Op == syntax.OpLiteral {
			subs = []*syntax.Regexp{re}
		}
		var best literal
		var run literalRun
		for _, sub := range subs {
			if sub.Op == syntax.OpLiteral {
				for _, c := range sub.Rune {
					if c >= 0x80 {
						best = longer(best, run.end())
						continue
					}
					run.add(byte(c), sub.Flags&syntax.FoldCase != 0)
				}
				continue
			}
			best = longer(best, run.end())
			best = longer(best, ereRequired(sub))
		}
		return longer(best, run.end())
	case syntax.OpCapture, syntax.OpPlus:
		return ereRequired(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return ereRequired(re.Sub[0])
		}
	}
	return literal{}
}
