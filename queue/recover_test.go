package queue

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildLog queues six messages and puts message 1 on hold, then closes
// the store. It returns the IDs and contents.
func buildLog(t *testing.T, dir string, opts Options) ([]string, [][]byte) {
	t.Helper()
	s := openT(t, dir, opts)
	var idl []string
	var contents [][]byte
	for i := range 6 {
		c := testContent(i, 400+50*i)
		idl = append(idl, mustAppend(t, s, testEnvelope(i), c))
		contents = append(contents, c)
		if i == 1 {
			mustChange(t, s, idl[1], Change{Kind: ChangeHold})
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return idl, contents
}

func flip(data []byte, off int, mask byte) []byte {
	data[off] ^= mask
	return data
}

// TestRecoverTornTail cuts the newest segment inside its last record.
// When the record's header is gone the tail is a torn write, never
// acknowledged, and is cut off; when the header survives, the record is
// named and put in the corrupt queue (the cut may have come after the
// 250), its bytes kept and appends moved to a fresh segment.
func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cut   func(l recLoc) int // new file length, from the last record's place
		named bool
	}{
		{"after the magic", func(l recLoc) int { return l.off + 4 }, false},
		{"inside the header", func(l recLoc) int { return l.off + 20 }, false},
		{"inside the ID", func(l recLoc) int { return l.off + 30 }, false},
		{"inside the body", func(l recLoc) int { return l.off + recHeaderSize + 10 }, true},
		{"inside the content", func(l recLoc) int { return l.off + recHeaderSize + l.envLen + 100 }, true},
		{"inside the trailing checksum", func(l recLoc) int { return l.end - 2 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			idl, contents := buildLog(t, dir, Options{})
			last := scanLog(t, dir)[idl[5]][0]
			cutAt := tc.cut(last)
			editSegment(t, dir, last.seg, func(b []byte) []byte { return b[:cutAt] })

			var log logBuf
			s := openT(t, dir, Options{Logf: log.logf})
			wantSize, wantLog, wantSeg := int64(last.off), "cut torn tail", last.seg
			if tc.named {
				wantSize, wantSeg = int64(cutAt), last.seg+1
				wantLog = idl[5] + ": message record cut short in segment 1 at offset " + strconv.Itoa(last.off) + " ("
				if !log.has("): moved to the corrupt queue (the end of the newest segment: most likely a write the system stopped in, never acknowledged)") {
					t.Errorf("log:\n%s", log.String())
				}
			}
			if got := segSize(t, dir, last.seg); got != wantSize {
				t.Errorf("segment is %d bytes after Open, want %d", got, wantSize)
			}
			if !log.has(wantLog) {
				t.Errorf("no %q in the log:\n%s", wantLog, log.String())
			}
			checkTorn := func(s *Store) {
				t.Helper()
				m, ok := s.Get(idl[5])
				if tc.named && (!ok || m.State != Corrupt || !strings.Contains(m.Damage, "cut short in segment 1")) {
					t.Errorf("cut message %s: found %v, %+v; want it in the corrupt queue", idl[5], ok, m)
				}
				if !tc.named && ok {
					t.Errorf("torn message %s recovered", idl[5])
				}
			}
			checkTorn(s)
			if d := s.Damage(); d.Records != btoi(tc.named) || d.Bytes != 0 {
				t.Errorf("Damage() = %+v", d)
			}
			for i := range 5 {
				if c, err := s.Content(idl[i]); err != nil || !bytes.Equal(c, contents[i]) {
					t.Errorf("message %d: %v", i, err)
				}
			}
			// Appending continues where the tail was cut (or in a fresh
			// segment), and survives a reopen.
			id := mustAppend(t, s, testEnvelope(9), []byte("after\r\n"))
			if l := scanLog(t, dir)[id][0]; l.seg != wantSeg {
				t.Errorf("appended to segment %d, want %d", l.seg, wantSeg)
			}
			s.Close()
			s = openT(t, dir, Options{})
			defer s.Close()
			if c, err := s.Content(id); err != nil || string(c) != "after\r\n" || len(s.List()) != 6+btoi(tc.named) {
				t.Fatalf("after reopen: %q %v, %d messages", c, err, len(s.List()))
			}
			checkTorn(s)
		})
	}
}

