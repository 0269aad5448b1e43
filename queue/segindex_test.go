package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// indexedQueue fills a queue in dir over several segments with messages in
// every state (deferred with reasons, partly delivered, on hold, held at
// arrival, deleted) and returns the IDs appended.
func indexedQueue(t *testing.T, dir string) []string {
	t.Helper()
	s := openT(t, dir, Options{SegmentSize: 4096})
	var idl []string
	for i := range 30 {
		var id string
		if i%7 == 3 {
			env := testEnvelope(i)
			if err := s.AppendHeld(context.Background(), env, testContent(i, 700)); err != nil {
				t.Fatal(err)
			}
			id = env.ID
		} else {
			size := 300 + (i*97)%900
			if i == 12 {
				size = 200000 // a record larger than the indexer's first buffer
			}
			id = mustAppend(t, s, testEnvelope(i), testContent(i, size))
		}
		idl = append(idl, id)
		switch i % 5 {
		case 0:
			mustChange(t, s, id, Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: time.Unix(1763630000, 0), Reason: "connect to mx.example.org[192.0.2.9]:25: Connection refused"})
		case 1:
			mustChange(t, s, id, Change{Kind: ChangeDelivered, Rcpts: []int{0}})
		case 2:
			mustChange(t, s, id, Change{Kind: ChangeHold})
		case 4:
			mustChange(t, s, id, Change{Kind: ChangeDelete})
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return idl
}

func idxFiles(t *testing.T, dir string) []string {
	t.Helper()
	return logFiles(t, dir, idxSuffix)
}

// logFiles lists the files in dir's log whose names end in suffix.
func logFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "log", "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reopenView opens the queue in dir and returns what it lists, its damage
// and its log, closing it again.
func reopenView(t *testing.T, dir string) ([]Message, Damage, string) {
	t.Helper()
	var log logBuf
	s := openT(t, dir, Options{SegmentSize: 4096, Logf: log.logf})
	defer s.Close()
	return s.List(), s.Damage(), log.String()
}

// TestSegmentIndexReopen: every sealed segment gets an index file (the
// newest, which appends go to, none), and a reopen from the index files
// rebuilds exactly what reading the segments does; without them the
// segments are read and the index files written again.
func TestSegmentIndexReopen(t *testing.T) {
	dir := t.TempDir()
	indexedQueue(t, dir)
	seqs, _ := listSegments(filepath.Join(dir, "log"))
	if len(seqs) < 4 {
		t.Fatalf("%d segments, want several", len(seqs))
	}
	if got := len(idxFiles(t, dir)); got != len(seqs)-1 {
		t.Fatalf("%d index files for %d segments, want one for each but the newest", got, len(seqs))
	}
	withIdx, dmg, log := reopenView(t, dir)
	if log != "" || dmg != (Damage{}) {
		t.Errorf("reopen from index files: damage %+v, log:\n%s", dmg, log)
	}
	// Break every segment's body bytes while keeping sizes and times: only
	// a reopen that uses the index files still lists the messages (their
	// envelopes, read from the segments for the listing, are lost).
	logDir := filepath.Join(dir, "log")
	for _, seq := range seqs[:len(seqs)-1] {
		path := segPath(logDir, seq)
		fi, _ := os.Stat(path)
		data, _ := os.ReadFile(path)
		for i := segHeaderSize; i < len(data); i++ {
			data[i] ^= 0x55
		}
		os.WriteFile(path, data, 0o600)
		os.Chtimes(path, fi.ModTime(), fi.ModTime())
	}
	broken, _, _ := reopenView(t, dir)
	if !reflect.DeepEqual(ids(broken), ids(withIdx)) {
		t.Errorf("reopen did not use the index files: %d messages listed, want %d", len(broken), len(withIdx))
	}

	dir2 := t.TempDir()
	indexedQueue(t, dir2)
	for _, f := range idxFiles(t, dir2) {
		os.Remove(f)
	}
	without, dmg, log := reopenView(t, dir2)
	if log != "" || dmg != (Damage{}) {
		t.Errorf("reopen from segments: damage %+v, log:\n%s", dmg, log)
	}
	withIdx2, _, _ := reopenView(t, dir2)
	if len(without) < 10 || !reflect.DeepEqual(stripIDs(without), stripIDs(withIdx)) || !reflect.DeepEqual(withIdx2, without) {
		t.Errorf("reopen with and without index files differ:\nwith    %+v\nwithout %+v", withIdx2, without)
	}
	if got := len(idxFiles(t, dir2)); got != len(seqs)-1 {
		t.Errorf("%d index files after a reopen without them, want %d", got, len(seqs)-1)
	}
}

// stripIDs drops queue IDs (two runs of indexedQueue assign different
// ones), keeping everything else to compare.
func stripIDs(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		m.ID, m.Envelope.ID = "", ""
		out[i] = m
	}
	return out
}

