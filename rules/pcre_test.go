package rules

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pcreCase is a pcre: table and a key, with the answer of the real
// Postfix: what Debian's Postfix 3.7.11 with postfix-pcre (PCRE2 10.42)
// printed for
//
//	postmap -c DIR -q KEY pcre:FILE    (DIR holds an empty main.cf)
//
// where FILE holds rules, one per line (found is postmap's exit status 0).
// TestPCREMatchesPostmapLive asks postmap again for each of them.
type pcreCase struct {
	name, rules, key, want string
	found                  bool
}

var pcreCases = []pcreCase{
	// Lookaround: the classic "anyone at friend@ but my domain".
	{"negative lookahead", `/^friend@(?!my\.domain).*$/ 550 nope`, "friend@other.com", "550 nope", true},
	{"negative lookahead excludes", `/^friend@(?!my\.domain).*$/ 550 nope`, "friend@my.domain", "", false},
	{"negative lookahead is caseless", `/^friend@(?!my\.domain).*$/ 550 nope`, "FRIEND@MY.DOMAIN", "", false},
	{"positive lookbehind", `/(?<=@)example\.com$/ LB`, "u@example.com", "LB", true},
	{"positive lookbehind fails", `/(?<=@)example\.com$/ LB`, "uexample.com", "", false},
	{"negative lookbehind excludes", `/(?<!www\.)example\.com$/ NLB`, "www.example.com", "", false},
	{"negative lookbehind", `/(?<!www\.)example\.com$/ NLB`, "mail.example.com", "NLB", true},
	{"lookbehind branches of two lengths", `/(?<=a|bc)d/ X`, "bcd", "X", true},
	{"lookbehind with an anchor", `/(?<=^|,)x/ X`, "a,x", "X", true},
	{"lookbehind with a count", `/(?<=\d{3})x/ X`, "12x", "", false},
	{"lookahead anywhere", `/^(?!.*spam)/ X`, "nospam", "", false},
	// Back references, caseless by default.
	{"backreference", `/^(a)\1$/ BR $1`, "aa", "BR a", true},
	{"backreference is caseless", `/^(a)\1$/ BR $1`, "aA", "BR a", true},
	{"backreference with i flag", `/^(a)\1$/i BR $1`, "aA", "", false},
	{"backreference ten", `/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\10/ X`, "abcdefghijj", "X", true},
	{"named group, Python style", `/(?P<n>a)(?P=n)/ $1`, "aa", "a", true},
	{"named groups numbered in order", `/(?<n>a)(b)/ $2`, "ab", "b", true},
	{"relative backreference", `/(a)(b)\g{-2}/ X`, "aba", "X", true},
	{"named backreference", `/(?'n'a)\k'n'/ X`, "aa", "X", true},
	{"condition on a group", `/^(a)?(?(1)b|c)/ X`, "c", "X", true},
	// Flags: i (on by default), m, s (on by default), x, A, E, U, X.
	{"default is caseless", `/^GET$/ X`, "get", "X", true},
	{"i: class is case-sensitive", `/^[^a-z]/i X`, "G", "X", true},
	{"caseless negated class", `/^[^a-z]/ X`, "G", "", false},
	{"caseless upper is alpha", `/^[[:upper:]]$/ X`, "a", "X", true},
	{"caseless negated lower", `/^[[:^lower:]]$/ X`, "A", "", false},
	{"caseless hex escape", `/\x41/ X`, "a", "X", true},
	{"inline i off", `/(?-i)abc/ X`, "ABC", "", false},
	{"inline i scope", `/a(?i:b)c/i X`, "aBC", "", false},
	{"inline i carries to the next branch", `/(a(?i)b|c)/i X`, "C", "X", true},
	{"(?^) resets to case-sensitive", `/(?^)A/ X`, "a", "", false},
	{"s default: dot matches newline", `/^a.b$/ X`, "a\nb", "X", true},
	{"s: dot skips newline", `/^a.b$/s X`, "a\nb", "", false},
	{"m: caret after newline", `/^b/m X`, "a\nb", "X", true},
	{"no m: caret only at start", `/^b/ X`, "a\nb", "", false},
	{"m: no caret after a final newline", `/\n^/m X`, "a\n", "", false},
	{"m: empty line", `/^$/m X`, "\n", "X", true},
	{"m: dollar before newline", `/^a$/m X`, "a\nb", "X", true},
	{"dollar before a final newline", `/^a$/ X`, "a\n", "X", true},
	{"CR is not a newline", `/^a$/m X`, "a\r\nb", "", false},
	{"E: dollar only at the end", `/^a$/E X`, "a\n", "", false},
	{"E is ignored with m", `/^a$/Em X`, "a\n", "X", true},
	{"backslash z", `/^a\z/ X`, "a\n", "", false},
	{"backslash Z", `/^a\Z/ X`, "a\n", "X", true},
	{"x: blanks ignored", `/a b/x X`, "ab", "X", true},
	{"x: escaped blank", `/a\ b/x X`, "a b", "X", true},
	{"x: comment", `/a#comment/x X`, "a", "X", true},
	{"inline x", `/(?x) a b c /i X`, "abc", "X", true},
	{"A: anchored", `/b/A X`, "ab", "", false},
	{"A: at the start", `/b/A X`, "ba", "X", true},
	{"U: greedy becomes lazy", `/(a+)/U $1`, "aaa", "a", true},
	{"U: lazy becomes greedy", `/(a+?)/U $1`, "aaa", "aaa", true},
	{"greedy", `/(a+)/ $1`, "aaa", "aaa", true},
	{"lazy", `/(a+?)/ $1`, "aaa", "a", true},
	{"X: obsolete, ignored", `/a/X Y`, "a", "Y", true},
	// Other PCRE syntax.
	{"possessive", `/^a++a/ X`, "aaa", "", false},
	{"atomic group", `/^(?>a+)a/ X`, "aaa", "", false},
	{"quoted", `/\Qa.b\E/ X`, "axb", "", false},
	{"quantifier after quote", `/\Qa.b\E+/ X`, "a.bb", "X", true},
	{"brace without minimum is literal", `/a{,3}/ X`, "a{,3}", "X", true},
	{"counted", `/^a{2,3}$/ X`, "aaaa", "", false},
	{"comment group", `/a(?#comment)*/ X`, "aaa", "X", true},
	{"no auto capture", `/(?n)(a)(?<x>b)/ $1`, "ab", "b", true},
	{"class subtraction is not .NET's", `/[a-z-[aeiou]]/ X`, "a]", "X", true},
	{"class intersection is not Java's", `/[a-z&&[^b]]/ X`, "b", "", false},
	{"close bracket first", `/[^]a]/ X`, "]", "", false},
	{"hyphen after a class escape", `/[\d-]/ X`, "a-", "X", true},
	{"word boundary", `/\bfoo\b/ X`, "afoob", "", false},
	{"newline sequence", `/^\R$/ X`, "\n", "X", true},
	{"G is the start", `/\G a/x X`, "ba", "", false},
	{"leftmost first", `/^(a|ab)(c|bcd)(d*)$/ [$1][$2][$3]`, "abcd", "[a][bcd][]", true},
	{"last iteration kept", `/^(a|b)+$/ X $1`, "abab", "X b", true},
	{"group kept from an earlier iteration", `/^(?:(a)|b)+$/ $1`, "ab", "a", true},
	{"unset group is empty", `/^(a)?b/ [$1]`, "b", "[]", true},
	// Bytes: no UTF, "C" locale.
	{"dot is one byte", `/^.$/ X`, "é", "", false},
	{"two dots match a two-byte character", `/^..$/ X`, "é", "X", true},
	{"hex escape is a byte", `/^\x{e9}$/ X`, "\xe9", "X", true},
	{"octal escape is a byte", `/\351/ X`, "\xe9", "X", true},
	{"high byte range", `/[\x80-\xff]/ X`, "é", "X", true},
	{"word is ASCII", `/^\w+$/ X`, "é", "", false},
	{"non-word matches high bytes", `/^\W+$/ X`, "é", "X", true},
	{"no case folding beyond ASCII", `/é/ X`, "É", "", false},
	{"bracket of a two-byte character", `/^[é]$/ X`, "é", "", false},
	{"bytes substituted back", `/^(.)(.*)$/ [$1][$2]`, "éa", "[\xc3][\xa9a]", true},
	{"horizontal space includes 0xA0", `/^\h$/ X`, "\xa0", "X", true},
	// A header of header_size_limit bytes.
	{"long header, not containing", `/^(?:.(?!viagra))*$/ clean`, pcreLongHeader, "clean", true},
	{"long header, alternation to the end", `/(a|b|c|d|e|o|r|w|:|,| )+$/ X`, pcreLongHeader, "X", true},
	// Table syntax shared with regexp:.
	{"substitution forms", `/^(.*)@(.*)$/ ${2} $(1) $$1 $1`, "user@Example.com", "Example.com user $1 user", true},
	{"negated rule", `!/bar/ NOTBAR`, "foo", "NOTBAR", true},
	{"if holds", "if /a/\n/b/ in\nendif\n/./ out", "ab", "in", true},
	{"if fails", "if /a/\n/b/ in\nendif\n/./ out", "xb", "out", true},
	{"if negated", "if !/a/\n/(b)/ [$1]\nendif\n/./ after", "AB", "after", true},
	{"nested ifs", "if /a/\nif !/c/\n/(b)/ [$1]\nendif\nendif", "AB", "[B]", true},
	{"first match wins", "/a/ first\n/b/ second", "ab", "first", true},
}

