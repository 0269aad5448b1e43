package rules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRegexpMatchesPostmap holds answers of the real Postfix (the GNU
// anchors \b \B \` \' too, which glibc's regcomp takes): each want and
// found is what Debian's Postfix 3.7.11 printed for
//
//	postmap -c DIR -q KEY SPEC    (DIR holds an empty main.cf)
//
// (found is postmap's exit status 0). Among them, Postfix's default
// smtpd_forbidden_commands table regexp:{{/^[^A-Z]/ Bogus}}: with the
// default "i" flag on, [^A-Z] is read case-insensitively, so it excludes
// lower-case letters too and "get" is NOT bogus; only a command that starts
// with a non-letter is. dict_regexp.c compiles with REG_ICASE unless "i" is
// given, and does not fold the key.
//
// Postfix runs its regexps in the C locale, on bytes: "é" is two
// characters to '.', and É does not match /é/ case-insensitively. Cases
// such as "star question is not lazy", "double star" and "m: negated
// bracket skips newline" fail when a pattern is compiled as Perl syntax
// behind a (?i)(?s) or (?i)(?m) prefix; see compileERE.
func TestRegexpMatchesPostmap(t *testing.T) {
	for _, c := range []struct {
		name, spec, key, want string
		found                 bool
	}{
		{"forbidden_commands lowercase command", "regexp:{{/^[^A-Z]/ Bogus}}", "get", "", false},
		{"GNU word boundary", `regexp:{{/\bviagra\b/ X}}`, "buy viagra now", "X", true},
		{"GNU word boundary inside a word", `regexp:{{/\bviagra\b/ X}}`, "buyviagra now", "", false},
		{"GNU word boundary at the ends", `regexp:{{/\bviagra\b/ X}}`, "viagra", "X", true},
		{"GNU word boundary: underscore is a word character", `regexp:{{/\bviagra\b/ X}}`, "Viagra_pill", "", false},
		{"GNU word boundary after .*", `regexp:{{/^Subject:.*\bfree\b/ X}}`, "Subject: Free money", "X", true},
		{"GNU word boundary after .* in a word", `regexp:{{/^Subject:.*\bfree\b/ X}}`, "Subject: carefree", "", false},
		{"GNU word boundary before a high byte", `regexp:{{/\bé/ X}}`, "xé", "X", true},
		{"GNU word boundary: high bytes are not word characters", `regexp:{{/x\b/ X}}`, "xé", "X", true},
		{"GNU not a word boundary", `regexp:{{/ab\B/ X}}`, "abc", "X", true},
		{"GNU not a word boundary fails", `regexp:{{/ab\B/ X}}`, "ab c", "", false},
		{"GNU start of text", "regexp:{{/\\`ab/ X}}", "abc", "X", true},
		{"GNU start of text fails", "regexp:{{/\\`ab/ X}}", "xab", "", false},
		{"GNU end of text", `regexp:{{/ab\'/ X}}`, "xab", "X", true},
		{"GNU end of text fails", `regexp:{{/ab\'/ X}}`, "abx", "", false},
		{"forbidden_commands uppercase command", "regexp:{{/^[^A-Z]/ Bogus}}", "GET", "", false},
		{"forbidden_commands digit", "regexp:{{/^[^A-Z]/ Bogus}}", "1get", "Bogus", true},
		{"forbidden_commands leading space", "regexp:{{/^[^A-Z]/ Bogus}}", " get", "Bogus", true},
		{"forbidden_commands punctuation", "regexp:{{/^[^A-Z]/ Bogus}}", ".", "Bogus", true},
		{"i flag makes the class case-sensitive", "regexp:{{/^[^A-Z]/i Bogus}}", "get", "Bogus", true},
		{"i flag makes literals case-sensitive", "regexp:{{/^get$/i X}}", "GET", "", false},
		{"default is case-insensitive", "regexp:{{/^get$/ X}}", "GET", "X", true},
		{"key case is kept", "regexp:{{/^GET$/ X}}", "Get", "X", true},
		{"substitution forms", "regexp:{{/^(.*)@(.*)$/ ${2} $(1) $$1 $1}}", "user@Example.com", "Example.com user $1 user", true},
		{"substitution keeps key case", "regexp:{{/^([a-z]+)/ <$1>}}", "MiXed.case", "<MiXed>", true},
		{"unmatched group is empty", "regexp:{{/(a)?b/ [$1]}}", "b", "[]", true},
		{"group ten", "regexp:{{/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)/ $10-${10}}}", "abcdefghij", "j-j", true},
		{"leading zero", "regexp:{{/(x)/ $01}}", "x", "x", true},
		{"dollar dollar", "regexp:{{/(x)/ a$$b $$}}", "x", "a$b $", true},
		{"negated rule matches", "regexp:{{!/bar/ NOTBAR}}", "foo", "NOTBAR", true},
		{"negated rule does not match", "regexp:{{!/bar/ NOTBAR}}", "bar", "", false},
		{"negated literal dollar", "regexp:{{!/y/ cost $$5}}", "x", "cost $5", true},
		{"blank after bang", "regexp:{{! /b/ X}, {!!/b/ Y}}", "ab", "Y", true},
		{"two patterns both hold", "regexp:{{/f/!/bar/ X}}", "foo", "X", true},
		{"two patterns second fails", "regexp:{{/f/!/bar/ X}}", "foobar", "", false},
		{"two patterns flags", "regexp:{{/f/i!/bar/ X}}", "FOO", "", false},
		{"first match wins", "regexp:{{/a/ first}, {/b/ second}}", "ab", "first", true},
		{"rules see the whole key", "regexp:{{/^b/ X}, {/b$/ Y}}", "ab", "Y", true},
		{"if holds", "regexp:{{if/a/}, {/b/ in}, {endif}, {/./ out}}", "ab", "in", true},
		{"if fails", "regexp:{{if/a/}, {/b/ in}, {endif}, {/./ out}}", "xb", "out", true},
		{"keywords in any case", "regexp:{{IF /a/}, {/b/ in}, {ENDIF}}", "ab", "in", true},
		{"nested ifs", "regexp:{{if /a/}, {if !/c/}, {/(b)/ [$1]}, {endif}, {endif}}", "AB", "[B]", true},
		{"nested inner fails", "regexp:{{if /a/}, {if !/c/}, {/(b)/ [$1]}, {endif}, {/./ outer}, {endif}}", "ABC", "outer", true},
		{"if negated skips block", "regexp:{{if !/a/}, {/(b)/ [$1]}, {endif}, {/./ after}}", "AB", "after", true},
		{"pattern with blanks", "regexp:{{/a c/ ok}}", "a c", "ok", true},
		{"result keeps inner blanks", "regexp:{{/a b/ X Y  }}", "a b", "X Y", true},
		{"escaped delimiter", "regexp:{{/a\\/b/ X}}", "a/b", "X", true},
		{"other delimiter", "regexp:{{|a/b| X}}", "a/b", "X", true},
		{"escaped dot", "regexp:{{/a\\.b/ X}}", "axb", "", false},
		{"leftmost longest", "regexp:{{/(a|ab)(c|bcd)(d*)/ [$1][$2][$3]}}", "abcd", "[a][bcd][]", true},
		{"longest subexpressions", "regexp:{{/(x*)(x|y)*/ [$1][$2]}}", "xyz", "[x][y]", true},
		{"star question is not lazy", "regexp:{{/^(a*?)(a*)$/ [$1][$2]}}", "aaa", "[aaa][]", true},
		{"double question", "regexp:{{/^(a??)(a*)$/ [$1][$2]}}", "aaa", "[a][aa]", true},
		{"double star", "regexp:{{/a**/ X}}", "a", "X", true},
		{"interval without minimum", "regexp:{{/^a{,3}$/ X}}", "aaa", "X", true},
		{"interval without minimum literal", "regexp:{{/^a{,3}$/ X}}", "a{,3}", "", false},
		{"backslash in brackets", "regexp:{{/^a[\\]b$/ X}}", "a\\b", "X", true},
		{"bracket backslash is a member before a dot", "regexp:{{/^a[\\.]b$/ X}}", "a\\b", "X", true},
		{"close bracket first", "regexp:{{/[]]/ X}}", "]", "X", true},
		{"negated close bracket", "regexp:{{/^[^]]$/ X}}", "x", "X", true},
		{"gnu word class", "regexp:{{/^\\w+$/ X}}", "a_1", "X", true},
		{"gnu non-space", "regexp:{{/^\\S+$/ X}}", "abc", "X", true},
		{"gnu space", "regexp:{{/a\\sb/ X}}", "a b", "X", true},
		{"dot matches one byte", "regexp:{{/^.$/ X}}", "é", "", false},
		{"two dots match a two-byte character", "regexp:{{/^..$/ X}}", "é", "X", true},
		{"no case folding beyond ASCII", "regexp:{{/é/ X}}", "É", "", false},
		{"bytes substituted back", "regexp:{{/^(.)(.*)$/ [$1][$2]}}", "éa", "[\xc3][\xa9a]", true},
		{"bracket of a two-byte character", "regexp:{{/^[é]$/ X}}", "é", "", false},
		{"empty table", "regexp:{}", "x", "", false},
		{"m: negated bracket skips newline", "regexp:{{/a[^x]b/m X}}", "a\nb", "", false},
		{"no m: negated bracket matches newline", "regexp:{{/a[^x]b/ X}}", "a\nb", "X", true},
		{"m: dot skips newline", "regexp:{{/a.b/m X}}", "a\nb", "", false},
		{"no m: dot matches newline", "regexp:{{/a.b/ X}}", "a\nb", "X", true},
		{"m: caret after newline", "regexp:{{/^b/m X}}", "a\nb", "X", true},
		{"no m: caret only at start", "regexp:{{/^b/ X}}", "a\nb", "", false},
		{"m: dollar before newline", "regexp:{{/^a$/m X}}", "a\nb", "X", true},
		{"no m: dollar only at end", "regexp:{{/a$/ X}}", "a\n", "", false},
		{"m: gnu non-word skips newline", "regexp:{{/a\\Wb/m X}}", "a\nb", "X", true},
		{"no m: gnu non-word matches newline", "regexp:{{/a\\Wb/ X}}", "a\nb", "X", true},
		{"gnu space matches vertical tab", "regexp:{{/a\\sb/ X}}", "a\vb", "X", true},
		{"m: named class matches newline", "regexp:{{/a[[:space:]]b/m X}}", "a\nb", "X", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb, err := Open(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := lookup(t, tb, c.key)
			if v != c.want || ok != c.found {
				t.Errorf("%s: Lookup(%q) = %q, %v; postmap says %q, %v", c.spec, c.key, v, ok, c.want, c.found)
			}
		})
	}
}

// regexpFile is a table file whose answers were also taken from postmap
// (postmap -q KEY regexp:FILE): comments, a continued line with a comment
// inside it, an if block, a tab separator, and a result on a continuation
// line.
var regexpFile = strings.Join([]string{
	"# a regexp table",
	`/^(.*)@example\.com$/   local $1`,
	"# a comment inside a continued line",
	"    continued",
	"",
	"if /^postmaster@/",
	"/@(.*)$/\tpm $1",
	"endif",
	"   # indented comment",
	"!/@/    no at sign",
	`/^user@(other)\.(net)$/`,
	"  $2 $1",
	"/ spaced key /  spaced",
	"",
}, "\n")

func TestRegexpFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "regexp")
	writeFile(t, path, regexpFile)
	tb, err := Open("regexp:" + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, key, want string
		found           bool
	}{
		{"continuation keeps its blanks", "joe@example.com", "local joe    continued", true},
		{"rule before the if wins", "postmaster@example.com", "local postmaster    continued", true},
		{"inside the if", "postmaster@x.org", "pm x.org", true},
		{"negated rule", "nobody", "no at sign", true},
		{"negated rule comes first", " spaced key ", "no at sign", true},
		{"result on a continuation line", "user@other.net", "net other", true},
		{"key case kept in the value", "Joe@EXAMPLE.COM", "local Joe    continued", true},
		{"no rule matches", "x@y", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, ok := lookup(t, tb, c.key)
			if v != c.want || ok != c.found {
				t.Errorf("Lookup(%q) = %q, %v; postmap says %q, %v", c.key, v, ok, c.want, c.found)
			}
		})
	}
}

