package gateway

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const testHead = "H: 1\r\n"

// testAssembly starts a message after testHead with a budget of limit
// bytes (0: everything goes to a spool file).
func testAssembly(t *testing.T, limit int64) (*assembly, *memBudget) {
	t.Helper()
	b := newMemBudget(limit)
	a := newAssembly(b, t.TempDir())
	// A buffer of known size, not whatever the pool holds.
	a.buf = append(make([]byte, 0, 16<<10), testHead...)
	a.start = len(a.buf)
	t.Cleanup(a.release)
	return a, b
}

// stored is the whole message as it would be appended.
func stored(t *testing.T, a *assembly) string {
	t.Helper()
	if a.file == nil {
		return string(a.buf)
	}
	b := make([]byte, a.size)
	if _, err := a.file.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(b)
}

var budgets = []struct {
	name  string
	limit int64
}{{"memory", 1 << 20}, {"spooled", 0}}

func TestNormalizeLF(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		bare           bool
	}{
		{"crlf only", "a\r\nb\r\n", "a\r\nb\r\n", false},
		{"bare lf", "a\nb\r\nc\n", "a\r\nb\r\nc\r\n", true},
		{"leading lf", "\nx\r\n", "\r\nx\r\n", true},
		{"bare cr kept", "a\rb\r\n", "a\rb\r\n", false},
		{"smuggling", "x\n.\nMAIL FROM:<a>\r\n", "x\r\n.\r\nMAIL FROM:<a>\r\n", true},
		{"no final newline", "abc", "abc", false},
		{"crlf then bare", "a\r\n\nb", "a\r\n\r\nb", true},
	} {
		for _, bt := range budgets {
			t.Run(tc.name+"/"+bt.name, func(t *testing.T) {
				a, _ := testAssembly(t, bt.limit)
				// One byte per read: line ends split across reads.
				if _, err := a.readFrom(iotest.OneByteReader(strings.NewReader(tc.in)), 0); err != nil {
					t.Fatal(err)
				}
				bare := a.normalizeLF()
				if got := stored(t, a); got != testHead+tc.want {
					t.Errorf("got %q, want %q", got, testHead+tc.want)
				}
				if bare != tc.bare {
					t.Errorf("bare LF %v, want %v", bare, tc.bare)
				}
			})
		}
		t.Run(tc.name+"/written a byte at a time", func(t *testing.T) {
			// The spool file's streaming normalization, each byte its own
			// write: the CR state carries across writes.
			a, _ := testAssembly(t, 0)
			a.space() // spills: the budget is 0
			for i := range len(tc.in) {
				if err := a.write([]byte{tc.in[i]}); err != nil {
					t.Fatal(err)
				}
			}
			if got := stored(t, a); got != testHead+tc.want || a.bareLF != tc.bare {
				t.Errorf("got %q bare %v, want %q bare %v", got, a.bareLF, testHead+tc.want, tc.bare)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	for _, tc := range []struct {
		in     string
		limit  int64
		want   string
		tooBig bool
	}{
		{"abcdef", 0, "abcdef", false},
		{"abcdef", 6, "abcdef", false},
		{"abcdef", 4, "", true},
	} {
		for _, bt := range budgets {
			a, b := testAssembly(t, bt.limit)
			r := strings.NewReader(tc.in)
			tooBig, err := a.readFrom(r, tc.limit)
			if err != nil || tooBig != tc.tooBig || r.Len() != 0 {
				t.Errorf("%s: readFrom(%q, %d) = %v, %v (unread %d); want %v", bt.name, tc.in, tc.limit, tooBig, err, r.Len(), tc.tooBig)
			}
			if tooBig {
				// Nothing is kept of a message too big.
				if a.buf != nil || a.file != nil || b.used.Load() != 0 {
					t.Errorf("%s: a message too big still holds memory (%d) or a spool file", bt.name, b.used.Load())
				}
				continue
			}
			if got := stored(t, a); got != testHead+tc.want {
				t.Errorf("%s: readFrom(%q, %d) stored %q, want %q", bt.name, tc.in, tc.limit, got, testHead+tc.want)
			}
		}
	}
}

// TestSpill: a message that outgrows the budget moves to a spool file,
// whole and in order, and gives its memory back.
func TestSpill(t *testing.T) {
	a, b := testAssembly(t, 256<<10)
	in := strings.Repeat("Message-ID: <m@x>\r\n", 1) + "\r\n" + strings.Repeat("0123456789abcdef\n", 64<<10)
	if _, err := a.readFrom(iotest.HalfReader(strings.NewReader(in)), 0); err != nil {
		t.Fatal(err)
	}
	if a.file == nil {
		t.Fatalf("a %d-byte message did not spill out of a 256 KiB budget", len(in))
	}
	if b.used.Load() != 0 {
		t.Errorf("a spilled message still holds %d bytes of the budget", b.used.Load())
	}
	if !a.normalizeLF() || a.spoolErr != nil {
		t.Fatalf("normalizeLF: bare LF not reported, or %v", a.spoolErr)
	}
	want := testHead + strings.ReplaceAll(in, "f\n", "f\r\n")
	if got := stored(t, a); got != want {
		t.Errorf("spooled content differs (%d bytes, want %d)", len(got), len(want))
	}
	if n := a.contentLen(); n != int64(len(want)-len(testHead)) {
		t.Errorf("contentLen %d, want %d", n, len(want)-len(testHead))
	}
	if id := messageID(a.header()[len(testHead):]); id != "m@x" {
		t.Errorf("messageID of the spooled message: %q", id)
	}
	a.release()
	if a.file != nil || b.used.Load() != 0 {
		t.Errorf("release left a spool file or %d bytes of the budget", b.used.Load())
	}
}

// TestNormalizeLFSpillsWhenFull: fixing bare LFs lengthens the message;
// when the budget has no room for that, the fixed copy goes to a spool
// file.
func TestNormalizeLFSpillsWhenFull(t *testing.T) {
	a, b := testAssembly(t, 64<<10)
	in := strings.Repeat("x\n", 12<<10)
	if _, err := a.readFrom(strings.NewReader(in), 0); err != nil {
		t.Fatal(err)
	}
	if a.file != nil {
		t.Fatal("spilled before normalizing")
	}
	if !a.normalizeLF() || a.spoolErr != nil {
		t.Fatalf("normalizeLF: bare LF not reported, or %v", a.spoolErr)
	}
	if got, want := stored(t, a), testHead+strings.Repeat("x\r\n", 12<<10); got != want {
		t.Errorf("got %d bytes, want %d", len(got), len(want))
	}
	if a.file == nil && b.used.Load() > b.limit {
		t.Errorf("budget overdrawn: %d of %d", b.used.Load(), b.limit)
	}
}

func TestMessageID(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"simple", "Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n", "a@b"},
		{"case and fold", "message-id:\r\n <folded@b>\r\nX: y\r\n\r\n", "folded@b"},
		{"none", "Subject: x\r\n\r\nMessage-ID: <in@body>\r\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := messageID([]byte(tc.in)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPutBufferKeepsOnlySmall(t *testing.T) {
	big := make([]byte, 0, poolMax+1)
	bp := new([]byte)
	putBuffer(bp, big)
	if cap(*bp) != 0 {
		t.Errorf("a %d-byte buffer was pooled", cap(big))
	}
}
