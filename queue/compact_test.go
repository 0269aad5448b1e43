package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCompactionKeepsLongLivedMessages: while the messages around them are
// delivered, a long-deferred and a held message are copied forward and
// the old segments deleted; the deferred one is delivered, once, when its
// transport accepts, and the held one stays held across a reopen.
func TestCompactionKeepsLongLivedMessages(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{SegmentSize: 4096})
	const later = "host mx.slow.example[192.0.2.3] said: 451 4.3.0 later (in reply to RCPT TO command)"
	slow := newFakeTransport(func(*Delivery, string) Result {
		return Result{Status: StatusDeferred, DSN: "4.3.0", Reason: later, Relay: "mx.slow.example[192.0.2.3]:25"}
	})
	fast := newFakeTransport(nil)
	fast.gate = make(chan struct{}) // nothing is delivered until all are queued
	stop := runManager(t, s, ManagerOptions{
		Transports:           map[string]Transport{"slow": slow, "smtp": fast},
		Router:               domainRouter{"slow.example": "slow"},
		MaximalQueueLifetime: DefaultQueueLifetime,
	})
	deferredContent := testContent(7, 900)
	deferred := mustAppend(t, s, oneRcpt("s@example.net", "u@slow.example", time.Time{}), deferredContent)
	heldEnv := oneRcpt("s@example.net", "h@example.com", time.Time{})
	if err := s.AppendHeld(context.Background(), heldEnv, testContent(8, 700)); err != nil {
		t.Fatal(err)
	}
	held := heldEnv.ID
	waitFor(t, "the deferral", func() bool { m, _ := s.Get(deferred); return m.State == Deferred })
	firstSeg := scanLog(t, dir)[deferred][0].seg

	var others []string
	for i := range 60 {
		others = append(others, mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("u%d@fast.example", i), time.Time{}), testContent(i, 500)))
	}
	peak := s.SegmentCount()
	close(fast.gate)
	for _, id := range others {
		waitFor(t, "the other messages", gone(s, id))
	}
	// What compaction leaves: fewer than compactMinSegments sealed
	// segments, and the one appends go to.
	waitFor(t, "old segments to be deleted", func() bool { return s.SegmentCount() <= compactMinSegments })
	if peak < 2*compactMinSegments {
		t.Fatalf("the log peaked at %d segments; the test proves little", peak)
	}
	if _, err := os.Stat(segPath(filepath.Join(dir, "log"), firstSeg)); !os.IsNotExist(err) {
		t.Errorf("the deferred message's first segment is still there: %v", err)
	}
	// Deleted segments take their index files with them (one being
	// written as its segment goes is removed by its writer).
	waitFor(t, "the first segment's index file to go", func() bool {
		_, err := os.Stat(idxPath(filepath.Join(dir, "log"), firstSeg))
		return os.IsNotExist(err)
	})
	m, ok := s.Get(deferred)
	if !ok || m.State != Deferred || m.Reasons[0] != later || m.NextTry.IsZero() {
		t.Fatalf("deferred message after compaction: %v %+v", ok, m)
	}
	if c, err := s.Content(deferred); err != nil || !bytes.Equal(c, deferredContent) {
		t.Fatalf("Content after compaction: %v", err)
	}
	if recs := scanLog(t, dir)[deferred]; len(recs) == 0 || recs[0].typ != recState {
		t.Errorf("the deferred message's records now: %+v", recs)
	}

	// Its transport accepts now: delivered once.
	slow.setFn(nil)
	s.Flush()
	waitFor(t, "the deferred message", gone(s, deferred))
	if n := slow.sentTo("u@slow.example"); n != 1 {
		t.Errorf("delivered %d times", n)
	}
	stop()
	s.Close()
	s = openQ(t, dir, Options{SegmentSize: 4096})
	if l := s.List(); len(l) != 1 || l[0].ID != held || l[0].State != Hold {
		t.Fatalf("after reopen: %+v", l)
	}
	if c, err := s.Content(held); err != nil || !bytes.Equal(c, testContent(8, 700)) {
		t.Fatalf("held Content after reopen: %v", err)
	}
}

// crashImage is what a power cut would leave: the segment files then in
// the directory, each cut to what its last completed sync covered.
type crashImage struct {
	stage string
	files map[string][]byte
}