// pcreLongHeader is a header line of about header_size_limit (102400)
// bytes.
var pcreLongHeader = "Subject: " + strings.Repeat("word, ", 17000)

func TestPCREMatchesPostmap(t *testing.T) {
	for _, c := range pcreCases {
		t.Run(c.name, func(t *testing.T) {
			tb := openPCREText(t, c.rules)
			// The answer is what is compared here, however slow the
			// machine (the race detector makes the long header take
			// longer than pcreTimeout); TestPCRETimeout tests the timeout.
			for _, r := range tb.(*regexpTable).src.get() {
				if r.op != regexpEndif {
					r.first.m.(*pcreMatcher).re.MatchTimeout = time.Minute
				}
			}
			v, ok, err := tb.Lookup(context.Background(), c.key)
			if err != nil {
				t.Fatalf("Lookup(%.40q): %v", c.key, err)
			}
			if v != c.want || ok != c.found {
				t.Errorf("%q: Lookup(%.40q) = %q, %v; postmap says %q, %v", c.rules, c.key, v, ok, c.want, c.found)
			}
		})
	}
}

// openPCREText opens a pcre: table file holding text.
func openPCREText(t *testing.T, text string) Table {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pcre")
	writeFile(t, path, text+"\n")
	tb, err := OpenWith("pcre:"+path, OpenOptions{Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// pcreLiveFiles are tables run by both the real postmap and postgate over
// pcreLiveKeys, every answer compared.
var pcreLiveFiles = map[string]string{
	"access": `# sender access, as admins write them
/^friend@(?!my\.domain).*$/        550 not from here
/^(.+)@(\w+)\.example\.(com|net)$/ OK $2 $3 $1
/^postmaster@/                     OK
/(?<!\.)example\.org$/             REJECT apex only
/^([a-z])\1+@/                     REJECT repeated $1
!/@/                               DUNNO no domain
`,
	"headers": `# header_checks style, flags and if/endif
if /^Subject:/
/^Subject:\s*(?:re|fwd?):\s*(.*)$/ WARN reply to $1
/viagra|c[i1]al[i1]s/                 REJECT spam
/^Subject:.{60,}/                     REJECT long subject
endif
/^X-Mailer:\s*(\S+)/i                 INFO mailer $1
/^From:.*<(?P<addr>[^>]+)>/           INFO from $1
/^Received:\s+from\s+(\S+)\s+\((?:[^()]*\s)?\[([\d.]+)\]\)/  INFO relay $1 $2
/^[\x80-\xff]/                        REJECT 8-bit start
/^Content-Type:\s*text\/html\b/U      FILTER html:
`,
	"flags": `/^a.b$/s        s-off
/^x\.y$/A       anchored
/^(ab)+$/x      ext
/ c d /x        spaced
/^(a+?)(a*)$/U  [$1][$2]
/^tail$/E       dollar-end
/^é+$/          eacute
/\bword\b/      word
/[[:punct:]]{3}/ punct
`,
}

var pcreLiveKeys = []string{
	"friend@other.com", "friend@my.domain", "FRIEND@Other.COM",
	"joe@mail.example.com", "Joe@MAIL.example.net", "joe@mail.example.org",
	"postmaster@anywhere", "user@example.org", "user@sub.example.org", "aaa@x", "Bob@x", "nodomain",
	"Subject: Re: hello", "subject: fwd: hi there", "Subject: cheap cialis", "Subject: V1AGRA",
	"Subject: " + strings.Repeat("long ", 15), "Subject: plain",
	"X-Mailer: Mutt/2.2", "x-mailer:   Outlook", "From: Joe <joe@example.com>", "From: nobody",
	"Received: from mx.example.com (mx.example.com [192.0.2.1])", "Received: from x (helo [10.0.0.1])",
	"\xe9t\xe9", "é", "ééé", "éa", "Content-Type: text/html; charset=utf-8", "content-type: text/htmlx",
	"axb", "a.b", "x.y", "X.Y", "zx.y", "abab", "ABAB", "ab ab", "cd", " cd ", " c d ",
	"aaaa", "tail", "TAIL", "a word here", "awordb", "!!!", "a!?", "",
}

// TestPCREMatchesPostmapLive runs the real postmap over pcreLiveFiles and
// pcreLiveKeys and compares every answer with postgate's; then it asks
// postmap again for each case of TestPCREMatchesPostmap. It needs Debian's
// postfix and postfix-pcre packages (make deps installs them).
func TestPCREMatchesPostmapLive(t *testing.T) {
	postmap := needPostmapPCRE(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.Mkdir(config, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(config, "main.cf"), "")
	for name, text := range pcreLiveFiles {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			writeFile(t, path, text)
			want := postmapBatch(t, postmap, config, "pcre:"+path, pcreLiveKeys)
			tb, err := Open("pcre:" + path)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range pcreLiveKeys {
				if key == "" {
					continue // postmap -q - skips empty lines
				}
				v, ok := lookup(t, tb, key)
				w, found := want[key]
				if v != w || ok != found {
					t.Errorf("Lookup(%q) = %q, %v; postmap says %q, %v", key, v, ok, w, found)
				}
			}
		})
	}
	for i, c := range pcreCases {
		t.Run("recorded/"+c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, fmt.Sprintf("case%d", i))
			writeFile(t, path, c.rules+"\n")
			v, ok := postmapQuery(t, postmap, config, "pcre:"+path, c.key)
			if v != c.want || ok != c.found {
				t.Errorf("%q: postmap -q %.40q = %q, %v; recorded %q, %v", c.rules, c.key, v, ok, c.want, c.found)
			}
		})
	}
}

