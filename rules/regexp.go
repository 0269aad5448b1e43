package rules

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// regexpTable is Postfix's regexp: table (regexp_table(5)), and with the
// pcre dialect its pcre: table (pcre_table(5)): patterns tried in file
// order against the whole key; the first rule that matches gives the
// value. It is not a fixed-string table: callers pass the full key once, in
// its original case.
//
// A file table is read again when the file changes (fileTable).
type regexpTable struct {
	dialect *patternDialect
	name    string // the file or inline text, for messages
	src     interface{ get() []regexpRule }
}

// patternDialect is what differs between the regexp: and pcre: tables,
// which share their file syntax (dict_regexp.c and dict_pcre.c).
type patternDialect struct {
	typ string // "regexp" or "pcre": the table type, in messages
	// secondPattern: regexp:'s "/pattern1/!/pattern2/ result" form, where
	// a '!' ends the flags. In pcre: a '!' there is an unknown flag.
	secondPattern bool
	defaults      patternFlags          // flags before the letters toggle them
	flags         map[byte]patternFlags // flag letter -> the flag it toggles
	obsolete      byte                  // a flag letter accepted with a warning, or 0
	compile       func(text string, flags patternFlags) (matcher, prefilter, error)
}

// patternFlags are the pattern options the flag letters toggle.
type patternFlags uint16

const (
	flagCaseless      patternFlags = 1 << iota // i
	flagExtended                               // x: regexp: ERE (else basic); pcre: PCRE2_EXTENDED
	flagMultiline                              // m
	flagDotall                                 // s (pcre)
	flagAnchored                               // A (pcre)
	flagDollarEndOnly                          // E (pcre)
	flagUngreedy                               // U (pcre)
)

// matcher is a compiled pattern of either dialect.
type matcher interface {
	// match reports whether key, in matchable form (see toMatchable),
	// matches. When groups > 0 it also returns capture groups 0..groups,
	// in matchable form, "" for a group that took no part in the match.
	// An error is a lookup failure: the engine could not decide.
	match(key string, groups int) (sub []string, ok bool, err error)
	numSubexp() int
}

var regexpDialect = &patternDialect{
	typ:           "regexp",
	secondPattern: true,
	defaults:      flagCaseless | flagExtended,
	flags:         map[byte]patternFlags{'i': flagCaseless, 'x': flagExtended, 'm': flagMultiline},
	compile:       compileRegexpPattern,
}

type regexpOp int

const (
	regexpMatch regexpOp = iota // /pattern/flags result
	regexpIf                    // if /pattern/flags
	regexpEndif                 // endif
)

// regexpRule is one line of the table.
type regexpRule struct {
	op     regexpOp
	line   int // where it starts, for errors
	first  regexpPattern
	second *regexpPattern // regexpMatch, old "/pattern1/!/pattern2/ result" form
	result resultTemplate // regexpMatch
	endif  int            // regexpIf: index of the matching endif in rules
}

// regexpPattern is a compiled /pattern/flags, its prefilter and its
// sense: negate is true for !/pattern/.
type regexpPattern struct {
	m      matcher
	pre    prefilter
	negate bool
}

// match is the pattern's match (see matcher), with the engine run only
// when the key passes the prefilter.
func (p *regexpPattern) match(key *lookupKey, groups int) ([]string, bool, error) {
	if !p.pre.mayMatch(key) {
		return nil, false, nil
	}
	return p.m.match(key.text, groups)
}

// matches reports whether the rule's condition holds for key.
func (p *regexpPattern) matches(key *lookupKey) (bool, error) {
	_, ok, err := p.match(key, 0)
	return ok != p.negate, err
}

func (t *regexpTable) String() string { return t.dialect.typ + ":" + t.name }

// Lookup tries the rules in order. An if whose condition does not hold
// skips to its endif. A rule the engine could not decide fails the lookup
// (Postfix logs a warning and takes it as not matching); see pcreTimeout.
func (t *regexpTable) Lookup(_ context.Context, key string) (string, bool, error) {
	k := &lookupKey{text: toMatchable(key)}
	rules := t.src.get()
	for i := 0; i < len(rules); i++ {
		r := &rules[i]
		switch r.op {
		case regexpIf:
			ok, err := r.first.matches(k)
			if err != nil {
				return "", false, t.at(r, err)
			}
			if !ok {
				i = r.endif
			}
		case regexpMatch:
			v, ok, err := r.apply(k)
			if err != nil {
				return "", false, t.at(r, err)
			}
			if ok {
				return v, true, nil
			}
		}
	}
	return "", false, nil
}