// TestRecoverTornChange: a change record cut short at the end of the
// newest segment is a write the system stopped in, never relied on: it is
// dropped and cut off, and its message keeps the state it had, rather than
// being stranded in the corrupt queue by an ordinary crash.
func TestRecoverTornChange(t *testing.T) {
	dir := t.TempDir()
	idl, contents := buildLog(t, dir, Options{})
	s := openT(t, dir, Options{})
	mustChange(t, s, idl[5], Change{Kind: ChangeDeferred, Until: time.Unix(1763700000, 0), Reason: "4.4.1 later"})
	s.Close()
	recs := scanLog(t, dir)[idl[5]]
	ch := recs[len(recs)-1]
	editSegment(t, dir, ch.seg, func(b []byte) []byte { return b[:ch.end-3] })

	var log logBuf
	s = openT(t, dir, Options{Logf: log.logf})
	defer s.Close()
	if m, ok := s.Get(idl[5]); !ok || m.State != Active {
		t.Errorf("message %s: found %v state %v, want it active as before the torn change", idl[5], ok, m.State)
	}
	if c, err := s.Content(idl[5]); err != nil || !bytes.Equal(c, contents[5]) {
		t.Errorf("message 5: %v", err)
	}
	if want := idl[5] + ": change record cut short at the end of segment 1 at offset " + strconv.Itoa(ch.off); !log.has(want) || !log.has("cut torn tail") {
		t.Errorf("no %q and cut in the log:\n%s", want, log.String())
	}
	if got := segSize(t, dir, ch.seg); got != int64(ch.off) || s.Damage() != (Damage{}) {
		t.Errorf("segment %d bytes, want it cut at %d; Damage %+v", got, ch.off, s.Damage())
	}
}

// TestRecoverDamage flips bits inside records in the middle of the log:
// the damaged record goes to corrupt when its header can still name it,
// is dropped (and logged) when not, and every later record is read.
func TestRecoverDamage(t *testing.T) {
	type want struct {
		missing []int  // messages gone
		corrupt []int  // messages in the corrupt state
		raw     []int  // of those, whose own record is damaged (Content returns it raw)
		log     string // a warning that must be logged
	}
	for _, tc := range []struct {
		name   string
		damage func(b []byte, l map[string][]recLoc, idl []string) []byte
		want   want
	}{
		{"length field low bit", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off+20, 0x01)
		}, want{missing: []int{2}, log: "dropped"}},
		{"length field huge", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off+23, 0x40)
		}, want{missing: []int{2}, log: "dropped"}},
		{"length field shrunk", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off+21, 0x01) // 256 bytes shorter or longer
		}, want{missing: []int{2}, log: "dropped"}},
		{"ID", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off+30, 0x04)
		}, want{missing: []int{2}, log: "dropped"}},
		{"magic", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off, 0xff)
		}, want{missing: []int{2}, log: "dropped"}},
		{"header checksum", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off+53, 0x10)
		}, want{missing: []int{2}, log: "dropped"}},
		{"envelope", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].off+recHeaderSize+5, 0x20)
		}, want{corrupt: []int{2}, raw: []int{2}, log: "moved to the corrupt queue"}},
		{"content", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			r := l[idl[2]][0]
			return flip(b, r.off+recHeaderSize+r.envLen+77, 0x01)
		}, want{corrupt: []int{2}, raw: []int{2}, log: "moved to the corrupt queue"}},
		{"trailing checksum", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			return flip(b, l[idl[2]][0].end-1, 0x80)
		}, want{corrupt: []int{2}, raw: []int{2}, log: "moved to the corrupt queue"}},
		{"content of the last record", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			r := l[idl[5]][0]
			return flip(b, r.off+recHeaderSize+r.envLen+1, 0x01)
		}, want{corrupt: []int{5}, raw: []int{5}, log: "moved to the corrupt queue"}},
		{"zeros across two records", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			r := l[idl[2]][0]
			clear(b[r.end-50 : r.end+80])
			return b
		}, want{corrupt: []int{2}, raw: []int{2}, missing: []int{3}, log: "dropped"}},
		{"change record body", func(b []byte, l map[string][]recLoc, idl []string) []byte {
			r := l[idl[1]][1] // the Hold change
			return flip(b, r.off+recHeaderSize, 0x02)
		}, want{corrupt: []int{1}, log: "damaged change record"}},
		{"segment header", func(b []byte, _ map[string][]recLoc, _ []string) []byte {
			return flip(b, 3, 0x01)
		}, want{log: "segment header damaged"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			idl, contents := buildLog(t, dir, Options{})
			locs := scanLog(t, dir)
			editSegment(t, dir, 1, func(b []byte) []byte { return tc.damage(b, locs, idl) })

			var log logBuf
			s := openT(t, dir, Options{Logf: log.logf})
			defer s.Close()
			if !log.has(tc.want.log) {
				t.Errorf("no %q in the log:\n%s", tc.want.log, log.String())
			}
			in := func(i int, l []int) bool {
				for _, x := range l {
					if x == i {
						return true
					}
				}
				return false
			}
			for i, id := range idl {
				m, ok := s.Get(id)
				c, err := s.Content(id)
				switch {
				case in(i, tc.want.missing):
					if ok {
						t.Errorf("message %d recovered, want it dropped", i)
					}
				case in(i, tc.want.corrupt):
					if !ok || m.State != Corrupt {
						t.Errorf("message %d: found %v state %v, want corrupt", i, ok, m.State)
					}
					if in(i, tc.want.raw) && (!errors.Is(err, ErrCorrupt) || len(c) == 0) {
						t.Errorf("message %d Content = %d bytes, %v; want the raw body and ErrCorrupt", i, len(c), err)
					}
				default:
					wantState := Active
					if i == 1 {
						wantState = Hold
					}
					if !ok || m.State != wantState || err != nil || !bytes.Equal(c, contents[i]) {
						t.Errorf("message %d: found %v state %v content err %v; want it intact", i, ok, m.State, err)
					}
				}
			}
			// The store keeps working, and what it appends is read back.
			id := mustAppend(t, s, testEnvelope(9), []byte("after\r\n"))
			s.Close()
			s = openT(t, dir, Options{})
			if c, err := s.Content(id); err != nil || string(c) != "after\r\n" {
				t.Fatalf("append after recovery, reopened: %q %v", c, err)
			}
		})
	}
}

