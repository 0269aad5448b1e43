package rules

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// unfiltered returns a copy of rules without prefilters: every pattern is
// tried by its engine, as before prefilters existed.
func unfiltered(rules []regexpRule) []regexpRule {
	out := slices.Clone(rules)
	for i := range out {
		out[i].first.pre = prefilter{}
		if out[i].second != nil {
			second := *out[i].second
			second.pre = prefilter{}
			out[i].second = &second
		}
	}
	return out
}

// checkSameLookup fails t when key gets different answers from rules with
// and without prefilters. A lookup error (pcre: match timeout or
// backtracking limit) is not compared: a prefilter spares the engine a key
// it cannot match, so it may avoid an error, never cause one.
func checkSameLookup(t *testing.T, d *patternDialect, rules []regexpRule, key string) {
	t.Helper()
	ctx := context.Background()
	filtered := &regexpTable{dialect: d, name: "t", src: staticRules[regexpRule](rules)}
	plain := &regexpTable{dialect: d, name: "t", src: staticRules[regexpRule](unfiltered(rules))}
	v1, ok1, err1 := filtered.Lookup(ctx, key)
	v2, ok2, err2 := plain.Lookup(ctx, key)
	if err1 == nil && err2 == nil && (v1 != v2 || ok1 != ok2) {
		t.Fatalf("key %q: with prefilters %q, %v; without %q, %v", key, v1, ok1, v2, ok2)
	}
}

// prefilterCases are patterns whose prefilter is easy to get wrong: case,
// anchors, repeats, alternatives, lookarounds and bytes outside ASCII; with
// the literals expected.
var prefilterCases = []struct {
	d             *patternDialect
	pattern       string
	prefix, inner string
	pfold, infold bool
}{
	{regexpDialect, "/^Subject:.*(casino|lottery)-offer-7[^0-9]/", "subject:", "-offer-7", true, true},
	{regexpDialect, "/^Subject:/i", "Subject:", "", false, false},
	{regexpDialect, "/pharmacy-deal-3[0-9]+/", "", "pharmacy-deal-3", false, true},
	{regexpDialect, "/^Subject/m", "", "subject", false, true}, // ^ after any newline
	{regexpDialect, "/ab*c/i", "", "a", false, false},          // b* may be absent
	{regexpDialect, "/(foo)+bar|baz/", "", "", false, false},   // either branch
	{regexpDialect, "/x(abcd)+y/i", "", "abcd", false, false},  // a repeat of at least one
	{regexpDialect, "/(abc)?defg/i", "", "defg", false, false}, // an optional group
	{regexpDialect, "/x(yz)*w/", "", "x", false, true},
	{regexpDialect, "/q{0,2}rst/", "", "rst", false, true},
	{regexpDialect, "/^(ab)cd/", "", "ab", false, true}, // no prefix through a group
	{regexpDialect, "/^ab[0-9]cdef/", "ab", "cdef", true, true},
	{regexpDialect, "/caf\xc3\xa9-menu/", "", "-menu", false, true}, // only ASCII
	{pcreDialect, "/^X-Campaign-4:\\s*(?!internal)\\S+/i", "X-Campaign-4:", "", false, false},
	{pcreDialect, "/^From:(?i)Alice(?-i)Bob/", "from:alicebob", "", true, false},
	{pcreDialect, "/(?<=@)example\\.com$/", "", "example.com", false, true},
	{pcreDialect, "/foo(?=barbaz)/", "", "foo", false, true}, // not the lookahead
	{pcreDialect, "/ab+c/", "", "ab", false, true},           // b at least once
	{pcreDialect, "/ab*c/i", "", "a", false, false},
	{pcreDialect, "/a b c/x", "", "abc", false, true}, // extended: blanks skipped
	{pcreDialect, "/\\Qa.b\\E/", "", "a.b", false, true},
	{pcreDialect, "/head(tail|end)/", "", "head", false, true},
	{pcreDialect, "/(?:xyz|abc)/", "", "", false, false},
	{pcreDialect, "/(xy)\\1/", "", "xy", false, true},
	{pcreDialect, "/x(yz)*w/", "", "x", false, true},
	{pcreDialect, "/q{0,2}rst/", "", "rst", false, true},
	{pcreDialect, "/^ab[0-9]cdef/", "ab", "cdef", true, true},
	{pcreDialect, "/abc/A", "abc", "", true, false}, // PCRE2_ANCHORED
	{pcreDialect, "/^abc/m", "", "abc", false, true},
	{pcreDialect, "/Case(?i:Less)More/i", "", "Case", false, false}, // the group ends the run
	{pcreDialect, "/CaseSensitive/i", "", "CaseSensitive", false, false},
}

