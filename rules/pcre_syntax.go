package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// pcreToNET translates a PCRE2 pattern, as Postfix compiles it (no UTF, "C"
// locale, the table's flags), into regexp2's .NET syntax for keys in
// matchable form. Nothing that depends on an option is left for regexp2 to
// read its own way: ^, $, '.', quantifier greediness, extended-mode blanks
// and every character class are written out explicitly, each class as the
// set of bytes PCRE2 would match. Only case-insensitivity is passed on as
// (?i)/(?-i), whose scope is the same in both engines.
//
// What regexp2 cannot run the same way (recursion, subroutine calls,
// branch reset groups, \K, backtracking verbs, Unicode properties on bytes,
// ...) is refused, so a table never loads with a rule that decides
// differently from Postfix. Error texts are PCRE2's where PCRE2 also
// refuses the pattern.
func pcreToNET(src string, flags patternFlags) (pcreTranslation, error) {
	t := &pcreTranslator{src: src, dollarEndOnly: flags&flagDollarEndOnly != 0, names: map[string]bool{}}
	st := pcreState{
		caseless:  flags&flagCaseless != 0,
		multiline: flags&flagMultiline != 0,
		dotall:    flags&flagDotall != 0,
		extended:  flags&flagExtended != 0,
		ungreedy:  flags&flagUngreedy != 0,
	}
	body, _, lits, err := t.alternation(&st)
	if err != nil {
		return pcreTranslation{}, err
	}
	if t.pos < len(src) {
		return pcreTranslation{}, t.errorf("unmatched closing parenthesis")
	}
	for _, r := range t.refs {
		if r.group > t.groups || r.name != "" && !t.names[r.name] {
			return pcreTranslation{}, &pcreError{r.offset, "reference to non-existent subpattern"}
		}
	}
	var b strings.Builder
	if flags&flagCaseless != 0 {
		b.WriteString("(?i)")
	}
	if flags&flagAnchored != 0 {
		// PCRE2_ANCHORED: a match may only start at the start of the key.
		b.WriteString(`\A(?:` + body + ")")
	} else {
		b.WriteString(body)
	}
	pre := newPrefilter(literal{}, lits.longest())
	if lits.anchored || flags&flagAnchored != 0 {
		pre = newPrefilter(lits.lead, lits.rest)
	}
	return pcreTranslation{pattern: b.String(), groups: t.groups, pre: pre}, nil
}

// pcreTranslation is a pattern in regexp2 syntax, its number of capture
// groups and its prefilter.
type pcreTranslation struct {
	pattern string
	groups  int
	pre     prefilter
}

// pcreError is a load error in PCRE2's words, at a byte offset of the
// pattern, as Postfix prints it.
type pcreError struct {
	offset int
	msg    string
}

func (e *pcreError) Error() string {
	return fmt.Sprintf("error in regex at offset %d: %s", e.offset, e.msg)
}

// pcreState holds the options that inline settings such as (?i) change;
// a group's changes end with the group.
type pcreState struct {
	caseless, multiline, dotall, extended, ungreedy, noAutoCapture bool
}

// pcreMaxNesting is PCRE2's default parenthesis nesting limit.
const pcreMaxNesting = 250

type pcreTranslator struct {
	src           string
	pos           int
	dollarEndOnly bool // PCRE2_DOLLAR_ENDONLY, set only by the E flag
	quoting       bool // inside \Q...\E
	groups        int  // capture groups opened so far
	names         map[string]bool
	refs          []pcreRef // back references, checked once all groups are known
	depth         int
}

// pcreRef is a back reference or a condition on a group.
type pcreRef struct {
	offset int
	group  int
	name   string
}

func (t *pcreTranslator) errorf(format string, args ...any) error {
	return &pcreError{t.pos, fmt.Sprintf(format, args...)}
}

func (t *pcreTranslator) unsupported(what string) error {
	return &pcreError{t.pos, "postgate's pcre: tables do not support " + what}
}