// at names the table and the rule's line in a lookup error.
func (t *regexpTable) at(r *regexpRule, err error) error {
	return fmt.Errorf("%s map %s, line %d: %w", t.dialect.typ, t.name, r.line, err)
}

// apply returns the rule's value when it matches key. Only rules whose
// result uses $n ask the engine for submatches.
func (r *regexpRule) apply(key *lookupKey) (string, bool, error) {
	var sub []string
	if r.result.maxSub > 0 {
		// Negated rules cannot use $n (a load error), so this one is positive.
		s, ok, err := r.first.match(key, r.result.maxSub)
		if err != nil || !ok {
			return "", false, err
		}
		sub = s
	} else if ok, err := r.first.matches(key); err != nil || !ok {
		return "", false, err
	}
	if r.second != nil {
		if ok, err := r.second.matches(key); err != nil || !ok {
			return "", false, err
		}
	}
	return r.result.expand(sub), true, nil
}

// openRegexp opens regexp:/path/file and the inline form regexp:{ {rule}, ... }.
func openRegexp(_, name string, o OpenOptions) (Table, error) {
	return openPatternTable(regexpDialect, name, o)
}

// openPatternTable opens a regexp: or pcre: table: a file or the inline
// form { {rule}, ... }.
func openPatternTable(d *patternDialect, name string, o OpenOptions) (Table, error) {
	if strings.HasPrefix(name, "{") {
		text, err := inlineRules(d.typ, name)
		if err != nil {
			return nil, err
		}
		rules, err := parsePatternTable(d, name, text, o)
		if err != nil {
			return nil, err
		}
		return &regexpTable{dialect: d, name: name, src: staticRules[regexpRule](rules)}, nil
	}
	ft, err := openFileTable(name, o, func(data string) ([]regexpRule, error) {
		return parsePatternTable(d, name, data, o)
	})
	if err != nil {
		return nil, err
	}
	return &regexpTable{dialect: d, name: name, src: ft}, nil
}

