package rules

import (
	"errors"
	"fmt"
	"time"

	"github.com/dlclark/regexp2/v2"
)

// Postfix's pcre: table (pcre_table(5)) has the file syntax of regexp:
// (see regexpTable) with PCRE2's flags and patterns. Debian's Postfix
// links PCRE2 without UTF and never calls setlocale, so a pattern and a key
// are strings of bytes in the "C" locale: case folding, \w, \d and [:alpha:]
// are ASCII-only and a byte 0x80-0xFF is one character. The pattern is
// translated (pcreToNET) into regexp2's .NET syntax over keys in matchable
// form (toMatchable), with every construct whose meaning depends on a flag
// spelled out, so regexp2's own defaults never decide anything.

var pcreDialect = &patternDialect{
	typ: "pcre",
	// dict_pcre.c: PCRE2_CASELESS and PCRE2_DOTALL unless toggled.
	defaults: flagCaseless | flagDotall,
	flags: map[byte]patternFlags{
		'i': flagCaseless, 'm': flagMultiline, 's': flagDotall, 'x': flagExtended,
		'A': flagAnchored, 'E': flagDollarEndOnly, 'U': flagUngreedy,
	},
	// PCRE_EXTRA does not exist in PCRE2: Postfix warns and ignores it.
	obsolete: 'X',
	compile:  compilePCRE,
}

// openPCRE opens pcre:/path/file and the inline form pcre:{ {rule}, ... }.
func openPCRE(_, name string, o OpenOptions) (Table, error) {
	return openPatternTable(pcreDialect, name, o)
}

// pcreTimeout bounds one pattern's match. A backtracking engine can take
// exponential time on a hostile key (a header line is up to
// header_size_limit bytes of the sender's choosing), and a lookup must not
// hold a session or a cleanup worker. Postfix relies on PCRE2's match
// limit and then treats the rule as not matching; here the lookup fails
// instead, which callers turn into a temporary failure: a check that could
// not be evaluated must not quietly let the mail through. The bound is
// wall-clock time (regexp2 has no step count like PCRE2's match limit), so
// it is long enough that a busy machine descheduling the matcher does not
// trip it: about what PCRE2's default match limit allows a bad pattern.
const pcreTimeout = time.Second

// pcreStackSlots bounds the backtracking stack of one match (8 bytes a
// slot). regexp2's default, 100,000, fails common patterns such as
// /^(?:.(?!x))*$/ on a header of a few tens of kB, which PCRE2 (heap limit
// 20 MB) matches; patterns like it take about 5 slots a key byte, so this
// covers twice the default header_size_limit (102400) at 8 MB at most.
const pcreStackSlots = 1 << 20

// compilePCRE compiles a pcre: table's /pattern/flags.
func compilePCRE(text string, flags patternFlags) (matcher, prefilter, error) {
	tr, err := pcreToNET(text, flags)
	if err != nil {
		return nil, prefilter{}, err
	}
	// Capture groups are numbered in the order they open, named or not, as
	// in PCRE; .NET would number the named ones last.
	re, err := regexp2.Compile(tr.pattern, regexp2.OptionMaintainCaptureOrder(),
		regexp2.OptionMaxBacktrackingStackSize(pcreStackSlots))
	if err != nil {
		// The translation is meant to be valid .NET syntax: this is a gap
		// in pcreToNET, refused rather than guessed at.
		return nil, prefilter{}, fmt.Errorf("error in regex: unsupported construct (%v)", err)
	}
	re.MatchTimeout = pcreTimeout
	return &pcreMatcher{re: re, groups: tr.groups}, tr.pre, nil
}

// pcreMatcher is a compiled pcre: pattern.
type pcreMatcher struct {
	re     *regexp2.Regexp
	groups int // capture groups, as PCRE2_INFO_CAPTURECOUNT
}

func (m *pcreMatcher) numSubexp() int { return m.groups }

func (m *pcreMatcher) match(key string, groups int) ([]string, bool, error) {
	if groups == 0 {
		ok, err := m.re.MatchString(key)
		return nil, ok, matchError(err)
	}
	res, err := m.re.FindStringMatch(key)
	if err != nil || res == nil {
		return nil, false, matchError(err)
	}
	sub := make([]string, groups+1)
	for i := range sub {
		if g := res.GroupByNumber(i); g != nil {
			sub[i] = g.String()
		}
	}
	return sub, true, nil
}

// matchError words an engine failure for the log. regexp2's own timeout
// message quotes the whole key, which may be a 100 kB header.
func matchError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, regexp2.ErrBacktrackingStackLimit):
		return errors.New("backtracking limit exceeded")
	default:
		return fmt.Errorf("match not decided within %v", pcreTimeout)
	}
}