// TestRecoverDamageAcrossSegments: damage at the end of a segment that is
// not the last is dropped, not cut, and the next segments are read.
func TestRecoverDamageAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentSize: 2048})
	var idl []string
	for i := range 12 {
		idl = append(idl, mustAppend(t, s, testEnvelope(i), testContent(i, 500)))
	}
	s.Close()
	locs := scanLog(t, dir)
	// The last record of segment 1.
	var victim string
	var vl recLoc
	for _, id := range idl {
		if l := locs[id][0]; l.seg == 1 && l.off >= vl.off {
			victim, vl = id, l
		}
	}
	size := segSize(t, dir, 1)
	editSegment(t, dir, 1, func(b []byte) []byte { return flip(b, vl.off+22, 0x01) })

	var log logBuf
	s = openT(t, dir, Options{SegmentSize: 2048, Logf: log.logf})
	defer s.Close()
	if got := segSize(t, dir, 1); got != size {
		t.Errorf("segment 1 changed size %d -> %d", size, got)
	}
	if !log.has("damaged bytes at the end of the segment") {
		t.Errorf("log:\n%s", log.String())
	}
	if _, ok := s.Get(victim); ok {
		t.Errorf("damaged %s recovered", victim)
	}
	if n := len(s.List()); n != 11 {
		t.Errorf("%d messages recovered, want 11", n)
	}
}