func (t *pcreTranslator) peek(i int) byte {
	if t.pos+i < len(t.src) {
		return t.src[t.pos+i]
	}
	return 0
}

// alternation translates branches up to an unmatched ')' or the end. It
// returns the fixed length of each branch, -1 where it varies, and the
// literals every match contains (none when there are several branches).
func (t *pcreTranslator) alternation(st *pcreState) (string, []int, pcreLiterals, error) {
	var b strings.Builder
	var lens []int
	var lits pcreLiterals
	for {
		out, n, l, err := t.sequence(st)
		if err != nil {
			return "", nil, pcreLiterals{}, err
		}
		b.WriteString(out)
		lens = append(lens, n)
		if len(lens) == 1 {
			lits = l
		} else {
			lits = pcreLiterals{}
		}
		if t.pos >= len(t.src) || t.src[t.pos] != '|' {
			return b.String(), lens, lits, nil
		}
		t.pos++
		b.WriteByte('|')
	}
}

// pcreLiterals are the literals every match of a branch contains, for its
// prefilter: lead is the one it starts with (after \A when anchored), rest
// the longest of the others.
type pcreLiterals struct {
	lead, rest literal
	anchored   bool
}

func (l pcreLiterals) longest() literal { return longer(l.lead, l.rest) }

// sequence translates one branch: atoms, each with its quantifier.
func (t *pcreTranslator) sequence(st *pcreState) (string, int, pcreLiterals, error) {
	var b strings.Builder
	length := 0
	var lits pcreLiterals
	var run literalRun
	leading := true // run is where the branch starts
	endRun := func() {
		l := run.end()
		if leading {
			lits.lead, leading = l, false
		} else {
			lits.rest = longer(lits.rest, l)
		}
	}
	for first := true; ; first = false {
		if err := t.skipIgnored(st); err != nil {
			return "", 0, pcreLiterals{}, err
		}
		if t.pos >= len(t.src) || !t.quoting && (t.src[t.pos] == '|' || t.src[t.pos] == ')') {
			endRun()
			return b.String(), length, lits, nil
		}
		a, err := t.atom(st)
		if err != nil {
			return "", 0, pcreLiterals{}, err
		}
		if err := t.skipIgnored(st); err != nil {
			return "", 0, pcreLiterals{}, err
		}
		qStart := t.pos
		q, lo, hi, ok, err := t.quantifier(st)
		if err != nil {
			return "", 0, pcreLiterals{}, err
		}
		switch {
		case first && a.out == `\A`:
			lits.anchored = true
		case a.optionOnly:
			// Matches nothing: the literals on both sides are adjacent.
		case a.isChar && a.char < 0x80 && (!ok || lo >= 1):
			run.add(a.char, a.fold)
			if ok {
				endRun() // what follows is after a repeat
			}
		default:
			endRun()
			if !ok || lo >= 1 {
				lits.rest = longer(lits.rest, a.required)
			}
		}
		if ok {
			if a.noRepeat != "" {
				return "", 0, pcreLiterals{}, &pcreError{qStart, a.noRepeat}
			}
			a.out += q
			if lo != hi || a.length < 0 {
				a.length = -1
			} else {
				a.length *= lo
			}
		}
		b.WriteString(a.out)
		if length >= 0 && a.length >= 0 {
			length += a.length
		} else {
			length = -1
		}
	}
}

// skipIgnored steps over what adds nothing to the pattern: \Q and \E
// markers, (?#...) comments and, in extended mode, blanks and # comments.
func (t *pcreTranslator) skipIgnored(st *pcreState) error {
	for t.pos < len(t.src) {
		switch c := t.src[t.pos]; {
		case t.quoting:
			if c != '\\' || t.peek(1) != 'E' {
				return nil
			}
			t.quoting = false
			t.pos += 2
		case c == '\\' && t.peek(1) == 'Q':
			t.quoting = true
			t.pos += 2
		case c == '\\' && t.peek(1) == 'E':
			t.pos += 2
		case c == '(' && t.peek(1) == '?' && t.peek(2) == '#':
			end := strings.IndexByte(t.src[t.pos:], ')')
			if end < 0 {
				t.pos = len(t.src)
				return t.errorf("missing ) after (?# comment")
			}
			t.pos += end + 1
		case st.extended && isPCRESpace(c):
			t.pos++
		case st.extended && c == '#':
			end := strings.IndexByte(t.src[t.pos:], '\n')
			if end < 0 {
				t.pos = len(t.src)
			} else {
				t.pos += end + 1
			}
		default:
			return nil
		}
	}
	return nil
}

