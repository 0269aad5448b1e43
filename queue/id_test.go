package queue

import (
	"regexp"
	"testing"
	"time"
)

func TestNewIDShape(t *testing.T) {
	for _, tc := range []struct {
		name  string
		long  bool
		shape *regexp.Regexp
	}{
		{"short", false, regexp.MustCompile(`^[0-9A-F]{10,12}$`)},
		{"long", true, regexp.MustCompile(`^[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{6,}[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{4}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{LongIDs: tc.long})
			defer s.Close()
			seen := make(map[string]bool)
			for range 200000 {
				id := s.NewID()
				if !tc.shape.MatchString(id) {
					t.Fatalf("ID %q has the wrong shape", id)
				}
				if seen[id] {
					t.Fatalf("ID %q returned twice", id)
				}
				seen[id] = true
			}
		})
	}
}

// TestIDEncoding pins the encodings to Postfix's: %05X microseconds, and
// base 52 with Postfix's vowel-free alphabet.
func TestIDEncoding(t *testing.T) {
	now := time.Unix(1763629200, 123456000)
	g := idGen{n: 0x2AB22}
	if got := g.next(now); got != "1E2403AB23" {
		t.Errorf("short ID = %q", got)
	}
	g = idGen{long: true, n: 51}
	// 1763629200 = 6*52^5 + ... ; checked by decoding below.
	got := g.next(now)
	dec := func(s string, base uint64) uint64 {
		var v uint64
		for i := range len(s) {
			v = v*base + uint64(indexByte(base52, s[i]))
		}
		return v
	}
	if len(got) < 12 || dec(got[:6], 52) != 1763629200 || dec(got[6:10], 52) != 123456 || got[10] != 'z' || dec(got[11:], 51) != 52 {
		t.Errorf("long ID = %q", got)
	}
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// TestNewIDSkipsQueued: an ID still in the queue (or being appended) is
// never handed out again.
func TestNewIDSkipsQueued(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	now := time.Unix(1763629200, 5000)
	s.now = func() time.Time { return now }
	s.mu.Lock()
	g := s.ids
	s.mu.Unlock()
	next := g.next(now)
	env := testEnvelope(0)
	env.ID = next
	mustAppend(t, s, env, []byte("x"))
	afterNext := g.next(now)
	if got := s.NewID(); got != afterNext {
		t.Fatalf("NewID = %s, want %s (skipping the queued %s)", got, afterNext, next)
	}
}