// needPostmapPCRE returns postmap's path once it has checked that postmap
// reads pcre: tables. A missing package fails the test: make test installs
// them.
func needPostmapPCRE(t *testing.T) string {
	t.Helper()
	postmap, err := exec.LookPath("postmap")
	if err != nil {
		postmap = "/usr/sbin/postmap"
		if _, err := os.Stat(postmap); err != nil {
			t.Fatal("postmap not found: install the Debian packages postfix and postfix-pcre (make deps)")
		}
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.cf"), "")
	out, err := exec.Command(postmap, "-c", dir, "-q", "x", "pcre:{{/x/ ok}}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("postmap cannot read pcre: tables (%v: %s): install the Debian package postfix-pcre (make deps)", err, out)
	}
	return postmap
}

// postmapQuery is postmap -q KEY SPEC: the value, and whether it was found.
func postmapQuery(t *testing.T, postmap, config, spec, key string) (string, bool) {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(postmap, "-c", config, "-q", key, spec)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSuffix(string(out), "\n"), true
	case errors.As(err, &ee) && ee.ExitCode() == 1 && !strings.Contains(stderr.String(), "fatal"):
		return "", false
	}
	t.Fatalf("postmap -q %q %s: %v: %s", key, spec, err, stderr.String())
	return "", false
}

