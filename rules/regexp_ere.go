package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// Postfix compiles regexp: patterns with the C library's regcomp() in the
// "C" locale (Postfix never calls setlocale), so a pattern and a key are
// strings of bytes, not of UTF-8 characters. This file makes Go's engine
// read them the same way.

// compileRegexpPattern compiles a regexp: table's /pattern/flags.
func compileRegexpPattern(text string, flags patternFlags) (matcher, prefilter, error) {
	if flags&flagExtended == 0 {
		return nil, prefilter{}, errors.New(`basic regular expressions are not supported (the "x" flag)`)
	}
	re, pre, err := compileERE(text, flags&flagCaseless != 0, flags&flagMultiline != 0)
	if err != nil {
		return nil, prefilter{}, err
	}
	return ereMatcher{re}, pre, nil
}

// ereMatcher is a compiled regexp: pattern. Go's engine runs in linear
// time, so it never fails.
type ereMatcher struct{ re *regexp.Regexp }

func (m ereMatcher) match(key string, groups int) ([]string, bool, error) {
	if groups == 0 {
		return nil, m.re.MatchString(key), nil
	}
	sub := m.re.FindStringSubmatch(key)
	return sub, sub != nil, nil
}

func (m ereMatcher) numSubexp() int { return m.re.NumSubexp() }

// compileERE compiles a POSIX extended regular expression with Postfix's
// flags: icase is REG_ICASE, multiline is REG_NEWLINE. Matching is
// leftmost-longest, as POSIX requires. It also returns the pattern's
// prefilter.
func compileERE(pattern string, icase, multiline bool) (*regexp.Regexp, prefilter, error) {
	src, err := ereToGo(pattern)
	if err != nil {
		return nil, prefilter{}, fmt.Errorf("bad regular expression `%s`: %w", pattern, err)
	}
	flags := syntax.POSIX
	if icase {
		flags |= syntax.FoldCase
	}
	if !multiline {
		// Without REG_NEWLINE a newline is an ordinary character: '.' and
		// [^x] match it, and ^ and $ match only at the ends of the key.
		flags |= syntax.OneLine | syntax.DotNL | syntax.ClassNL
	}
	tree, err := syntax.Parse(src, flags)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			err = errors.New(string(se.Code))
		}
		return nil, prefilter{}, fmt.Errorf("bad regular expression `%s`: %w", pattern, err)
	}
	// The regexp package has no constructor from a parsed tree, and
	// prefixing the pattern with (?i)(?s) would parse it as Perl syntax,
	// where "a*?" is a lazy star instead of POSIX's (a*)? and [^x] under
	// (?m) still matches a newline. The tree prints as Go syntax with
	// every flag explicit, so compiling the print keeps the POSIX reading.
	tree = glibcAnchors(tree)
	re, err := regexp.Compile(tree.String())
	if err != nil {
		return nil, prefilter{}, fmt.Errorf("bad regular expression `%s`: %w", pattern, err)
	}
	re.Longest()
	return re, erePrefilter(tree), nil
}

// ereToGo rewrites the parts of a pattern that glibc's regcomp and Go's
// POSIX parser read differently:
//
//   - each byte 0x80-0xFF becomes one rune (see toMatchable), so '.' and
//     bracket expressions count bytes, and case folding stays ASCII-only;
//   - inside a bracket expression a backslash is an ordinary character;
//   - "{,n}" means "{0,n}";
//   - the GNU escapes \w \W \s \S become their C-locale classes, and the
//     GNU anchors \b \B \` \' stand-in runes that glibcAnchors turns into
//     Go's \b \B \A \z once the pattern is parsed (the POSIX parser has no
//     syntax for them);
//   - any other backslash before a letter or digit is refused: glibc reads
//     \1 as a backreference, \< \> as word anchors and other letters as
//     themselves, while Go reads \t, \x41 and \101 as character escapes;
//   - collating elements [.x.] and equivalence classes [=x=] are refused
//     (Go would read them as plain brackets).
//
// Refusing at load beats matching something other than what Postfix would.
func ereToGo(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			if err := writeEscape(&b, s[i]); err != nil {
				return "", err
			}
		case c == '[':
			end, err := writeBracket(&b, s, i)
			if err != nil {
				return "", err
			}
			i = end
		case c == '{' && i+1 < len(s) && s[i+1] == ',':
			b.WriteString("{0")
		default:
			// Also copies a trailing backslash, for the parser to report.
			writeMatchableByte(&b, c)
		}
	}
	return b.String(), nil
}

// gnuEscapes are the GNU class escapes, in the C locale. \W is written as
// a positive list (every ASCII non-word character and every high byte)
// because glibc's \W matches a newline even under REG_NEWLINE, where a
// [^...] list does not.
var gnuEscapes = map[byte]string{
	'w': `[_[:alnum:]]`,
	'W': fmt.Sprintf("[\\x00-/:-@\\[-^`{-\\x7f\\x{%x}-\\x{%x}]", highByteBase+0x80, highByteBase+0xFF),
	's': `[[:space:]]`,
	'S': `[^[:space:]]`,
}

