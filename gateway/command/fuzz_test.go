package command

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzTokenize checks that the words of a line are the line itself, cut at
// white space outside quotes and brackets: the line (up to a NUL) is the
// words in order with only white space between them, only the last word
// can be unterminated, and joining the words with spaces gives them back.
func FuzzTokenize(f *testing.F) {
	for _, tc := range tokenizeTests {
		f.Add(tc.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		toks := Tokenize(line)
		rest := cString(line)
		texts := make([]string, len(toks))
		for i, tok := range toks {
			if tok.Text == "" {
				t.Fatalf("empty token in %q", line)
			}
			if tok.Bad && i != len(toks)-1 {
				t.Fatalf("unterminated token %q is not the last in %q", tok.Text, line)
			}
			rest = strings.TrimLeft(rest, " \t\n\v\f\r")
			if !strings.HasPrefix(rest, tok.Text) {
				t.Fatalf("token %q is not next in %q", tok.Text, rest)
			}
			rest = rest[len(tok.Text):]
			texts[i] = tok.Text
		}
		if strings.TrimLeft(rest, " \t\n\v\f\r") != "" {
			t.Fatalf("%q left over from %q", rest, line)
		}
		if again := Tokenize(strings.Join(texts, " ")); len(toks) > 0 && !reflect.DeepEqual(again, toks) {
			t.Fatalf("joined tokens of %q split as %+v, not %+v", line, again, toks)
		}
		for _, tok := range toks {
			ExtractAddress(tok.Text, false)
		}
	})
}

// FuzzExtractAddress checks that the address holds no NUL and no more
// than the token (an unterminated domain literal gains its ']'), and that
// strict mode only takes away. The parse tree itself is fuzzed in
// rules/tok822.
func FuzzExtractAddress(f *testing.F) {
	for _, tc := range extractTests {
		f.Add(tc.token)
	}
	f.Fuzz(func(t *testing.T, token string) {
		addr, ok := ExtractAddress(token, false)
		saddr, strictOK := ExtractAddress(token, true)
		if saddr != addr {
			t.Fatalf("%q: address %q, strict %q", token, addr, saddr)
		}
		if strings.IndexByte(addr, 0) >= 0 {
			t.Fatalf("%q: NUL in address %q", token, addr)
		}
		if len(addr) > len(cString(token))+1 {
			t.Fatalf("%q: address %q is longer than the token", token, addr)
		}
		if strictOK && (!ok || !strings.HasPrefix(token, "<") || strings.HasPrefix(addr, "@")) {
			t.Fatalf("%q: strict ok but non-strict %v", token, ok)
		}
		if _, n, _ := parseEnvelopeAddress(cString(token)); n <= 1 != ok {
			t.Fatalf("%q: %d addresses but ok %v", token, n, ok)
		}
	})
}

// TestLinearTime guards against quadratic behaviour on inputs that stress
// nesting and the parser's leftward skips: 16 times the input must not
// take anywhere near 256 times as long.
func TestLinearTime(t *testing.T) {
	patterns := []string{"<", ">", "(", ")", "\"", "a ", "<>", "<a>", "a@b,", "g: a;", ":", ";", "\\", "[", "a.", "<a <b", "(a) "}
	// The thread's CPU time, not the wall clock: on a loaded machine the
	// test must not count the time it waits for a CPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	run := func(s string) time.Duration {
		best := time.Duration(1 << 62)
		for range 5 {
			start := cpu()
			for _, tok := range Tokenize("MAIL FROM:" + s) {
				ExtractAddress(tok.Text, true)
			}
			ExtractAddress(s, false)
			if d := cpu() - start; d < best {
				best = d
			}
		}
		return best
	}
	for _, p := range patterns {
		small := run(strings.Repeat(p, 2000))
		large := run(strings.Repeat(p, 32000))
		if small < time.Millisecond {
			small = time.Millisecond // below that, timer noise dominates
		}
		// 16 times the input: linear work takes 16 times as long, quadratic
		// 256 times; the bound between leaves room for a loaded machine.
		if large > 128*small {
			t.Errorf("pattern %q: %v for 2000 copies, %v for 32000", p, small, large)
		}
	}
}