// postmapBatch is postmap -q - SPEC over keys (none holding a newline or
// a tab): the found keys and their values.
func postmapBatch(t *testing.T, postmap, config, spec string, keys []string) map[string]string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command(postmap, "-c", config, "-q", "-", spec)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) || strings.Contains(stderr.String(), "warning") {
		t.Fatalf("postmap -q - %s: %v: %s", spec, err, stderr.String())
	}
	found := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "\t")
		found[k] = v
	}
	return found
}

// pcreLoadErrors are rules that Postfix skips with a warning, and postgate
// refuses: the table does not load, and the error names the table and
// line as Postfix's warning does. TestPCRELoadErrorsLive checks each
// postmap text.
var pcreLoadErrors = []struct {
	name, text string
	line       int
	postmap    string // Postfix's words after "pcre map FILE, line N: "
	postgate   string // postgate's
}{
	{"missing paren", "/a/ ok\n/(/ X", 2, "error in regex at offset 1: missing closing parenthesis", "error in regex at offset 1: missing closing parenthesis"},
	{"unmatched paren", "/)/ X", 1, "error in regex at offset 0: unmatched closing parenthesis", "unmatched closing parenthesis"},
	{"double quantifier", "/a**/ X", 1, "error in regex at offset 2: quantifier does not follow a repeatable item", "error in regex at offset 2: quantifier does not follow a repeatable item"},
	{"unterminated class", "/[a/ X", 1, "missing terminating ] for character class", "missing terminating ] for character class"},
	{"variable lookbehind", "# c\n/(?<=a+)b/ X", 2, "error in regex at offset 0: lookbehind assertion is not fixed length", "error in regex at offset 0: lookbehind assertion is not fixed length"},
	{"lookbehind group of two lengths", "/(?<=a(b|cd))e/ X", 1, "lookbehind assertion is not fixed length", "lookbehind assertion is not fixed length"},
	{"code point too large", `/\x{100}/ X`, 1, "character code point value in \\x{} or \\o{} is too large", "character code point value in \\x{} or \\o{} is too large"},
	{"octal too large", `/\400/ X`, 1, "octal value is greater than \\377 in 8-bit non-UTF-8 mode", "octal value is greater than \\377 in 8-bit non-UTF-8 mode"},
	{"collating element", "/[[.a.]]/ X", 1, "POSIX collating elements are not supported", "POSIX collating elements are not supported"},
	{"unknown class name", "/[[:foo:]]/ X", 1, "unknown POSIX class name", "unknown POSIX class name"},
	{"class outside brackets", "/[:alpha:]/ X", 1, "POSIX named classes are supported only within a class", "POSIX named classes are supported only within a class"},
	{"missing group", `/(a)\2/ X`, 1, "reference to non-existent subpattern", "reference to non-existent subpattern"},
	{"missing name", `/\k<n>/ X`, 1, "reference to non-existent subpattern", "reference to non-existent subpattern"},
	{"duplicate name", "/(?<n>a)(?<n>b)/ X", 1, "two named subpatterns have the same name", "two named subpatterns have the same name"},
	{"counts out of order", "/a{3,2}/ X", 1, "numbers out of order in {} quantifier", "numbers out of order in {} quantifier"},
	{"count too big", "/a{70000}/ X", 1, "number too big in {} quantifier", "number too big in {} quantifier"},
	{"range out of order", "/[z-a]/ X", 1, "range out of order in character class", "range out of order in character class"},
	{"range from a class", `/[\d-z]/ X`, 1, "invalid range in character class", "invalid range in character class"},
	{"unknown escape", `/\q/ X`, 1, "unrecognized character follows \\", "unrecognized character follows \\"},
	{"unknown option", "/(?z)/ X", 1, "unrecognized character after (? or (?-", "unrecognized character after (? or (?-"},
	{"three branch condition", "/(a)(?(1)a|b|c)/ X", 1, "conditional subpattern contains more than two branches", "conditional subpattern contains more than two branches"},
	{"quantified anchor", `/\b*/ X`, 1, "quantifier does not follow a repeatable item", "quantifier does not follow a repeatable item"},
	{"unterminated comment", "/(?#abc/ X", 1, "missing ) after (?# comment", "missing ) after (?# comment"},
	{"Perl case escape", `/\U/ X`, 1, "PCRE2 does not support \\F, \\L, \\l, \\N{name}, \\U, or \\u", "do not support \\U"},
	{"escape invalid in a class", `/[\B]/ X`, 1, "escape sequence is invalid in character class", "escape sequence is invalid in character class"},
	{"unknown flag", "/a/ ok\n/a/q X", 2, `unknown regexp option "q": skipping this rule`, `unknown regexp option "q"`},
	{"bang is a flag", "/a/!/b/ X", 1, `unknown regexp option "!": skipping this rule`, `unknown regexp option "!"`},
	{"missing delimiter", "/a X", 1, `no closing regexp delimiter "/": ignoring this rule`, `no closing regexp delimiter "/"`},
	{"group out of range", "/(a)/ $2", 1, `out of range replacement index "2": skipping this rule`, `out of range replacement index "2"`},
	{"group zero", "/(a)/ $0", 1, `out of range replacement index "0"`, `out-of-range replacement index "0"`},
	{"non-numeric index", "/(x)/ $1x", 1, `non-numeric replacement index "1x"`, `non-numeric replacement index "1x"`},
	{"$n in a negated rule", "!/(bar)/ $1", 1, "$number found in negative match replacement text: skipping this rule", "$number found in negative match replacement text"},
	{"endif without if", "endif", 1, "ignoring ENDIF without matching IF", "ENDIF without matching IF"},
	{"if without endif", "/a/ ok\nif /x/\nif /y/\n/b/ c\nendif", 2, "IF has no matching ENDIF", "IF has no matching ENDIF"},
	{"unrecognized request", "/a/ ok\nfoo bar", 2, "ignoring unrecognized request", "unrecognized request"},
}