// TestRecoverUnfinishedSegment: a segment whose creation was cut short
// (shorter than its header) is removed and appends continue in a new one.
func TestRecoverUnfinishedSegment(t *testing.T) {
	dir := t.TempDir()
	idl, _ := buildLog(t, dir, Options{})
	editSegment(t, dir, 1, func(b []byte) []byte { return b }) // exists
	if err := os.WriteFile(segPath(dir+"/log", 2), []byte("\x89PG"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log logBuf
	s := openT(t, dir, Options{Logf: log.logf})
	defer s.Close()
	if len(s.List()) != len(idl) || !log.has("removed unfinished segment") {
		t.Fatalf("%d messages; log:\n%s", len(s.List()), log.String())
	}
	id := mustAppend(t, s, testEnvelope(9), []byte("x"))
	if l := scanLog(t, dir)[id][0]; l.seg != 1 {
		t.Fatalf("appended to segment %d", l.seg)
	}
}

// TestRecoverCutOlderSegment cuts a segment that is not the newest in the
// middle of a record, as a damaged disk or a careless copy would: every
// record before the cut is intact, the cut one is named and put in the
// corrupt queue, the records after it in that segment are gone (nothing
// names them) and the later segments are read. A read-only snapshot sees
// the same.
func TestRecoverCutOlderSegment(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentSize: 4096})
	var idl []string
	contents := make(map[string][]byte)
	for i := range 20 {
		c := testContent(i, 500)
		id := mustAppend(t, s, testEnvelope(i), c)
		idl = append(idl, id)
		contents[id] = c
	}
	s.Close()
	locs := scanLog(t, dir)
	var inSeg1 []string
	for _, id := range idl {
		if locs[id][0].seg == 1 {
			inSeg1 = append(inSeg1, id)
		}
	}
	if len(inSeg1) < 4 || locs[idl[len(idl)-1]][0].seg < 3 {
		t.Fatalf("want several records in segment 1 and 3+ segments: %v", locs)
	}
	victim := inSeg1[1]
	vl := locs[victim][0]
	editSegment(t, dir, 1, func(b []byte) []byte { return b[:vl.off+recHeaderSize+vl.envLen+40] })
	short := vl.end - (vl.off + recHeaderSize + vl.envLen + 40)

	check := func(what string, get func(string) (Message, bool), damage Damage, logText string) {
		t.Helper()
		for _, id := range idl {
			m, ok := get(id)
			l := locs[id][0]
			switch {
			case id == victim:
				// The envelope is all there before the cut: shown, unverified.
				if !ok || m.State != Corrupt || m.Damage != fmt.Sprintf("message record cut short in segment 1 at offset %d, envelope unverified", vl.off) ||
					m.Sender == "" || len(m.Recipients) == 0 {
					t.Errorf("%s: cut message %s: found %v %+v, want it in the corrupt queue", what, id, ok, m)
				}
			case l.seg == 1 && l.off > vl.off:
				if ok {
					t.Errorf("%s: %s after the cut recovered", what, id)
				}
			case !ok || m.State != Active:
				t.Errorf("%s: intact message %s: found %v state %v", what, id, ok, m.State)
			}
		}
		if damage != (Damage{Records: 1}) {
			t.Errorf("%s: Damage = %+v, want 1 record", what, damage)
		}
		for _, want := range []string{
			victim + ": message record cut short in segment 1 at offset " + strconv.Itoa(vl.off) + " (",
			"): moved to the corrupt queue",
			"queue: segment 1: ends inside the record at offset " + strconv.Itoa(vl.off) + fmt.Sprintf(", %d bytes short: if the segment was cut, the records written after it in the segment are lost", short),
		} {
			if logText != "" && !strings.Contains(logText, want) {
				t.Errorf("%s: no %q in the log:\n%s", what, want, logText)
			}
		}
	}
	snap, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	check("snapshot", snap.Get, snap.Damage(), "")
	var log logBuf
	s = openT(t, dir, Options{SegmentSize: 4096, Logf: log.logf})
	defer s.Close()
	check("store", s.Get, s.Damage(), log.String())
	// What is left of the cut record stays readable, flagged.
	if c, err := s.Content(victim); !errors.Is(err, ErrCorrupt) || len(c) != vl.envLen+40 {
		t.Errorf("cut message: Content = %d bytes, %v; want the %d bytes left and ErrCorrupt", len(c), err, vl.envLen+40)
	}
	for _, id := range idl {
		if m, ok := s.Get(id); ok && m.State == Active {
			if c, err := s.Content(id); err != nil || !bytes.Equal(c, contents[id]) {
				t.Errorf("intact message %s: Content %v", id, err)
			}
		}
	}
}

// TestSnapshotLeavesTheNewestTailAlone: a read-only snapshot does not
// name a record cut short at the end of the newest segment, which the
// daemon may be writing as it reads.
func TestSnapshotLeavesTheNewestTailAlone(t *testing.T) {
	dir := t.TempDir()
	idl, _ := buildLog(t, dir, Options{})
	last := scanLog(t, dir)[idl[5]][0]
	editSegment(t, dir, last.seg, func(b []byte) []byte { return b[:last.end-2] })
	snap, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Get(idl[5]); ok || snap.Damage() != (Damage{}) || len(snap.List()) != 5 {
		t.Fatalf("snapshot: %d messages, damage %+v", len(snap.List()), snap.Damage())
	}
}