func captureCrash(t *testing.T, dir string, ts *testSyncer, stage string) crashImage {
	t.Helper()
	logDir := filepath.Join(dir, "log")
	img := crashImage{stage: stage, files: make(map[string][]byte)}
	seqs, err := listSegments(logDir)
	if err != nil {
		t.Error(err) // called from the compaction's goroutines: no Fatal
		return img
	}
	for _, seq := range seqs {
		path := segPath(logDir, seq)
		ts.mu.Lock()
		n := ts.synced[path]
		ts.mu.Unlock()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return img
		}
		img.files[filepath.Base(path)] = data[:min(int(n), len(data))]
	}
	return img
}

func (img crashImage) restore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range img.files {
		if err := os.WriteFile(filepath.Join(logDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCompactionCrash cuts the power at every step of a compaction (after
// each copy, after all copies, after each segment deletion, and in the
// middle of the last copy): recovery must find every live message exactly
// once, with its state and content, and no message that was done.
func TestCompactionCrash(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts, SegmentSize: 4096})
	until := time.Unix(1763700000, 0)
	contents := make(map[string][]byte)
	for i := range 40 {
		c := testContent(i, 400+(i*37)%200)
		id := mustAppend(t, s, testEnvelope(i), c)
		switch i {
		case 3:
			mustChange(t, s, id, Change{Kind: ChangeHold})
		case 11:
			mustChange(t, s, id, Change{Kind: ChangeDelivered, Rcpts: []int{0}})
			mustChange(t, s, id, Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: until, Reason: "451 4.3.0 later"})
		case 19:
		case 27:
			mustChange(t, s, id, Change{Kind: ChangeDeferred, Until: until, Reason: "connect to x[192.0.2.1]:25: Connection refused"})
			mustChange(t, s, id, Change{Kind: ChangeWarned})
			mustChange(t, s, id, Change{Kind: ChangeExpire})
			mustChange(t, s, id, Change{Kind: ChangeBounced, Rcpts: []int{0}, Reason: "550 5.1.1 no"})
		default:
			mustChange(t, s, id, Change{Kind: ChangeDelivered})
			continue
		}
		contents[id] = c
	}
	want := make(map[string]Message)
	for _, m := range s.List() {
		want[m.ID] = m
	}
	if len(want) != 4 {
		t.Fatalf("%d live messages, want 4", len(want))
	}
	before := s.SegmentCount()

	var mu sync.Mutex
	images := []crashImage{captureCrash(t, dir, ts, "before")}
	s.compactHook = func(stage string) {
		mu.Lock()
		images = append(images, captureCrash(t, dir, ts, stage))
		mu.Unlock()
	}
	s.mu.Lock()
	p, _, ok := s.planCompaction(false)
	s.mu.Unlock()
	if !ok || len(p.copies) < 3 {
		t.Fatalf("plan %+v, %v: want most live messages copied", p, ok)
	}
	if err := s.compact(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	after := s.SegmentCount()
	if after >= before-2 {
		t.Fatalf("%d segments before compaction, %d after", before, after)
	}
	s.Close()
	images = append(images, captureCrash(t, dir, ts, "after"))

	// And a copy torn in the middle: the last record of the newest
	// segment, as the copies were durable, cut short.
	for _, img := range images {
		if img.stage != "copied" {
			continue
		}
		torn := crashImage{stage: "torn copy", files: make(map[string][]byte)}
		newest := ""
		for name, data := range img.files {
			torn.files[name] = data
			newest = max(newest, name)
		}
		torn.files[newest] = torn.files[newest][:len(torn.files[newest])-10]
		images = append(images, torn)
		break
	}

	twice := 0
	for i, img := range images {
		t.Run(fmt.Sprintf("%02d %s", i, img.stage), func(t *testing.T) {
			dir := img.restore(t)
			for id, recs := range scanLog(t, dir) {
				n := 0
				for _, r := range recs {
					if r.typ != recChange {
						n++
					}
				}
				if n > 1 && want[id].ID != "" {
					twice++
				}
			}
			var log logBuf
			s := openT(t, dir, Options{SegmentSize: 4096, Logf: log.logf})
			defer s.Close()
			got := make(map[string]Message)
			for _, m := range s.List() {
				got[m.ID] = m
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("recovered\n%+v\nwant\n%+v", got, want)
			}
			for id, c := range contents {
				if rc, err := s.Content(id); err != nil || !bytes.Equal(rc, c) {
					t.Fatalf("Content(%s): %v", id, err)
				}
			}
			if strings.Contains(log.String(), "recorded again") || strings.Contains(log.String(), "corrupt") {
				t.Errorf("recovery log:\n%s", log.String())
			}
			mustAppend(t, s, testEnvelope(99), []byte("after\r\n"))
		})
	}
	if twice == 0 {
		t.Error("no image held a message twice (original and copy); the test proves little")
	}
}

// TestStateRecordDamaged: a damaged state record whose original is gone
// is a corrupt message; one whose original is still in the log leaves the
// message as the original says.
func TestStateRecordDamaged(t *testing.T) {
	t.Run("held on arrival", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, Options{})
		env := testEnvelope(1)
		if err := s.AppendHeld(context.Background(), env, []byte("held\r\n")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		rec := scanLog(t, dir)[env.ID][0]
		editSegment(t, dir, rec.seg, func(b []byte) []byte { return flip(b, rec.end-8, 0x40) })
		var log logBuf
		s = openT(t, dir, Options{Logf: log.logf})
		defer s.Close()
		if m, ok := s.Get(env.ID); !ok || m.State != Corrupt {
			t.Fatalf("found %v state %v; log:\n%s", ok, m.State, log.String())
		}
	})
	t.Run("copy of a live message", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, Options{SegmentSize: 4096})
		id := mustAppend(t, s, testEnvelope(1), testContent(1, 600))
		mustChange(t, s, id, Change{Kind: ChangeDeferred, Rcpts: []int{0}, Until: time.Unix(1763700000, 0), Reason: "later"})
		for i := range 30 {
			mustChange(t, s, mustAppend(t, s, testEnvelope(10+i), testContent(i, 600)), Change{Kind: ChangeDelivered})
		}
		want, _ := s.Get(id)
		c, _ := s.locate(id)
		if err := s.copyForward(context.Background(), id, c.seg); err != nil {
			t.Fatal(err)
		}
		s.Close()
		recs := scanLog(t, dir)[id]
		cp := recs[len(recs)-1]
		if cp.typ != recState {
			t.Fatalf("records %+v", recs)
		}
		editSegment(t, dir, cp.seg, func(b []byte) []byte { return flip(b, cp.end-8, 0x40) })
		var log logBuf
		s = openT(t, dir, Options{SegmentSize: 4096, Logf: log.logf})
		defer s.Close()
		if got, ok := s.Get(id); !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v; log:\n%s", got, want, log.String())
		}
		if !log.has("earlier record kept") {
			t.Errorf("log:\n%s", log.String())
		}
	})
}