func TestPCRELoadErrors(t *testing.T) {
	for _, c := range pcreLoadErrors {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pcre")
			writeFile(t, path, c.text+"\n")
			_, err := Open("pcre:" + path)
			prefix := fmt.Sprintf("pcre map %s, line %d: ", path, c.line)
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.postgate) {
				t.Errorf("Open error = %v, want %q...%q", err, prefix, c.postgate)
			}
		})
	}
}

// TestPCRELoadErrorsLive checks that postmap still warns about each of
// pcreLoadErrors at the recorded line, in the recorded words.
func TestPCRELoadErrorsLive(t *testing.T) {
	postmap := needPostmapPCRE(t)
	config := t.TempDir()
	writeFile(t, filepath.Join(config, "main.cf"), "")
	for _, c := range pcreLoadErrors {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "pcre")
			writeFile(t, path, c.text+"\n")
			var stderr strings.Builder
			cmd := exec.Command(postmap, "-c", config, "-q", "zzz", "pcre:"+path)
			cmd.Stderr = &stderr
			_ = cmd.Run() // found or not: the warning is what counts
			prefix := fmt.Sprintf("postmap: warning: pcre map %s, line %d: ", path, c.line)
			_, text, ok := strings.Cut(stderr.String(), prefix)
			if !ok || !strings.HasPrefix(text, c.postmap) && !strings.Contains(strings.SplitN(text, "\n", 2)[0], ": "+c.postmap) {
				t.Errorf("postmap printed %q, want %q...%q", stderr.String(), prefix, c.postmap)
			}
		})
	}
}

