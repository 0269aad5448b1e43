package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeSpace makes s see bavail free blocks of 4 KiB, read afresh at once.
func fakeSpace(s *Store, bavail int64) {
	s.space.statfs = func(string) (int64, int64, error) { return 4096, bavail, nil }
	s.space.stale()
}

// TestSpaceRule is Postfix's smtpd_check_queue: refused when queue_minfree
// does not fit in the free blocks, or message_size_limit 1.5 times over.
func TestSpaceRule(t *testing.T) {
	const blk = 4096
	for _, tc := range []struct {
		name               string
		bavail             int64
		minFree, sizeLimit int64
		ok                 bool
	}{
		{"defaults, space", 10, 0, 0, true},
		{"defaults, disk full", 0, 0, 0, false},
		{"minfree fits", 101, 100 * blk, 0, true},
		{"minfree just fits not", 100, 100 * blk, 0, false},
		{"1.5 x limit fits", 151, 0, 100 * blk, true},
		{"1.5 x limit does not", 150, 0, 100 * blk, false},
		{"minfree refuses though the limit fits", 300, 300 * blk, 10 * blk, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fsSpace{bsize: blk, bavail: tc.bavail}
			if got := r.enough(tc.minFree, tc.sizeLimit); got != tc.ok {
				t.Errorf("enough(%d, %d) with %d free blocks = %v, want %v", tc.minFree, tc.sizeLimit, tc.bavail, got, tc.ok)
			}
		})
	}
	if !(&fsSpace{err: errors.New("statfs failed")}).enough(1<<30, 1<<30) {
		t.Error("a failed statfs refuses mail; it should leave it to the writes")
	}
}

// TestAppendRefusedWhenShort: under Options.MinFree an Append fails with
// ErrNoSpace and writes nothing; changes (the queue manager's) still go
// in; once there is space, appends resume.
func TestAppendRefusedWhenShort(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{MinFree: 1 << 20})
	fakeSpace(s, 1000)
	id := mustAppend(t, s, testEnvelope(1), []byte("first\r\n"))
	fakeSpace(s, 256) // exactly 1 MiB free: not more than queue_minfree
	if free, ok := s.Space(0); ok || free != 1<<20 {
		t.Fatalf("Space = %d, %v; want 1048576, false", free, ok)
	}
	before := segSize(t, dir, 1)
	err := s.Append(context.Background(), testEnvelope(2), []byte("second\r\n"))
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "1048576 bytes free") {
		t.Fatalf("Append when short of space = %v, want ErrNoSpace naming the free bytes", err)
	}
	if got := segSize(t, dir, 1); got != before {
		t.Fatalf("a refused Append wrote %d bytes", got-before)
	}
	mustChange(t, s, id, Change{Kind: ChangeHold})
	if err := s.appendNotice(context.Background(), testEnvelope(3), []byte("bounce\r\n")); err != nil {
		t.Fatalf("a notice is held to queue_minfree: %v", err)
	}
	fakeSpace(s, 257)
	mustAppend(t, s, testEnvelope(4), []byte("fourth\r\n"))
	if s.failed() {
		t.Fatal("the store failed")
	}
}

// noSpaceAt runs n Appends with the first sync after they start failing
// with ENOSPC: the first k join the batch being synced, the rest the next
// batch, placed after them. It returns the Appends' errors.
func noSpaceAt(t *testing.T, s *Store, ts *testSyncer, k, n int) []error {
	t.Helper()
	hold, entered := make(chan struct{}), make(chan string, 1)
	ts.setHold(hold, entered)
	s.mu.Lock()
	base := s.submitted
	s.mu.Unlock()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		if i == k {
			<-entered // the first batch is being synced: the rest come after it
		}
		wg.Go(func() { errs[i] = s.Append(context.Background(), testEnvelope(100+i), testContent(100+i, 700)) })
		if i < k {
			waitSubmitted(t, s, base+int64(i)+1)
		}
	}
	waitSubmitted(t, s, base+int64(n))
	ts.failSyncs(1, syscall.ENOSPC)
	ts.setHold(nil, nil)
	close(hold)
	wg.Wait()
	return errs
}