// inlineRules turns "{ {rule1}, {rule2} }" into "rule1\nrule2\n", as
// Postfix's dict_inline_to_multiline does, so that line numbers in errors
// count rules. typ names the table type in errors.
func inlineRules(typ, name string) (string, error) {
	inner, err := extpar(name)
	if err != nil {
		return "", fmt.Errorf("%s map: %w", typ, err)
	}
	var b strings.Builder
	for _, item := range SplitList(inner) {
		if !strings.HasPrefix(item, "{") {
			return "", fmt.Errorf("%s map: no '{' at start of text in %q", typ, item)
		}
		rule, err := extpar(item)
		if err != nil {
			return "", fmt.Errorf("%s map: %w", typ, err)
		}
		b.WriteString(rule)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// regexpParser holds the state of one table load.
type regexpParser struct {
	d     *patternDialect
	name  string // the file name or the inline "{...}", as in Postfix's messages
	opts  OpenOptions
	rules []regexpRule
	open  []int // indexes of the ifs still waiting for their endif
	line  int   // the line being parsed
}

// parsePatternTable compiles table text. Where Postfix warns and skips a
// rule, this is a load error: a table that silently lost a rule would
// decide differently from the file the admin wrote. Where Postfix warns and
// keeps going, so do we (through o.Warn).
func parsePatternTable(d *patternDialect, name, text string, o OpenOptions) ([]regexpRule, error) {
	lines, err := logicalLines(text)
	if err != nil {
		return nil, fmt.Errorf("%s map %s, line %w", d.typ, name, err)
	}
	p := &regexpParser{d: d, name: name, opts: o}
	for _, l := range lines {
		p.line = l.num
		if err := p.parseLine(strings.TrimRight(l.text, " \t\r\n\v\f")); err != nil {
			return nil, p.at(err)
		}
	}
	if n := len(p.open); n > 0 {
		// Postfix names the innermost unclosed if first.
		p.line = p.rules[p.open[n-1]].line
		return nil, p.at(errors.New("IF has no matching ENDIF"))
	}
	return p.rules, nil
}

// at names the table and line in err, as Postfix's messages do.
func (p *regexpParser) at(err error) error {
	return fmt.Errorf("%s map %s, line %d: %w", p.d.typ, p.name, p.line, err)
}

func (p *regexpParser) warnf(format string, args ...any) {
	p.opts.warn("%s map %s, line %d: %s", p.d.typ, p.name, p.line, fmt.Sprintf(format, args...))
}

// parseLine dispatches on the first character as dict_regexp.c does: a
// rule starts with a delimiter (or '!'); "if" and "endif" are words, in any
// case, that may be followed directly by a non-alphanumeric character.
func (p *regexpParser) parseLine(text string) error {
	switch {
	case !isAlnum(text[0]):
		return p.parseMatch(text)
	case hasKeyword(text, "if"):
		return p.parseIf(text[2:])
	case hasKeyword(text, "endif"):
		return p.parseEndif(text[5:])
	default:
		return errors.New("unrecognized request")
	}
}

func (p *regexpParser) parseMatch(text string) error {
	first, rest, err := p.cutPattern(text)
	if err != nil {
		return err
	}
	var second *rawPattern
	if p.d.secondPattern && strings.HasPrefix(rest, "!") {
		s, r, err := p.cutPattern(rest)
		if err != nil {
			return err
		}
		second, rest = &s, r
	}
	rest = strings.TrimLeft(rest, " \t\r\n\v\f")
	if rest == "" {
		p.warnf("no replacement text: using empty string")
	}
	// The checks run in dict_regexp.c's order, so the first error is the
	// one Postfix reports.
	result, err := parseResult(rest)
	if err != nil {
		return fmt.Errorf("bad replacement syntax: %w", err)
	}
	if result.maxSub > 0 && first.negate {
		return errors.New("$number found in negative match replacement text")
	}
	rule := regexpRule{op: regexpMatch, line: p.line, result: result}
	if rule.first, err = p.compile(first); err != nil {
		return err
	}
	if result.maxSub > rule.first.m.numSubexp() {
		return fmt.Errorf("out of range replacement index \"%d\"", result.maxSub)
	}
	if second != nil {
		pat, err := p.compile(*second)
		if err != nil {
			return err
		}
		rule.second = &pat
	}
	p.rules = append(p.rules, rule)
	return nil
}

func (p *regexpParser) parseIf(text string) error {
	raw, rest, err := p.cutPattern(strings.TrimLeft(text, " \t\r\n\v\f"))
	if err != nil {
		return err
	}
	if rest = strings.TrimLeft(rest, " \t\r\n\v\f"); rest != "" {
		// Almost always an indented rule, which readllines glued onto the if.
		p.warnf("ignoring extra text after IF statement: %q; do not prepend whitespace to statements between IF and ENDIF", rest)
	}
	cond, err := p.compile(raw)
	if err != nil {
		return err
	}
	p.open = append(p.open, len(p.rules))
	p.rules = append(p.rules, regexpRule{op: regexpIf, line: p.line, first: cond})
	return nil
}

func (p *regexpParser) parseEndif(rest string) error {
	n := len(p.open)
	if n == 0 {
		return errors.New("ENDIF without matching IF")
	}
	if strings.TrimSpace(rest) != "" {
		p.warnf("ignoring extra text after ENDIF")
	}
	p.rules[p.open[n-1]].endif = len(p.rules)
	p.open = p.open[:n-1]
	p.rules = append(p.rules, regexpRule{op: regexpEndif, line: p.line})
	return nil
}

// rawPattern is a /pattern/flags before compilation.
type rawPattern struct {
	text   string
	negate bool
	flags  patternFlags
}

// cutPattern reads [!...]/pattern/flags from the start of s, as
// dict_regexp_get_pat and dict_pcre_get_pattern: any number of '!' (each
// one flips the sense) and blanks, a delimiter, the pattern up to the next
// delimiter not escaped by a backslash (the backslash stays in the
// pattern), then flags up to a blank (or, in regexp:, a '!').
func (p *regexpParser) cutPattern(s string) (pat rawPattern, rest string, err error) {
	pat = rawPattern{flags: p.d.defaults}
	i := 0
	for ; i < len(s) && (s[i] == '!' || isSpace(s[i])); i++ {
		if s[i] == '!' {
			pat.negate = !pat.negate
		}
	}
	if i == len(s) {
		return pat, "", errors.New("no regexp")
	}
	delim := s[i]
	start := i + 1
	end := indexDelim(s[start:], delim)
	if end < 0 {
		return pat, "", fmt.Errorf("no closing regexp delimiter \"%c\"", delim)
	}
	pat.text = s[start : start+end]
	i = start + end + 1
	for ; i < len(s) && !isSpace(s[i]) && !(p.d.secondPattern && s[i] == '!'); i++ {
		switch f, ok := p.d.flags[s[i]]; {
		case ok:
			pat.flags ^= f
		case s[i] == p.d.obsolete:
			p.warnf("ignoring obsolete regexp option \"%c\"", s[i])
		default:
			return pat, "", fmt.Errorf("unknown regexp option \"%c\"", s[i])
		}
	}
	return pat, s[i:], nil
}

// indexDelim returns the index of the first delim in s that is not
// escaped by a backslash, or -1.
func indexDelim(s string, delim byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // a trailing backslash leaves i past the end: not found
		case delim:
			return i
		}
	}
	return -1
}