// TestPCREUnsupported: constructs PCRE2 accepts that postgate refuses,
// because regexp2 cannot run them as PCRE2 does. The table does not load;
// the error names the table, the line and the construct.
func TestPCREUnsupported(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{`/\K/ X`, `\K`},
		{`/(?|(a)|(b))/ $1`, "branch reset"},
		{`/(?1)(a)/ X`, "recursion"},
		{`/(?R)?/ X`, "recursion"},
		{`/(?&n)(?<n>a)/ X`, "recursion"},
		{`/\g<1>(a)/ X`, "subroutine"},
		{`/\p{L}/ X`, `\p`},
		{`/\X/ X`, `\X`},
		{`/(*UTF)a/ X`, "(*VERB)"},
		{`/(?J)(?<n>a)/ X`, "(?J)"},
		{`/(?C1)a/ X`, "callout"},
		{`/(?xx)a/ X`, "(?xx)"},
		{`/(?=a)*/ X`, "quantifier on an assertion"},
		{`/(?(?=a)a|b)/ X`, "condition"},
		{`/[\8]/ X`, `\8`},
	} {
		t.Run(c.pattern, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pcre")
			writeFile(t, path, "/ok/ ok\n"+c.pattern+"\n")
			_, err := Open("pcre:" + path)
			prefix := "pcre map " + path + ", line 2: error in regex at offset "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), "postgate's pcre: tables do not support") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open error = %v, want %q...%q", err, prefix, c.want)
			}
		})
	}
}

// TestPCREWarnings: where Postfix warns and keeps the rule, so does
// postgate, through OpenOptions.Warn.
func TestPCREWarnings(t *testing.T) {
	var warnings []string
	o := OpenOptions{Warn: func(m string) { warnings = append(warnings, m) }}
	tb, err := OpenWith("pcre:{{/a/X}, {if /b/ /c/ X}, {/c/ Y}, {endif junk}}", o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`line 1: ignoring obsolete regexp option "X"`,
		"line 1: no replacement text: using empty string",
		`line 2: ignoring extra text after IF statement: "/c/ X"`,
		"line 4: ignoring extra text after ENDIF",
	}
	checkWarnings(t, warnings, "pcre map {{/a/X}, ", want)
	if v, ok := lookup(t, tb, "bc"); v != "Y" || !ok {
		t.Errorf("Lookup(bc) = %q, %v; want Y", v, ok)
	}
}