// isPCRESpace is the white space PCRE2_EXTENDED skips.
func isPCRESpace(c byte) bool {
	return c == ' ' || c >= '\t' && c <= '\r'
}

// pcreAtom is one translated item. noRepeat, when set, is the error for a
// quantifier after it.
type pcreAtom struct {
	out      string
	length   int // characters it matches; -1 when that varies
	noRepeat string
	// For the prefilter: a literal character (fold when caseless), an
	// option setting that matches nothing, or the literal every match of
	// a group contains.
	isChar, fold, optionOnly bool
	char                     byte
	required                 literal
}

// charAtom is the literal character c.
func charAtom(c byte, st *pcreState) pcreAtom {
	return pcreAtom{out: netChar(c), length: 1, isChar: true, char: c, fold: st.caseless}
}

const (
	notRepeatable = "quantifier does not follow a repeatable item"
	// PCRE2 accepts a quantified assertion (as {0,1} or {1}); it is
	// pointless, and not worth a translation.
	noRepeatAssertion = "postgate's pcre: tables do not support a quantifier on an assertion"
)

func (t *pcreTranslator) atom(st *pcreState) (pcreAtom, error) {
	c := t.src[t.pos]
	if t.quoting {
		t.pos++
		return charAtom(c, st), nil
	}
	switch c {
	case '\\':
		return t.escapeAtom(st)
	case '[':
		if t.posixOutsideClass() {
			return pcreAtom{}, t.errorf("POSIX named classes are supported only within a class")
		}
		out, err := t.class(st)
		return pcreAtom{out: out, length: 1}, err
	case '(':
		return t.group(st)
	case '.':
		t.pos++
		if st.dotall {
			return pcreAtom{out: anyByte.net(), length: 1}, nil
		}
		return pcreAtom{out: notNewline.net(), length: 1}, nil
	case '^':
		t.pos++
		if st.multiline {
			// PCRE2_MULTILINE: also after a newline, but not after one
			// that ends the key (.NET's (?m)^ matches there too).
			return pcreAtom{out: `(?:\A|(?<=\n)(?!\z))`, noRepeat: notRepeatable}, nil
		}
		return pcreAtom{out: `\A`, noRepeat: notRepeatable}, nil
	case '$':
		t.pos++
		switch {
		case st.multiline:
			return pcreAtom{out: `(?=\n|\z)`, noRepeat: notRepeatable}, nil
		case t.dollarEndOnly:
			return pcreAtom{out: `\z`, noRepeat: notRepeatable}, nil
		default:
			return pcreAtom{out: `\Z`, noRepeat: notRepeatable}, nil // end, or before a final newline
		}
	case '*', '+', '?':
		return pcreAtom{}, t.errorf(notRepeatable)
	case '{':
		if _, _, n := t.braceQuantifier(); n > 0 {
			return pcreAtom{}, t.errorf(notRepeatable)
		}
	}
	t.pos++
	return charAtom(c, st), nil
}

