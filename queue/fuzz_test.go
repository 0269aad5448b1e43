package queue

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzRecover damages a multi-segment log at random: flipped bytes (ops,
// five bytes each: offset, XOR mask) and one segment (any, not only the
// newest) cut short. Open must never panic nor fail; every record left
// entirely undamaged (its magic included) must be recovered with its
// content; every record whose header is left undamaged but whose body is
// damaged or cut must be named: in the corrupt queue and counted by
// Damage; both before and after a reopen.
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

	f.Add([]byte{}, uint16(0), uint8(0))
	f.Add([]byte{100, 0, 0, 0, 1}, uint16(10), uint8(0))
	f.Add([]byte{0x40, 0, 0, 0, 0xff, 0x90, 0, 0, 0, 0x10}, uint16(0), uint8(0))
	f.Add(bytes.Repeat([]byte{7, 1, 0, 0, 0x55}, 20), uint16(300), uint8(1))
	f.Add([]byte{}, uint16(1378), uint8(1)) // an older segment cut inside a record
	f.Add([]byte{0x20, 1, 0, 0, 0x08}, uint16(700), uint8(2))

	f.Fuzz(func(t *testing.T, ops []byte, cut uint16, cutSeg uint8) {
		work := make(map[uint32][]byte)
		for seq, d := range segs {
			work[seq] = bytes.Clone(d)
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
					break
				}
				pos -= len(work[seq])
			}
		}
		// Counting from the newest, so the zero value keeps the old
		// behaviour: a torn tail.
		cseq := seqs[len(seqs)-1-int(cutSeg)%len(seqs)]
		w := work[cseq]
		work[cseq] = w[:len(w)-int(cut)%(len(w)+1)]

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
		// Compared, not tracked: the same byte flipped twice is intact.
		untouched := func(m msgRec, end int) bool {
			return end <= len(work[m.seg]) && bytes.Equal(work[m.seg][m.off:end], segs[m.seg][m.off:end])
		}
		// A segment shorter than a segment header is an unfinished one
		// when it is the newest: Open removes it, records and all.
		removed := len(work[cseq]) < segHeaderSize && cseq == seqs[len(seqs)-1]
		named := 0
		for _, m := range msgs {
			if untouched(m, m.off+recHeaderSize) && !untouched(m, m.end) && !(removed && m.seg == cseq) {
				named++
			}
		}
		for round := range 2 {
			s, err := Open(dir, Options{Syncer: newTestSyncer(), SegmentSize: 4096})
			if err != nil {
				t.Fatalf("Open (round %d): %v", round, err)
			}
			for _, m := range msgs {
				got, ok := s.Get(m.id)
				switch {
				case removed && m.seg == cseq:
				case untouched(m, m.end):
					if !ok || got.State != Active {
						t.Fatalf("round %d: intact message %s lost (found %v, state %v)", round, m.id, ok, got.State)
					}
					if c, err := s.Content(m.id); err != nil || !bytes.Equal(c, m.content) {
						t.Fatalf("round %d: intact message %s: Content %v", round, m.id, err)
					}
				case untouched(m, m.off+recHeaderSize):
					if !ok || got.State != Corrupt || got.Damage == "" {
						t.Fatalf("round %d: damaged message %s with its header intact not named (found %v, %+v)", round, m.id, ok, got)
					}
				}
			}
			if d := s.Damage(); d.Records != named {
				t.Fatalf("round %d: Damage %+v, want %d records named", round, d, named)
			}
			s.List() // must not panic on whatever else was recovered
			s.Close()
		}
	})
}

// FuzzDecodeRecord feeds arbitrary bodies, framed as valid records of any
// type, to the record decoders through recovery: a message with envelope,
// the fuzzed record (same ID), then another message. Whatever the body,
// recovery must not panic, must take the fuzzed record's length on trust
// (the message after it is always recovered intact), must accept a message
// exactly when its envelope decodes, and every recovered message must make
// a sane listing.
func FuzzDecodeRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ uint8, envLen uint16, body []byte) {
		envLen %= uint16(min(len(body), 0xffff) + 1)
		first := messageRecord(testEnvelope(1), []byte("first\r\n"))
		after := messageRecord(testEnvelope(2), []byte("after\r\n"))
		data := segHeader(1, time.Unix(1763632862, 0))
		for _, r := range []struct {
			typ    recType
			id     string
			envLen int
			body   []byte
		}{
			{recMessage, "FUZZ1", len(first.env), first.body},
			{recType(typ), "FUZZ1", int(envLen), body},
			{recMessage, "AFTER2", len(after.env), after.body},
		} {
			data = appendRecord(data, r.typ, r.id, r.envLen, r.body)
		}
		x := newIndex(nil)
		x.keepEnvelopes()
		res := scanSegment(data, 1, true, x.replay, func(off, n int) {
			t.Fatalf("fragment of %d bytes at %d in a well-framed segment", n, off)
		})
		if res.torn || res.end != len(data) {
			t.Fatalf("scan ended at %d of %d, torn %v", res.end, len(data), res.torn)
		}
		if e := x.m.get("AFTER2"); e == nil || e.state != Active || int(e.nrcpt) != len(testEnvelope(2).Recipients) {
			t.Fatalf("the record after the fuzzed one: %+v", e)
		}
		if recType(typ) == recMessage {
			_, err := decodeEnvelope(string(body[:envLen]))
			n, ok := checkEnvelope(body[:envLen])
			e := x.m.get("FUZZ1")
			if ok != (err == nil) || ok != (e.state == Active) || ok && int(e.nrcpt) != n {
				t.Fatalf("envelope: check %v (%d), decode %v, state %v", ok, n, err, e.state)
			}
		}
		for _, m := range x.snapshot() {
			msg := m.message(x.envs[m.id])
			if msg.State != Corrupt && (len(msg.Recipients) == 0 || len(msg.Done) != len(msg.Recipients) || msg.Size < 0) {
				t.Fatalf("recovered %s: %+v", m.id, msg)
			}
			if msg.State == Corrupt && msg.Damage == "" {
				t.Fatalf("corrupt %s says nothing of its damage", m.id)
			}
		}
	})
}

// encodedMessage is a message body as Append encodes it.
type encodedMessage struct{ env, body []byte }

func messageRecord(env *Envelope, content []byte) encodedMessage {
	e := appendEnvelope(nil, env, 1763632862e9)
	return encodedMessage{env: e, body: append(bytes.Clone(e), content...)}
}

// appendRecord frames body as a record of typ at the end of data, in
// segment 1.
func appendRecord(data []byte, typ recType, id string, envLen int, body []byte) []byte {
	hdr := make([]byte, recHeaderSize)
	fillHeader(hdr, typ, id, len(body), envLen)
	sealHeader(hdr, 1, int64(len(data)))
	data = append(append(data, hdr...), body...)
	return binary.LittleEndian.AppendUint32(data, bodyChecksum([]byte(id), body))
}