func (p *regexpParser) compile(r rawPattern) (regexpPattern, error) {
	m, pre, err := p.d.compile(r.text, r.flags)
	if err != nil {
		return regexpPattern{}, err
	}
	return regexpPattern{m: m, pre: pre, negate: r.negate}, nil
}

// resultTemplate is a rule's result with its $n references resolved at
// load time, so a lookup only copies.
type resultTemplate struct {
	parts  []resultPart
	maxSub int // the largest n used; 0 when the result is literal
}

// resultPart is literal text (group 0) or a reference to capture group n.
type resultPart struct {
	text  string
	group int
}

// parseResult reads result text as Postfix's mac_parse does for regexp
// tables: $$ is a '$'; $n, ${n} and $(n) name capture group n (n >= 1); a
// $name must be all digits.
func parseResult(s string) (resultTemplate, error) {
	var t resultTemplate
	var lit strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] != '$':
			lit.WriteByte(s[i])
			i++
		case i+1 < len(s) && s[i+1] == '$':
			lit.WriteByte('$')
			i += 2
		default:
			name, n, err := macroName(s, i+1)
			if err != nil {
				return t, err
			}
			g, err := groupIndex(name)
			if err != nil {
				return t, err
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, resultPart{text: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, resultPart{group: g})
			t.maxSub = max(t.maxSub, g)
			i = n
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, resultPart{text: lit.String()})
	}
	return t, nil
}

// macroName reads the name after a '$' at s[i:]: {name}, (name) (nested
// brackets of the same kind count), or a run of letters, digits and '_'.
// It returns the name and the index just past it.
func macroName(s string, i int) (string, int, error) {
	if i < len(s) && (s[i] == '{' || s[i] == '(') {
		open, closing := s[i], byte('}')
		if open == '(' {
			closing = ')'
		}
		level := 1
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case open:
				level++
			case closing:
				if level--; level == 0 {
					if j == i+1 {
						return "", 0, fmt.Errorf("empty macro name: %q", s)
					}
					return s[i+1 : j], j + 1, nil
				}
			}
		}
		return "", 0, fmt.Errorf("truncated macro reference: %q", s)
	}
	j := i
	for j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
		j++
	}
	if j == i {
		return "", 0, fmt.Errorf("empty macro name: %q", s)
	}
	return s[i:j], j, nil
}

func groupIndex(name string) (int, error) {
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, fmt.Errorf("non-numeric replacement index %q", name)
		}
	}
	n, err := strconv.Atoi(name)
	if err != nil {
		// Too many digits for an int: certainly more than the groups.
		return 0, fmt.Errorf("out of range replacement index %q", name)
	}
	if n < 1 {
		return 0, fmt.Errorf("out-of-range replacement index %q", name)
	}
	return n, nil
}

// expand builds the value from sub, the capture groups in matchable form;
// a group that did not take part in the match, or matched nothing, adds
// nothing.
func (t *resultTemplate) expand(sub []string) string {
	if t.maxSub == 0 && len(t.parts) <= 1 {
		if len(t.parts) == 0 {
			return ""
		}
		return t.parts[0].text
	}
	var b strings.Builder
	for _, part := range t.parts {
		if part.group == 0 {
			b.WriteString(part.text)
			continue
		}
		b.WriteString(fromMatchable(sub[part.group]))
	}
	return b.String()
}

func hasKeyword(s, word string) bool {
	return len(s) >= len(word) && strings.EqualFold(s[:len(word)], word) &&
		(len(s) == len(word) || !isAlnum(s[len(word)]))
}

// isAlnum is C's isalnum in the "C" locale, where Postfix runs.
func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