// TestCopyForwardSeesPendingChanges: a copy takes the state the message
// has once the changes ahead of it in the log are applied, including those
// still being written or waiting for the next batch, so a recovery that
// has only the copy (its original's segment deleted) loses none of them.
func TestCopyForwardSeesPendingChanges(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts, SegmentSize: 4096})
	id := mustAppend(t, s, testEnvelope(1), testContent(1, 600))
	for i := range 12 {
		mustChange(t, s, mustAppend(t, s, testEnvelope(10+i), testContent(i, 600)), Change{Kind: ChangeDelivered})
	}
	orig, _ := s.locate(id)

	hold, entered := make(chan struct{}), make(chan string, 10)
	ts.setHold(hold, entered)
	s.mu.Lock()
	base := s.submitted
	s.mu.Unlock()
	errs := make(chan error, 3)
	go func() { errs <- s.Change(context.Background(), id, Change{Kind: ChangeDelivered, Rcpts: []int{0}}) }()
	<-entered // that change is being written: the batch in flight
	go func() {
		errs <- s.Change(context.Background(), id, Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: time.Unix(1763700000, 0), Reason: "451 later"})
	}()
	waitSubmitted(t, s, base+2) // that one waits in the next batch
	go func() { errs <- s.copyForward(context.Background(), id, orig.seg) }()
	waitSubmitted(t, s, base+3)
	ts.setHold(nil, nil)
	close(hold)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want, _ := s.Get(id)
	if !want.Done[0] || want.Reasons[1] != "451 later" {
		t.Fatalf("live state %+v", want)
	}
	if c, _ := s.locate(id); c.seg == orig.seg || c.tail == 0 {
		t.Fatalf("not copied: %+v", c)
	}
	s.Close()
	if err := os.Remove(segPath(filepath.Join(dir, "log"), orig.seg)); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{SegmentSize: 4096})
	defer s.Close()
	if got, ok := s.Get(id); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("recovered from the copy alone: %+v, want %+v", got, want)
	}
	if c, err := s.Content(id); err != nil || !bytes.Equal(c, testContent(1, 600)) {
		t.Fatalf("Content: %v", err)
	}
}