// quantifier reads *, +, ?, {n}, {n,} or {n,m} and its lazy '?' or
// possessive '+', and returns it in .NET syntax. The U flag swaps greedy
// and lazy.
func (t *pcreTranslator) quantifier(st *pcreState) (q string, lo, hi int, ok bool, err error) {
	if t.pos >= len(t.src) || t.quoting {
		return "", 0, 0, false, nil
	}
	switch t.src[t.pos] {
	case '*':
		q, lo, hi = "*", 0, -1
		t.pos++
	case '+':
		q, lo, hi = "+", 1, -1
		t.pos++
	case '?':
		q, lo, hi = "?", 0, 1
		t.pos++
	case '{':
		var n int
		lo, hi, n = t.braceQuantifier()
		if n == 0 {
			return "", 0, 0, false, nil
		}
		const maxCount = 65535
		switch {
		case lo > maxCount || hi > maxCount:
			return "", 0, 0, false, t.errorf("number too big in {} quantifier")
		case hi >= 0 && hi < lo:
			return "", 0, 0, false, t.errorf("numbers out of order in {} quantifier")
		}
		q = t.src[t.pos : t.pos+n]
		t.pos += n
	default:
		return "", 0, 0, false, nil
	}
	lazy := st.ungreedy
	switch t.peek(0) {
	case '?':
		lazy = !lazy
		t.pos++
	case '+':
		t.pos++
		return q + "+", lo, hi, true, nil
	}
	if lazy {
		q += "?"
	}
	return q, lo, hi, true, nil
}

// braceQuantifier reads {n}, {n,} or {n,m} at t.pos without consuming
// it; n is its length, 0 when the brace is a literal (as "{,3}" is in
// PCRE2 10.42). hi is -1 for no maximum; a count too big for an int is
// reported as just too big.
func (t *pcreTranslator) braceQuantifier() (lo, hi, n int) {
	s := t.src[t.pos:]
	i := 1
	digits := func() (int, bool) {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return 0, false
		}
		v, err := strconv.Atoi(s[j:i])
		if err != nil || v > 1<<20 {
			v = 1 << 20
		}
		return v, true
	}
	lo, ok := digits()
	if !ok {
		return 0, 0, 0
	}
	hi = lo
	if i < len(s) && s[i] == ',' {
		i++
		if hi, ok = digits(); !ok {
			hi = -1
		}
	}
	if i >= len(s) || s[i] != '}' {
		return 0, 0, 0
	}
	return lo, hi, i + 1
}

// netChar writes byte c as a .NET literal: letters and digits as they are,
// anything else as a \u escape (a byte 0x80-0xFF as its matchable rune).
func netChar(c byte) string {
	if isAlnum(c) {
		return string(c)
	}
	return fmt.Sprintf(`\u%04X`, matchableRune(c))
}

func matchableRune(c byte) rune {
	if c < 0x80 {
		return rune(c)
	}
	return highByteBase + rune(c)
}

// posixOutsideClass reports a [:name:] (or [.x.], [=x=]) written without
// the enclosing brackets, which PCRE2 refuses.
func (t *pcreTranslator) posixOutsideClass() bool {
	c := t.peek(1)
	if c != ':' && c != '.' && c != '=' {
		return false
	}
	end := strings.Index(t.src[t.pos+2:], string(c)+"]")
	return end >= 0 && !strings.ContainsAny(t.src[t.pos+2:t.pos+2+end], "[]\\")
}