// TestSegmentIndexFallback: an index file that is stale (its segment
// written since), damaged, for another size, left half written by a crash
// or orphaned by one is not used: the segment is read, and what the reopen
// lists is the same.
func TestSegmentIndexFallback(t *testing.T) {
	cases := map[string]func(t *testing.T, logDir string, seq uint32){
		"missing (crash between seal and index write)": func(t *testing.T, logDir string, seq uint32) {
			os.Remove(idxPath(logDir, seq))
		},
		"damaged": func(t *testing.T, logDir string, seq uint32) {
			p := idxPath(logDir, seq)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
		},
		"cut short": func(t *testing.T, logDir string, seq uint32) {
			p := idxPath(logDir, seq)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-7)
		},
		"segment written since": func(t *testing.T, logDir string, seq uint32) {
			p := segPath(logDir, seq)
			later := time.Now().Add(time.Hour)
			os.Chtimes(p, later, later)
		},
		"another segment's": func(t *testing.T, logDir string, seq uint32) {
			b, _ := os.ReadFile(idxPath(logDir, seq+1))
			os.WriteFile(idxPath(logDir, seq), b, 0o600)
		},
		"half-written temporary file": func(t *testing.T, logDir string, seq uint32) {
			os.Remove(idxPath(logDir, seq))
			os.WriteFile(filepath.Join(logDir, "000000000001"+idxTmpSuffix), []byte("\x89PGIDX"), 0o600)
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			indexedQueue(t, dir)
			want, _, _ := reopenView(t, dir)
			logDir := filepath.Join(dir, "log")
			breakIt(t, logDir, 1)
			// Segment 1's body is garbage with its size and time kept: a
			// reopen that used the broken index would list it as before.
			got, dmg, log := reopenView(t, dir)
			if !reflect.DeepEqual(got, want) || dmg != (Damage{}) {
				t.Errorf("reopen: damage %+v, lists\n%+v\nwant\n%+v\nlog:\n%s", dmg, got, want, log)
			}
			if _, err := os.Stat(idxPath(logDir, 1)); err != nil {
				t.Errorf("segment 1's index file not written again: %v", err)
			}
			if tmps, _ := filepath.Glob(filepath.Join(logDir, "*"+idxTmpSuffix)); len(tmps) != 0 {
				t.Errorf("temporary index files left: %v", tmps)
			}
		})
	}
}

// TestSegmentIndexOrphan: an index file whose segment compaction deleted
// (a crash between the two removals) is removed at Open.
func TestSegmentIndexOrphan(t *testing.T) {
	dir := t.TempDir()
	indexedQueue(t, dir)
	logDir := filepath.Join(dir, "log")
	orphan := idxPath(logDir, 999)
	b, _ := os.ReadFile(idxPath(logDir, 1))
	os.WriteFile(orphan, b, 0o600)
	reopenView(t, dir)
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphaned index file kept: %v", err)
	}
}

