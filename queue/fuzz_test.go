package queue

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecover damages a multi-segment log at random: flipped bytes (ops,
// five bytes each: offset, XOR mask) and a cut tail. Open must never panic
// nor fail, and every record left entirely undamaged (its magic included)
// must be recovered with its content, before and after a reopen.
func FuzzRecover(f *testing.F) {
	base := f.TempDir()
	s, err := Open(base, Options{Syncer: newTestSyncer(), SegmentSize: 4096})
	if err != nil {
		f.Fatal(err)
	}
	type msgRec struct {
		id       string
		content  []byte
		seg      uint32
		off, end int
	}
	var msgs []msgRec
	for i := range 24 {
		c := testContent(i, 80+(i*211)%900)
		msgs = append(msgs, msgRec{id: mustAppend(f, s, testEnvelope(i), c), content: c})
	}
	s.Close()
	locs := scanLog(f, base)
	for i := range msgs {
		l := locs[msgs[i].id][0]
		msgs[i].seg, msgs[i].off, msgs[i].end = l.seg, l.off, l.end
	}
	seqs, _ := listSegments(filepath.Join(base, "log"))
	segs := make(map[uint32][]byte)
	total := 0
	for _, seq := range seqs {
		segs[seq], _ = os.ReadFile(segPath(filepath.Join(base, "log"), seq))
		total += len(segs[seq])
	}

	f.Add([]byte{}, uint16(0))
	f.Add([]byte{100, 0, 0, 0, 1}, uint16(10))
	f.Add([]byte{0x40, 0, 0, 0, 0xff, 0x90, 0, 0, 0, 0x10}, uint16(0))
	f.Add(bytes.Repeat([]byte{7, 1, 0, 0, 0x55}, 20), uint16(300))

	f.Fuzz(func(t *testing.T, ops []byte, cut uint16) {
		damaged := make(map[uint32]map[int]bool)
		work := make(map[uint32][]byte)
		for seq, d := range segs {
			work[seq] = bytes.Clone(d)
			damaged[seq] = make(map[int]bool)
		}
		for k := 0; k+5 <= len(ops); k += 5 {
			pos := int(binary.LittleEndian.Uint32(ops[k:]) % uint32(total))
			mask := ops[k+4]
			if mask == 0 {
				mask = 0xff
			}
			for _, seq := range seqs {
				if pos < len(work[seq]) {
					work[seq][pos] ^= mask
					damaged[seq][pos] = true
					break
				}
				pos -= len(work[seq])
			}
		}
		lastSeq := seqs[len(seqs)-1]
		last := work[lastSeq]
		work[lastSeq] = last[:len(last)-int(cut)%(len(last)+1)]

		dir := t.TempDir()
		logDir := filepath.Join(dir, "log")
		if err := os.MkdirAll(logDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for seq, d := range work {
			if err := os.WriteFile(segPath(logDir, seq), d, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		intact := func(m msgRec) bool {
			if m.end > len(work[m.seg]) {
				return false
			}
			for p := range damaged[m.seg] {
				if p >= m.off && p < m.end {
					return false
				}
			}
			return true
		}
		for round := range 2 {
			s, err := Open(dir, Options{Syncer: newTestSyncer(), SegmentSize: 4096})
			if err != nil {
				t.Fatalf("Open (round %d): %v", round, err)
			}
			for _, m := range msgs {
				if !intact(m) {
					continue
				}
				got, ok := s.Get(m.id)
				if !ok || got.State != Active {
					t.Fatalf("round %d: intact message %s lost (found %v, state %v)", round, m.id, ok, got.State)
				}
				if c, err := s.Content(m.id); err != nil || !bytes.Equal(c, m.content) {
					t.Fatalf("round %d: intact message %s: Content %v", round, m.id, err)
				}
			}
			s.List() // must not panic on whatever else was recovered
			s.Close()
		}
	})
}