// group translates a parenthesized item, t.pos at its '('.
func (t *pcreTranslator) group(st *pcreState) (pcreAtom, error) {
	start := t.pos
	t.pos++
	if t.peek(0) == '*' {
		return pcreAtom{}, t.unsupported("(*VERB) and (*OPTION) syntax")
	}
	inner := *st
	open := "("
	kind := groupCapture
	if t.peek(0) != '?' {
		if st.noAutoCapture {
			open, kind = "(?:", groupPlain
		}
	} else {
		t.pos++
		var err error
		open, kind, err = t.groupKind(st, &inner)
		switch {
		case err != nil:
			return pcreAtom{}, err
		case kind == groupDone:
			return pcreAtom{out: open, noRepeat: notRepeatable, optionOnly: true}, nil
		case kind == groupBackref:
			return pcreAtom{out: open, length: -1}, nil
		}
	}
	if t.depth++; t.depth > pcreMaxNesting {
		return pcreAtom{}, t.errorf("parentheses are too deeply nested")
	}
	if kind == groupCapture {
		t.groups++
	}
	body, lens, lits, err := t.alternation(&inner)
	if err != nil {
		return pcreAtom{}, err
	}
	if t.pos >= len(t.src) {
		return pcreAtom{}, t.errorf("missing closing parenthesis")
	}
	t.pos++ // ')'
	t.depth--
	a := pcreAtom{out: open + body + ")", length: sameLength(lens)}
	switch kind {
	case groupCapture, groupPlain:
		a.required = lits.longest()
	case groupLookahead:
		a.length, a.noRepeat = 0, noRepeatAssertion
	case groupLookbehind:
		for _, n := range lens {
			if n < 0 {
				return pcreAtom{}, &pcreError{start, "lookbehind assertion is not fixed length"}
			}
		}
		a.length, a.noRepeat = 0, noRepeatAssertion
	case groupConditional:
		if len(lens) > 2 {
			return pcreAtom{}, &pcreError{t.pos - 1, "conditional subpattern contains more than two branches"}
		}
		a.length = -1
	}
	return a, nil
}

type groupKind int

const (
	groupCapture groupKind = iota
	groupPlain             // (?:...), atomic (?>...), options (?i:...)
	groupLookahead
	groupLookbehind
	groupConditional
	groupDone    // an option setting (?i), which ends at its ')'
	groupBackref // (?P=name), which ends at its ')'
)

// groupKind reads what follows "(?" and returns the .NET opening. Option
// settings change inner (the group's state) or, for a bare (?i), st (the
// rest of the enclosing group).
func (t *pcreTranslator) groupKind(st, inner *pcreState) (string, groupKind, error) {
	c := t.peek(0)
	switch {
	case c == ':':
		t.pos++
		return "(?:", groupPlain, nil
	case c == '>':
		t.pos++
		return "(?>", groupPlain, nil
	case c == '=' || c == '!':
		t.pos++
		return "(?" + string(c), groupLookahead, nil
	case c == '<' && (t.peek(1) == '=' || t.peek(1) == '!'):
		t.pos += 2
		return "(?<" + string(t.src[t.pos-1]), groupLookbehind, nil
	case c == '<' || c == '\'' || c == 'P' && t.peek(1) == '<':
		if c == 'P' {
			t.pos++
		}
		closing := byte('>')
		if c == '\'' {
			closing = '\''
		}
		t.pos++
		name, err := t.groupName(closing)
		if err != nil {
			return "", 0, err
		}
		if t.names[name] {
			return "", 0, t.errorf("two named subpatterns have the same name (PCRE2_DUPNAMES not set)")
		}
		t.names[name] = true
		return "(?<" + name + ">", groupCapture, nil
	case c == 'P' && t.peek(1) == '=':
		t.pos += 2
		ref, err := t.namedRef(')')
		return ref, groupBackref, err
	case c == '(':
		t.pos++
		cond, err := t.condition()
		return cond, groupConditional, err
	case c == '|':
		return "", 0, t.unsupported("a branch reset group (?|")
	case c == 'R' || c == '&' || c == 'P' || c >= '0' && c <= '9' ||
		(c == '+' || c == '-') && t.peek(1) >= '0' && t.peek(1) <= '9':
		return "", 0, t.unsupported("recursion and subroutine calls")
	case c == 'C':
		return "", 0, t.unsupported("a callout")
	}
	return t.options(st, inner)
}