// gnuAnchors are the GNU anchor escapes and their stand-in runes (in a
// Private Use Area, apart from highByteBase's), with the empty-width
// operator each stands for.
var gnuAnchors = map[byte]struct {
	r  rune
	op syntax.EmptyOp
}{
	'b':  {0xF8F0, syntax.EmptyWordBoundary},
	'B':  {0xF8F1, syntax.EmptyNoWordBoundary},
	'`':  {0xF8F2, syntax.EmptyBeginText},
	'\'': {0xF8F3, syntax.EmptyEndText},
}

// glibcAnchors replaces, in a parsed pattern, the stand-in runes of the
// GNU anchors by the empty-width operators they stand for.
func glibcAnchors(re *syntax.Regexp) *syntax.Regexp {
	for i, sub := range re.Sub {
		re.Sub[i] = glibcAnchors(sub)
	}
	if re.Op != syntax.OpLiteral {
		return re
	}
	var parts []*syntax.Regexp
	start := 0
	for i, r := range re.Rune {
		for _, a := range gnuAnchors {
			if r != a.r {
				continue
			}
			if start < i {
				parts = append(parts, &syntax.Regexp{Op: syntax.OpLiteral, Flags: re.Flags, Rune: re.Rune[start:i]})
			}
			op := syntax.OpWordBoundary
			switch a.op {
			case syntax.EmptyNoWordBoundary:
				op = syntax.OpNoWordBoundary
			case syntax.EmptyBeginText:
				op = syntax.OpBeginText
			case syntax.EmptyEndText:
				op = syntax.OpEndText
			}
			parts = append(parts, &syntax.Regexp{Op: op, Flags: re.Flags})
			start = i + 1
		}
	}
	switch {
	case parts == nil:
		return re
	case start < len(re.Rune):
		parts = append(parts, &syntax.Regexp{Op: syntax.OpLiteral, Flags: re.Flags, Rune: re.Rune[start:]})
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return &syntax.Regexp{Op: syntax.OpConcat, Flags: re.Flags, Sub: parts}
}

// writeEscape writes the Go form of backslash-c outside brackets.
func writeEscape(b *strings.Builder, c byte) error {
	switch a, ok := gnuAnchors[c]; {
	case ok:
		b.WriteRune(a.r)
	case gnuEscapes[c] != "":
		b.WriteString(gnuEscapes[c])
	case isAlnum(c), c == '<', c == '>': // \< \> are glibc's word start and end
		return fmt.Errorf("unsupported escape sequence `\\%c`", c)
	case c >= utf8.RuneSelf:
		writeMatchableByte(b, c) // an escaped byte is itself
	default:
		b.WriteByte('\\')
		b.WriteByte(c)
	}
	return nil
}

// writeBracket writes the Go form of the bracket expression that starts at
// s[i] == '[' and returns the index of its closing ']'. An unterminated
// expression is copied without a ']', for the parser to report.
func writeBracket(b *strings.Builder, s string, i int) (int, error) {
	b.WriteByte('[')
	j := i + 1
	if j < len(s) && s[j] == '^' {
		b.WriteByte('^')
		j++
	}
	if j < len(s) && s[j] == ']' {
		b.WriteString(`\]`) // a ']' first in the list is a member
		j++
	}
	for ; j < len(s); j++ {
		switch c := s[j]; {
		case c == ']':
			b.WriteByte(']')
			return j, nil
		case c == '[' && j+1 < len(s) && (s[j+1] == '.' || s[j+1] == '='):
			return 0, errors.New("collating elements and equivalence classes are not supported")
		case c == '[' && j+1 < len(s) && s[j+1] == ':':
			end := strings.Index(s[j+2:], ":]")
			if end < 0 {
				return 0, errors.New(`unmatched "[:"`)
			}
			b.WriteString(s[j : j+2+end+2]) // [:name:], the same in Go
			j += 2 + end + 1
		case c == '\\':
			b.WriteString(`\\`)
		default:
			writeMatchableByte(b, c)
		}
	}
	return len(s), nil
}

// highByteBase maps byte 0x80+n to rune highByteBase+0x80+n, in a Private
// Use Area: runes without case, outside every POSIX class, that '.' and
// negated brackets match one at a time, in byte order (so ranges keep
// their meaning).
const highByteBase = 0xE000

func writeMatchableByte(b *strings.Builder, c byte) {
	if c < utf8.RuneSelf {
		b.WriteByte(c)
		return
	}
	b.WriteRune(highByteBase + rune(c))
}

// toMatchable returns key with each byte 0x80-0xFF as its own rune, the
// form compiled patterns match against. ASCII keys are returned as they are.
func toMatchable(key string) string {
	i := 0
	for i < len(key) && key[i] < utf8.RuneSelf {
		i++
	}
	if i == len(key) {
		return key
	}
	var b strings.Builder
	b.Grow(len(key) + 2*(len(key)-i))
	b.WriteString(key[:i])
	for ; i < len(key); i++ {
		writeMatchableByte(&b, key[i])
	}
	return b.String()
}

// fromMatchable undoes toMatchable on a piece of a matchable key.
func fromMatchable(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if r >= highByteBase+utf8.RuneSelf && r <= highByteBase+0xFF {
			b.WriteByte(byte(r - highByteBase))
		} else {
			b.WriteRune(r) // not produced by toMatchable
		}
	}
	return b.String()
}