func TestRegexpTableKind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "regexp")
	writeFile(t, path, "/^a/ X\n")
	for _, spec := range []string{"regexp:" + path, "proxy:regexp:" + path, "regexp:{{/^a/ X}}"} {
		tb, err := Open(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if IsFixedString(tb) {
			t.Errorf("%s is a fixed-string table", spec)
		}
		if got, want := tb.(fmt.Stringer).String(), strings.TrimPrefix(spec, "proxy:"); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		if v, ok := lookup(t, tb, "ABC"); v != "X" || !ok {
			t.Errorf("%s: Lookup(ABC) = %q, %v", spec, v, ok)
		}
	}
}

// TestRegexpLoadErrors: where Postfix warns "skipping this rule" or
// ignores a line, postgate refuses the table; the message names the table
// and line as Postfix's does. The texts marked (postmap) are Postfix's own,
// without "ignoring"/"skipping this rule".
func TestRegexpLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
	}{
		{"unknown flag (postmap)", "/a/ ok\n/a/q X\n", `line 2: unknown regexp option "q"`},
		{"missing delimiter (postmap)", "/a X\n", `line 1: no closing regexp delimiter "/"`},
		{"trailing backslash hides the delimiter", `/a\/ X` + "\n", `line 1: no closing regexp delimiter "/"`},
		{"bad pattern names the original", "/a/ ok\n# c\n/b/\n  q result\n/c/ z\n  continued\n/(d/ X\n", "line 7: bad regular expression `(d`: missing closing )"},
		{"endif without if (postmap)", "endif\n", "line 1: ENDIF without matching IF"},
		{"missing endif names the open if (postmap)", "/a/ ok\nif /x/\nif /y/\n/b/ c\nendif\n", "line 2: IF has no matching ENDIF"},
		{"unrecognized request (postmap)", "/a/ ok\nfoo bar\n", "line 2: unrecognized request"},
		{"word that only starts with if", "iffy /a/\n", "line 1: unrecognized request"},
		{"no regexp (postmap)", "!\n", "line 1: no regexp"},
		{"no regexp after if", "if\nendif\n", "line 1: no regexp"},
		{"$n in a negated rule (postmap)", "!/(bar)/ $1\n", "line 1: $number found in negative match replacement text"},
		{"group out of range (postmap)", "/(a)/ $2\n", `line 1: out of range replacement index "2"`},
		{"group zero (postmap)", "/(a)/ $0\n", `line 1: bad replacement syntax: out-of-range replacement index "0"`},
		{"non-numeric index (postmap)", "/(x)/ $1x\n", `line 1: bad replacement syntax: non-numeric replacement index "1x"`},
		{"empty macro name (postmap)", "/(a)/ a$\n", `line 1: bad replacement syntax: empty macro name: "a$"`},
		{"empty braces", "/(a)/ ${}\n", `line 1: bad replacement syntax: empty macro name`},
		{"truncated reference (postmap)", "/(a)/ $(1\n", `line 1: bad replacement syntax: truncated macro reference: "$(1"`},
		{"huge index", "/(a)/ $99999999999999999999\n", `line 1: bad replacement syntax: out of range replacement index "99999999999999999999"`},
		{"basic regular expressions", "/a/x X\n", `line 1: basic regular expressions are not supported (the "x" flag)`},
		{"bad second pattern", "/a/!/(/ X\n", "line 1: bad regular expression `(`: missing closing )"},
		{"backreference", `/(a)\1/ X` + "\n", "line 1: bad regular expression `(a)\\1`: unsupported escape sequence `\\1`"},
		{"GNU word start anchor", `/\<foo/ X` + "\n", "unsupported escape sequence `\\<`"},
		{"Go's tab escape means t in POSIX", `/a\tb/ X` + "\n", "unsupported escape sequence `\\t`"},
		{"collating element", "/[[.a.]]/ X\n", "collating elements and equivalence classes are not supported"},
		{"equivalence class", "/[[=a=]]/ X\n", "collating elements and equivalence classes are not supported"},
		{"unterminated class name", "/[[:alpha/ X\n", `unmatched "[:"`},
		{"unterminated bracket", "/[ab/ X\n", "missing closing ]"},
		{"invalid UTF-8 is bytes, not an error", "/\xff/ X\n/(/ Y\n", "line 2: bad regular expression"},
		{"leading whitespace", "  /a/ X\n", "line 1: logical line must not start with whitespace"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "regexp")
			writeFile(t, path, c.text)
			_, err := Open("regexp:" + path)
			prefix := "regexp map " + path + ", "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open error = %v, want %q...%q", err, prefix, c.want)
			}
		})
	}
}

func TestRegexpInlineErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		// postmap: "regexp map: no '{' at start of text in "/a/""
		{"regexp:{ /a/ X }", `regexp map: no '{' at start of text in "/a/"`},
		{"regexp:{{/a/ X}", `regexp map: missing '}' in "{{/a/ X}"`},
		{"regexp:{{/a/ X}x}", `regexp map: syntax error after '}' in "{/a/ X}x"`},
		// The inline name stands for the file name, as in postmap.
		{"regexp:{{/a/ X}, {/a/q Y}}", `regexp map {{/a/ X}, {/a/q Y}}, line 2: unknown regexp option "q"`},
		{"regexp:{{/(a)/ $2}}", `regexp map {{/(a)/ $2}}, line 1: out of range replacement index "2"`},
	} {
		t.Run(c.spec, func(t *testing.T) {
			_, err := Open(c.spec)
			if err == nil || err.Error() != c.want {
				t.Errorf("Open(%q) error = %v, want %q", c.spec, err, c.want)
			}
		})
	}
	if _, err := Open("regexp:" + filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v", err)
	}
}

// TestRegexpWarnings: where Postfix warns and keeps the rule, so does
// postgate, through OpenOptions.Warn.
func TestRegexpWarnings(t *testing.T) {
	var warnings []string
	o := OpenOptions{Warn: func(m string) { warnings = append(warnings, m) }}
	tb, err := OpenWith("regexp:{{/a/}, {if /b/ /c/ X}, {/c/ Y}, {endif junk}}", o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"line 1: no replacement text: using empty string",
		`line 2: ignoring extra text after IF statement: "/c/ X"; do not prepend whitespace`,
		"line 4: ignoring extra text after ENDIF",
	}
	checkWarnings(t, warnings, "regexp map {{/a/}, ", want)
	// Postfix's table answers "" here; its maps layer then reports a
	// configuration error. The table itself says found.
	if v, ok := lookup(t, tb, "a"); v != "" || !ok {
		t.Errorf("Lookup(a) = %q, %v; want \"\", true", v, ok)
	}
	if v, ok := lookup(t, tb, "bc"); v != "Y" || !ok {
		t.Errorf("Lookup(bc) = %q, %v; want Y", v, ok)
	}
}

func TestRegexpConcurrentLookups(t *testing.T) {
	tb, err := Open(`regexp:{{/^(.*)@(.*)$/ $2 $1}, {if /x/}, {/(y)/ $1}, {endif}}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				v, ok, err := tb.Lookup(context.Background(), "u@é.example")
				if err != nil || !ok || v != "é.example u" {
					t.Errorf("Lookup = %q, %v, %v", v, ok, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

func TestMatchableRoundTrip(t *testing.T) {
	for _, s := range []string{"", "ascii", "é", "\xff\x80a", "\ue080", "a\x00b"} {
		if got := fromMatchable(toMatchable(s)); got != s {
			t.Errorf("fromMatchable(toMatchable(%q)) = %q", s, got)
		}
	}
}

// checkWarnings compares a table's warnings with want, in order: each
// starts with prefix (the table named as Postfix names it) and contains
// its want.
func checkWarnings(t *testing.T, warnings []string, prefix string, want []string) {
	t.Helper()
	if len(warnings) != len(want) {
		t.Fatalf("warnings = %q, want %d", warnings, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(warnings[i], prefix) || !strings.Contains(warnings[i], w) {
			t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
		}
	}
}
