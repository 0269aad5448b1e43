package queue

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestSegmentAgeRotation: a segment that records still go to is sealed
// once it is segmentMaxAge old, and then deleted when nothing in it is
// live, even while no record follows; the next record starts a new one.
func TestSegmentAgeRotation(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	defer func() { s.Close() }()
	clock := newFakeClock()
	tr := newFakeTransport(nil)
	stop := runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm, QueueRunDelay: time.Hour})
	id := mustAppend(t, s, oneRcpt("s@example.net", "u@example.com", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the delivery", gone(s, id))
	idle(t, s)
	clock.Advance(segmentMaxAge - time.Second)
	time.Sleep(5 * time.Millisecond) // an early rotation would show now
	if n := s.SegmentCount(); n != 1 {
		t.Fatalf("%d segments before the segment is %v old, want 1", n, segmentMaxAge)
	}
	waitFor(t, "the old segment to go", func() bool {
		clock.Advance(time.Second)
		return s.SegmentCount() == 0
	})
	id = mustAppend(t, s, oneRcpt("s@example.net", "u@example.com", clock.Now()), []byte("y\r\n"))
	waitFor(t, "the next delivery", gone(s, id))
	if _, err := os.Stat(segPath(filepath.Join(dir, "log"), 2)); err != nil {
		t.Fatalf("the next record did not start segment 2: %v", err)
	}
	stop()
	s.Close()
	s = openT(t, dir, Options{})
	if msgs := s.List(); len(msgs) != 0 {
		t.Fatalf("after reopen: %v queued", ids(msgs))
	}
}

// TestCompactionShortOfSpace: short of space, compaction deletes the
// segments with nothing live and copies nothing forward (a copy needs the
// space a full disk lacks); with space again it copies and deletes the
// rest.
func TestCompactionShortOfSpace(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{SegmentSize: 4096, MinFree: 1 << 20})
	var copies atomic.Int32
	s.compactHook = func(stage string) {
		if stage == "copy" {
			copies.Add(1)
		}
	}
	clock := newFakeClock()
	var delivered []string
	add := func(n int) {
		for i := range n {
			delivered = append(delivered, mustAppend(t, s, oneRcpt("s@example.net", "u@example.com", clock.Now()), testContent(i, 1500)))
		}
	}
	add(4) // segments 1 and 2
	held := oneRcpt("s@example.net", "h@example.com", clock.Now())
	if err := s.AppendHeld(t.Context(), held, testContent(99, 1500)); err != nil {
		t.Fatal(err)
	}
	add(11) // the rest of segment 3, then 4 to 8
	if c, _ := s.locate(held.ID); c.seg != 3 {
		t.Fatalf("held message in segment %d, want 3", c.seg)
	}
	fakeSpace(s, 100) // 400 KiB free, queue_minfree 1 MiB

	tr := newFakeTransport(nil)
	runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm, QueueRunDelay: time.Hour})
	for _, id := range delivered {
		waitFor(t, "the deliveries", gone(s, id))
	}
	logDir := filepath.Join(dir, "log")
	waitFor(t, "segments 1 and 2 to go", func() bool {
		_, err1 := os.Stat(segPath(logDir, 1))
		_, err2 := os.Stat(segPath(logDir, 2))
		return os.IsNotExist(err1) && os.IsNotExist(err2)
	})
	idle(t, s)
	if _, err := os.Stat(segPath(logDir, 3)); err != nil || copies.Load() != 0 {
		t.Fatalf("short of space: segment 3 %v, %d messages copied forward; want it kept, none copied", err, copies.Load())
	}

	fakeSpace(s, 1000)
	s.Flush() // let the manager look again
	waitFor(t, "segment 3 to go", func() bool {
		_, err := os.Stat(segPath(logDir, 3))
		return os.IsNotExist(err)
	})
	if c, err := s.Content(held.ID); err != nil || string(c) != string(testContent(99, 1500)) {
		t.Fatalf("held message after it was copied forward: %v", err)
	}
	if copies.Load() != 1 {
		t.Errorf("%d copies, want 1", copies.Load())
	}
}