// TestSegmentIndexDamageAtDelivery: a byte flipped in a message's content
// after its segment was indexed, the segment's size and time unchanged, is
// not seen at Open (the index is valid) but when the queue manager reads
// the content: the message is named in the log, moved to the corrupt
// queue and never delivered, and the next start reads the segment whole
// and names it again.
func TestSegmentIndexDamageAtDelivery(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentSize: 4096})
	var idl []string
	for i := range 12 {
		size := 600
		if i == 2 {
			size = 3000 // read through contentReader
		}
		env := testEnvelope(i)
		env.Arrival = time.Now() // not yet past its lifetime
		idl = append(idl, mustAppend(t, s, env, testContent(i, size)))
	}
	s.Close()
	logDir := filepath.Join(dir, "log")
	locs := scanLog(t, dir)
	victims := []string{idl[0], idl[2]}
	for _, id := range victims {
		l := locs[id][0]
		if _, err := os.Stat(idxPath(logDir, l.seg)); err != nil {
			t.Fatalf("%s: segment %d has no index file: %v", id, l.seg, err)
		}
		path := segPath(logDir, l.seg)
		fi, _ := os.Stat(path)
		editSegment(t, dir, l.seg, func(b []byte) []byte { b[l.end-100] ^= 0x20; return b })
		os.Chtimes(path, fi.ModTime(), fi.ModTime())
	}

	var log logBuf
	s = openQ(t, dir, Options{SegmentSize: 4096, Logf: log.logf})
	if d := s.Damage(); d != (Damage{}) {
		t.Fatalf("Open found damage %+v; the index files should have hidden it", d)
	}
	tr := newFakeTransport(nil)
	var mlog mailLog
	stop := runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}, QueueRunDelay: time.Hour, Log: &mlog})
	for _, id := range idl {
		waitFor(t, id+" to be delivered or quarantined", func() bool {
			m, ok := s.Get(id)
			return !ok || m.State == Corrupt
		})
	}
	for _, id := range victims {
		m, ok := s.Get(id)
		if !ok || m.State != Corrupt {
			t.Errorf("%s: %+v, want it in the corrupt queue", id, m)
		}
		if !log.has(id + ": damaged message record in segment") {
			t.Errorf("%s not named in the log:\n%s", id, log.String())
		}
		for _, c := range tr.callList() {
			if c.id == id && c.content != "" {
				t.Errorf("%s: damaged content delivered", id)
			}
		}
	}
	if d := s.Damage(); d.Records != 2 {
		t.Errorf("Damage = %+v, want 2 records", d)
	}
	// The damaged messages failed alone: their next hops were not
	// suspended for them.
	if l := mlog.find("delivery temporarily suspended"); len(l) != 0 {
		t.Errorf("a damaged message suspended its next hop:\n%s", mlog.String())
	}
	stop()
	s.Close()

	var log2 logBuf
	s2 := openT(t, dir, Options{SegmentSize: 4096, Logf: log2.logf})
	defer s2.Close()
	for _, id := range victims {
		if m, ok := s2.Get(id); !ok || m.State != Corrupt || !log2.has(id+": damaged message record") {
			t.Errorf("after restart %s: %+v; log:\n%s", id, m, log2.String())
		}
	}
}

// FuzzDecodeSegIndex: decodeSegIndex never panics on any bytes, and what
// it accepts replays without panicking. The checksum is made to match, so
// the fuzzer reaches the record decoder behind it.
func FuzzDecodeSegIndex(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{Syncer: newTestSyncer(), SegmentSize: 4096})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 6 {
		id := mustAppend(f, s, testEnvelope(i), testContent(i, 900))
		mustChange(f, s, id, Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: time.Unix(1763630000, 0), Reason: "try later"})
	}
	s.Close()
	logDir := filepath.Join(dir, "log")
	for _, p := range idxFilesF(f, logDir) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	size := segSize(f, dir, 1)
	f.Fuzz(func(t *testing.T, data []byte) {
		if n := len(data) - 4; n >= idxHeaderSize {
			binary.LittleEndian.PutUint32(data[n:], crc32.Checksum(data[:n], castagnoli))
		}
		x := newIndex(nil)
		decodeSegIndex(data, 1, size, x.replay)
	})
}