// TestNoSpaceIsNotSticky: a sync that fails with ENOSPC fails its batch
// and the one placed after it with ErrNoSpace, cuts the segment back to
// its last durable offset, and the store takes appends again at once.
func TestNoSpaceIsNotSticky(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	var log logBuf
	s := openT(t, dir, Options{Syncer: ts, Logf: log.logf})
	acked := map[string][]byte{}
	for i := range 3 {
		c := testContent(i, 500)
		acked[mustAppend(t, s, testEnvelope(i), c)] = c
	}
	durable := segSize(t, dir, 1)
	for i, err := range noSpaceAt(t, s, ts, 2, 5) {
		if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("Append %d in or after the failed batch = %v, want ErrNoSpace", i, err)
		}
	}
	if got := segSize(t, dir, 1); got != durable {
		t.Fatalf("segment is %d bytes after the failure, want it cut back to %d", got, durable)
	}
	if !log.has("no space left on device: the records of this write are refused") || log.has("writing again") {
		t.Errorf("log lacks the no-space warning:\n%s", log.String())
	}
	// Nothing sticks: appends and changes go on, in the place of the
	// refused ones.
	for i := 10; i < 13; i++ {
		c := testContent(i, 300)
		acked[mustAppend(t, s, testEnvelope(i), c)] = c
	}
	if !log.has("queue: writing again after running out of space") {
		t.Errorf("log lacks the line that writing resumed:\n%s", log.String())
	}
	if s.failed() || len(s.List()) != len(acked) {
		t.Fatalf("after the failure: failed %v, %d messages listed, want %d", s.failed(), len(s.List()), len(acked))
	}
	want := s.List()
	s.Close()

	s = openT(t, dir, Options{Logf: log.logf})
	defer s.Close()
	if got := s.List(); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened: %v, want %v", ids(got), ids(want))
	}
	for id, c := range acked {
		if got, err := s.Content(id); err != nil || string(got) != string(c) {
			t.Fatalf("Content(%s) = %v", id, err)
		}
	}
	if log.has("dropped") || log.has("torn") {
		t.Errorf("recovery found damage:\n%s", log.String())
	}
}

// TestNoSpaceCreatingSegment: when the segment a record rolls into cannot
// be created, the record fails, the segment file is gone, and the next
// record creates it.
func TestNoSpaceCreatingSegment(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts, SegmentSize: 4096})
	first := mustAppend(t, s, testEnvelope(1), testContent(1, 3000))
	ts.failSyncs(1, syscall.ENOSPC) // the new segment's header
	if err := s.Append(context.Background(), testEnvelope(2), testContent(2, 3000)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append into a segment that cannot be created = %v, want ErrNoSpace", err)
	}
	if _, err := os.Stat(segPath(filepath.Join(dir, "log"), 2)); !os.IsNotExist(err) {
		t.Fatalf("segment 2 left behind: %v", err)
	}
	third := mustAppend(t, s, testEnvelope(3), testContent(3, 3000))
	if c, _ := s.locate(third); c.seg != 2 {
		t.Fatalf("the next record went to segment %d, want 2", c.seg)
	}
	s.Close()
	s = openT(t, dir, Options{SegmentSize: 4096})
	defer s.Close()
	if got := ids(s.List()); !reflect.DeepEqual(got, []string{first, third}) {
		t.Fatalf("reopened: %v, want [%s %s]", got, first, third)
	}
}

// TestCrashAfterNoSpace: a crash after a batch failed for want of space
// and later ones succeeded, with either nothing unsynced surviving or
// everything written surviving, recovers exactly the acknowledged
// messages and no damage.
func TestCrashAfterNoSpace(t *testing.T) {
	for _, keepUnsynced := range []bool{false, true} {
		name := "unsynced bytes lost"
		if keepUnsynced {
			name = "written bytes survive"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ts := newTestSyncer()
			s := openT(t, dir, Options{Syncer: ts, SegmentSize: 8192})
			acked := map[string]bool{}
			for i := range 8 {
				acked[mustAppend(t, s, testEnvelope(i), testContent(i, 900))] = true
			}
			noSpaceAt(t, s, ts, 3, 6)
			for i := 20; i < 30; i++ {
				acked[mustAppend(t, s, testEnvelope(i), testContent(i, 900))] = true
			}
			ts.mu.Lock()
			synced := make(map[string]int64, len(ts.synced))
			for k, v := range ts.synced {
				synced[k] = v
			}
			ts.mu.Unlock()
			s.Close()
			logDir := filepath.Join(dir, "log")
			if !keepUnsynced {
				seqs, _ := listSegments(logDir)
				for _, seq := range seqs {
					if err := os.Truncate(segPath(logDir, seq), synced[segPath(logDir, seq)]); err != nil {
						t.Fatal(err)
					}
				}
			}
			var log logBuf
			s = openT(t, dir, Options{SegmentSize: 8192, Logf: log.logf})
			defer s.Close()
			got := map[string]bool{}
			for _, m := range s.List() {
				got[m.ID] = true
			}
			if !reflect.DeepEqual(got, acked) {
				t.Fatalf("recovered %d messages, want the %d acknowledged", len(got), len(acked))
			}
			if log.String() != "" {
				t.Errorf("recovery warned:\n%s", log.String())
			}
		})
	}
}