// TestPCRETimeout: a pattern that backtracks exponentially on a hostile key
// fails the lookup (callers answer a temporary failure) instead of holding
// the session; the error names the table and line, not the key.
func TestPCRETimeout(t *testing.T) {
	tb := openPCREText(t, "/^x/ X\nif /^Subject:/\n/^Subject: (a+)+$/ evil\nendif")
	key := "Subject: " + strings.Repeat("a", 40) + "!"
	_, _, err := tb.Lookup(context.Background(), key)
	if err == nil || !strings.Contains(err.Error(), ", line 3: match not decided within 1s") {
		t.Fatalf("Lookup error = %v, want a timeout at line 3", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("the error quotes the key: %v", err)
	}
	// The table still answers other keys.
	if v, ok := lookup(t, tb, "xyz"); v != "X" || !ok {
		t.Errorf("Lookup(xyz) = %q, %v", v, ok)
	}
}

func TestPCRETableKind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pcre")
	writeFile(t, path, "/^a(?=b)/ X\n")
	for _, c := range []struct{ spec, want string }{
		{"pcre:" + path, "pcre:" + path},
		{"proxy:pcre:" + path, "pcre:" + path},
		{"PCRE:" + path, "pcre:" + path},
		{"pcre:{{/^a(?=b)/ X}}", "pcre:{{/^a(?=b)/ X}}"},
	} {
		spec := c.spec
		tb, err := Open(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if IsFixedString(tb) {
			t.Errorf("%s is a fixed-string table", spec)
		}
		if got := tb.(fmt.Stringer).String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if v, ok := lookup(t, tb, "ABC"); v != "X" || !ok {
			t.Errorf("%s: Lookup(ABC) = %q, %v", spec, v, ok)
		}
	}
}

func TestPCREInlineErrors(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"pcre:{ /a/ X }", `pcre map: no '{' at start of text in "/a/"`},
		{"pcre:{{/a/ X}", `pcre map: missing '}' in "{{/a/ X}"`},
		{"pcre:{{/a/ X}, {/(/ Y}}", `pcre map {{/a/ X}, {/(/ Y}}, line 2: error in regex at offset 1: missing closing parenthesis`},
	} {
		t.Run(c.spec, func(t *testing.T) {
			_, err := Open(c.spec)
			if err == nil || err.Error() != c.want {
				t.Errorf("Open(%q) error = %v, want %q", c.spec, err, c.want)
			}
		})
	}
}

func TestPCREConcurrentLookups(t *testing.T) {
	tb, err := Open(`pcre:{{/^(.*)@(?!x\.)(.*)$/ $2 $1}, {if /x/}, {/(y)\1/ $1}, {endif}}`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				v, ok, err := tb.Lookup(context.Background(), "u@é.example")
				if err != nil || !ok || v != "é.example u" {
					t.Errorf("Lookup = %q, %v, %v", v, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestPCRETranslation pins the .NET text of a few patterns: every
// flag-dependent construct is spelled out, and classes are byte sets.
func TestPCRETranslation(t *testing.T) {
	for _, c := range []struct {
		pattern string
		flags   patternFlags
		want    string
	}{
		{`^a.b$`, flagCaseless | flagDotall, `(?i)\Aa[\u0000-\u007F\uE080-\uE0FF]b\Z`},
		{`^a.b$`, flagMultiline, `(?:\A|(?<=\n)(?!\z))a[\u0000-\u0009\u000B-\u007F\uE080-\uE0FF]b(?=\n|\z)`},
		{`a$`, flagDollarEndOnly, `a\z`},
		{`a+b*?c{2}`, flagUngreedy, `a+?b*c{2}?`},
		{`[^a-c]`, flagCaseless, `(?i)[\u0000-\u0040\u0044-\u0060\u0064-\u007F\uE080-\uE0FF]`},
		{`(?<n>x)\k<n>\1`, 0, `(?<n>x)\k<n>\k<1>`},
		{`b`, flagAnchored, `\A(?:b)`},
	} {
		tr, err := pcreToNET(c.pattern, c.flags)
		if err != nil || tr.pattern != c.want {
			t.Errorf("pcreToNET(%q, %b) = %q, %v; want %q", c.pattern, c.flags, tr.pattern, err, c.want)
		}
	}
}