// TestPrefilterFindsLiterals checks the literals found for prefilterCases.
func TestPrefilterFindsLiterals(t *testing.T) {
	for _, c := range prefilterCases {
		rules, err := parsePatternTable(c.d, "t", c.pattern+" X", OpenOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		pre := rules[0].first.pre
		want := prefilter{prefix: literal{c.prefix, c.pfold}, inner: literal{c.inner, c.infold}}
		if c.prefix == "" {
			want.prefix = literal{}
		}
		if c.inner == "" {
			want.inner = literal{}
		}
		if pre.prefix != want.prefix || pre.inner != want.inner {
			t.Errorf("%s %s: prefilter %+v, want %+v", c.d.typ, c.pattern, pre, want)
		}
	}
}

// prefilterTables are table texts from the package's tests and seeds and
// from the edge profile, with the dialect they are written in.
func prefilterTables(t *testing.T) map[*patternDialect][]string {
	tables := map[*patternDialect][]string{regexpDialect: {regexpFile}}
	for _, c := range pcreCases {
		tables[pcreDialect] = append(tables[pcreDialect], c.rules)
	}
	for _, text := range pcreLiveFiles {
		tables[pcreDialect] = append(tables[pcreDialect], text)
	}
	for name, d := range map[string]*patternDialect{"FuzzRegexpTable": regexpDialect, "FuzzPCRETable": pcreDialect} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The seed's first value is the table text.
			lines := strings.Split(string(data), "\n")
			if len(lines) < 2 || !strings.HasPrefix(lines[1], "string(") {
				continue
			}
			text, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
			if err == nil {
				tables[d] = append(tables[d], text)
			}
		}
	}
	for _, c := range prefilterCases {
		tables[c.d] = append(tables[c.d], c.pattern+" X")
	}
	hdrRegexp, hdrPCRE, body := edgeProfileTexts()
	tables[regexpDialect] = append(tables[regexpDialect], hdrRegexp, body)
	tables[pcreDialect] = append(tables[pcreDialect], hdrPCRE)
	return tables
}

// TestPrefilterSameAnswers compares lookups with and without prefilters
// over the package's test tables and fuzz seeds, each pattern on its own
// and each table as a whole, for keys built around the literals the
// prefilters look for: present, absent, cut short, in other cases, next
// to bytes 0x80-0xFF and newlines.
func TestPrefilterSameAnswers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for d, texts := range prefilterTables(t) {
		for _, text := range texts {
			rules, err := parsePatternTable(d, "t", text, OpenOptions{})
			if err != nil {
				continue // a seed that does not load
			}
			keys := prefilterKeys(rng, text, rules)
			for _, key := range keys {
				checkSameLookup(t, d, rules, key)
				k := &lookupKey{text: toMatchable(key)}
				for i := range rules {
					for _, p := range []*regexpPattern{&rules[i].first, rules[i].second} {
						if p == nil || rules[i].op == regexpEndif {
							continue
						}
						if _, ok, err := p.m.match(k.text, 0); err == nil && ok && !p.pre.mayMatch(k) {
							t.Errorf("%s table line %d: prefilter %+v refuses %q, which the pattern matches", d.typ, rules[i].line, p.pre, key)
						}
					}
				}
			}
		}
	}
}

// prefilterKeys returns keys for a table: pieces of its text and of its
// prefilters' literals, varied.
func prefilterKeys(rng *rand.Rand, text string, rules []regexpRule) []string {
	pieces := []string{"", "\n", "\xe9", "\xc3\xa9", " ", "0", "9", "x"}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune("/\\()[]{}|*+?^$!", r) || r == '\n' }) {
		pieces = append(pieces, w)
	}
	for i := range rules {
		for _, p := range []*regexpPattern{&rules[i].first, rules[i].second} {
			if p != nil {
				pieces = append(pieces, p.pre.prefix.text, p.pre.inner.text)
			}
		}
	}
	keys := slices.Clone(pieces)
	for range 300 {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			s := pieces[rng.IntN(len(pieces))]
			switch rng.IntN(4) {
			case 0:
				s = strings.ToUpper(s)
			case 1:
				if len(s) > 1 {
					s = s[:rng.IntN(len(s))] // cut short
				}
			}
			b.WriteString(s)
		}
		keys = append(keys, b.String())
	}
	return keys
}