func idxFilesF(f *testing.F, logDir string) []string {
	m, err := filepath.Glob(filepath.Join(logDir, "*"+idxSuffix))
	if err != nil || len(m) == 0 {
		f.Fatalf("no index files: %v", err)
	}
	return m
}

// TestEnvelopesFromIndexFiles: listings and ETRN read the envelopes of
// messages in sealed segments from the segments' index files, one read a
// segment: a listing shows what Get (a pread of the record) shows, and
// still does with the segments themselves unreadable; ETRN for a domain
// makes exactly that domain's deferred mail due.
func TestEnvelopesFromIndexFiles(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentSize: 128 << 10})
	t0 := time.Unix(1763629200, 0)
	want := make(map[string]int) // domain -> messages
	for i := range 400 {
		dom := []string{"a.test", "b.test"}[i%2]
		id := mustAppend(t, s, oneRcpt(fmt.Sprintf("s%d@example.net", i), fmt.Sprintf("u%d@%s", i, dom), t0), testContent(i, 1000))
		mustChange(t, s, id, Change{Kind: ChangeDeferred, Until: t0.Add(24 * time.Hour), Reason: "connect to mx[192.0.2.1]:25: Connection refused"})
		want[dom]++
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(idxFiles(t, dir)); n < 2 {
		t.Fatalf("%d index files, want sealed segments with them", n)
	}
	s = openQ(t, dir, Options{})
	list := s.List()
	if len(list) != 400 {
		t.Fatalf("%d messages listed", len(list))
	}
	for _, m := range list {
		if got, ok := s.Get(m.ID); !ok || !reflect.DeepEqual(got, m) || m.Sender == "" {
			t.Fatalf("listed %+v\nGet says %+v", m, got)
		}
	}
	// With the sealed segments unreadable, only the index files can say.
	s.mu.Lock()
	sealedSeqs := slices.Collect(maps.Keys(s.segBytes))
	s.mu.Unlock()
	s.fmu.Lock()
	var saved []*os.File
	for _, seq := range sealedSeqs {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		if f := s.files[seq]; f != nil {
			saved = append(saved, f)
		}
		s.files[seq] = devnull
	}
	s.fmu.Unlock()
	sealed := 0
	for i, m := range s.List() {
		if m.Sender != list[i].Sender || len(m.Recipients) != 1 || m.Recipients[0] != list[i].Recipients[0] {
			// Only the active segment's own messages may be read there.
			if l, _ := s.locate(m.ID); slices.Contains(sealedSeqs, l.seg) {
				t.Fatalf("%s in sealed segment %d listed without its envelope: %+v", m.ID, l.seg, m.Envelope)
			}
			continue
		}
		sealed++
	}
	s.fmu.Lock()
	for _, seq := range sealedSeqs {
		s.files[seq].Close()
		delete(s.files, seq)
	}
	s.fmu.Unlock()
	for _, f := range saved {
		f.Close()
	}
	if sealed < 300 {
		t.Fatalf("only %d messages listed with envelopes from the index files", sealed)
	}

	tr := newFakeTransport(nil)
	clock := newFakeClock()
	runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: DefaultQueueLifetime})
	s.FlushDomain("a.test")
	waitFor(t, "the ETRN'd mail", func() bool { return tr.nCalls() >= want["a.test"] })
	idle(t, s)
	for _, c := range tr.callList() {
		if len(c.rcpts) != 1 || !strings.HasSuffix(c.rcpts[0], "@a.test") {
			t.Fatalf("ETRN a.test delivered to %v", c.rcpts)
		}
	}
	if n := tr.nCalls(); n != want["a.test"] || len(s.List()) != want["b.test"] {
		t.Fatalf("%d delivered, %d left; want %d and %d", n, len(s.List()), want["a.test"], want["b.test"])
	}
}