// options reads (?imnsxU-imnsxU) or (?^...), alone or opening a group.
func (t *pcreTranslator) options(st, inner *pcreState) (string, groupKind, error) {
	s := *st
	on := true
	xs := 0
	for i := 0; ; i++ {
		if t.pos >= len(t.src) {
			return "", 0, t.errorf("missing closing parenthesis")
		}
		c := t.src[t.pos]
		t.pos++
		switch c {
		case '^':
			if i > 0 {
				return "", 0, t.errorf("unrecognized character after (? or (?-")
			}
			s.caseless, s.multiline, s.noAutoCapture, s.dotall, s.extended = false, false, false, false, false
		case '-':
			if !on {
				return "", 0, t.errorf("unrecognized character after (? or (?-")
			}
			on = false
		case 'i':
			s.caseless = on
		case 'm':
			s.multiline = on
		case 'n':
			s.noAutoCapture = on
		case 's':
			s.dotall = on
		case 'U':
			s.ungreedy = on
		case 'x':
			if on {
				if xs++; xs > 1 {
					return "", 0, t.unsupported("(?xx)")
				}
			}
			s.extended = on
		case 'J':
			return "", 0, t.unsupported("(?J), duplicate group names")
		case ')':
			*st = s
			return caseOption(s.caseless, ")"), groupDone, nil
		case ':':
			*inner = s
			return caseOption(s.caseless, ":"), groupPlain, nil
		default:
			t.pos--
			return "", 0, t.errorf("unrecognized character after (? or (?-")
		}
	}
}

// caseOption is the only option passed on to regexp2: (?i) or (?-i).
func caseOption(caseless bool, end string) string {
	if caseless {
		return "(?i" + end
	}
	return "(?-i" + end
}

// condition reads a group condition after "(?(" up to its ')': a group
// number or <name>/'name'. Other conditions are refused.
func (t *pcreTranslator) condition() (string, error) {
	start := t.pos
	c := t.peek(0)
	switch {
	case c >= '1' && c <= '9':
		for t.pos < len(t.src) && t.src[t.pos] >= '0' && t.src[t.pos] <= '9' {
			t.pos++
		}
		n, err := strconv.Atoi(t.src[start:t.pos])
		if err != nil || t.peek(0) != ')' {
			return "", t.errorf("malformed number or name after (?(")
		}
		t.pos++
		t.refs = append(t.refs, pcreRef{offset: start, group: n})
		return "(?(" + strconv.Itoa(n) + ")", nil
	case c == '<' || c == '\'':
		closing := byte('>')
		if c == '\'' {
			closing = '\''
		}
		t.pos++
		name, err := t.groupName(closing)
		if err != nil {
			return "", err
		}
		if t.peek(0) != ')' {
			return "", t.errorf("malformed number or name after (?(")
		}
		t.pos++
		t.refs = append(t.refs, pcreRef{offset: start, name: name})
		return "(?(" + name + ")", nil
	}
	return "", t.unsupported("this kind of condition")
}

// groupName reads a group name and its closing character.
func (t *pcreTranslator) groupName(closing byte) (string, error) {
	start := t.pos
	for t.pos < len(t.src) && (isAlnum(t.src[t.pos]) || t.src[t.pos] == '_') {
		t.pos++
	}
	name := t.src[start:t.pos]
	switch {
	case name == "" || name[0] >= '0' && name[0] <= '9':
		return "", t.errorf("subpattern name expected")
	case len(name) > 32:
		return "", t.errorf("subpattern name is too long (maximum 32 code units)")
	case t.peek(0) != closing:
		return "", t.errorf("syntax error in subpattern name (missing terminator?)")
	}
	t.pos++
	return name, nil
}

// namedRef reads a back reference's name and its closing character.
func (t *pcreTranslator) namedRef(closing byte) (string, error) {
	start := t.pos
	name, err := t.groupName(closing)
	if err != nil {
		return "", err
	}
	t.refs = append(t.refs, pcreRef{offset: start, name: name})
	return `\k<` + name + ">", nil
}

// numberedRef records a back reference to group n.
func (t *pcreTranslator) numberedRef(start, n int) pcreAtom {
	t.refs = append(t.refs, pcreRef{offset: start, group: n})
	return pcreAtom{out: `\k<` + strconv.Itoa(n) + ">", length: -1}
}

// sameLength is the fixed length of a group whose branches have lens:
// -1 unless they all have the same.
func sameLength(lens []int) int {
	for _, n := range lens[1:] {
		if n != lens[0] {
			return -1
		}
	}
	return lens[0]
}
