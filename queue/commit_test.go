package queue

import (
	"context"
	"sync"
	"testing"
	"time"
)

// waitSubmitted waits until n records have joined a batch since Open. It
// polls a counter; no timing is asserted.
func waitSubmitted(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		got := s.submitted
		s.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records submitted", got, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestDurableBeforeReturn checks, for Append and Change, that the call does
// not return before the Sync covering its record has returned.
func TestDurableBeforeReturn(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(s *Store, id string) error
	}{
		{"append", func(s *Store, _ string) error {
			return s.Append(context.Background(), testEnvelope(7), []byte("hello\r\n"))
		}},
		{"change", func(s *Store, id string) error {
			return s.Change(context.Background(), id, Change{Kind: ChangeHold})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSyncer()
			s := openT(t, t.TempDir(), Options{Syncer: ts})
			defer s.Close()
			id := mustAppend(t, s, testEnvelope(1), []byte("x"))

			hold, entered := make(chan struct{}), make(chan string, 1)
			ts.setHold(hold, entered)
			_, completedBefore := ts.counts()
			type result struct {
				err       error
				completed int
			}
			done := make(chan result, 1)
			go func() {
				err := tc.op(s, id)
				_, c := ts.counts()
				done <- result{err, c}
			}()
			<-entered // the sync covering the record has started...
			select {
			case r := <-done:
				t.Fatalf("returned (%v) while its sync was still running", r.err)
			default:
			}
			close(hold) // ...and now may finish
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.completed <= completedBefore {
				t.Fatalf("returned before any sync completed")
			}
		})
	}
}

// TestGroupCommit: 100 concurrent Appends, the first sync held until all
// of them have joined a batch, cost at most 10 syncs (in fact 2).
func TestGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(s *Store, i int, ids []string) error
	}{
		{"appends", func(s *Store, i int, _ []string) error {
			return s.Append(context.Background(), testEnvelope(i), testContent(i, 2048))
		}},
		{"changes", func(s *Store, i int, ids []string) error {
			return s.Change(context.Background(), ids[i], Change{Kind: ChangeDeferred, Until: time.Unix(1763700000, 0), Reason: "try later"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 100
			ts := newTestSyncer()
			s := openT(t, t.TempDir(), Options{Syncer: ts})
			defer s.Close()
			var idl []string
			for i := range n {
				idl = append(idl, mustAppend(t, s, testEnvelope(i), []byte("x")))
			}
			s.mu.Lock()
			base := s.submitted
			s.mu.Unlock()
			filesBefore, _ := ts.counts()

			hold := make(chan struct{})
			ts.setHold(hold, nil)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() { errs <- tc.op(s, i, idl) })
			}
			waitSubmitted(t, s, base+n)
			close(hold)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			files, _ := ts.counts()
			if syncs := files - filesBefore; syncs > 10 {
				t.Fatalf("%d concurrent operations cost %d syncs, want at most 10", n, syncs)
			} else {
				t.Logf("%d concurrent operations, %d syncs", n, syncs)
			}
			for _, m := range s.List() {
				if tc.name == "changes" && m.State != Deferred {
					t.Fatalf("%s: state %v after its acknowledged change", m.ID, m.State)
				}
			}
		})
	}
}

// TestCancelBeforeWrite: a context cancelled before the record is placed
// aborts the Append and leaves nothing in the log.
func TestCancelBeforeWrite(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	size := segSize(t, dir, 1)
	if err := s.Append(ctx, testEnvelope(0), []byte("x")); err != context.Canceled {
		t.Fatalf("Append = %v", err)
	}
	if got := segSize(t, dir, 1); got != size || len(s.List()) != 0 {
		t.Fatalf("log grew from %d to %d bytes", size, got)
	}
}

// TestDeliveredLingers: a "delivered" record starts no sync of its own. It
// waits for the next record that does (here a new message's) and is
// durable with it; alone it is synced once deliveredLinger has passed, or
// once lingerRecords of them wait together; and Close syncs it.
func TestDeliveredLingers(t *testing.T) {
	defer func(d time.Duration) { deliveredLinger = d }(deliveredLinger)
	delivered := Change{Kind: ChangeDelivered, Rcpts: []int{0}}
	// open sets the linger and opens a Store in dir ("": a new one) with n
	// messages; it returns their IDs and the syncs so far.
	open := func(t *testing.T, dir string, linger time.Duration, n int) (*Store, *testSyncer, []string, int) {
		deliveredLinger = linger
		if dir == "" {
			dir = t.TempDir()
		}
		ts := newTestSyncer()
		s := openT(t, dir, Options{Syncer: ts})
		var ids []string
		for i := range n {
			ids = append(ids, mustAppend(t, s, testEnvelope(i), []byte("x")))
		}
		before, _ := ts.counts()
		return s, ts, ids, before
	}
	// change starts the Change and waits until its record is placed.
	change := func(t *testing.T, s *Store, id string) chan error {
		s.mu.Lock()
		base := s.submitted
		s.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- s.Change(context.Background(), id, delivered) }()
		waitSubmitted(t, s, base+1)
		return done
	}
	// settled checks that the records cost at most syncs syncs since
	// before, and that each message now shows its delivery.
	settled := func(t *testing.T, s *Store, ts *testSyncer, before, syncs int, ids ...string) {
		t.Helper()
		if n, _ := ts.counts(); n-before < 1 || n-before > syncs {
			t.Fatalf("%d syncs, want 1 to %d", n-before, syncs)
		}
		for _, id := range ids {
			if m, ok := s.Get(id); !ok || !m.Done[0] || m.Done[1] {
				t.Fatalf("%s after its delivered record: %+v, %v", id, m, ok)
			}
		}
	}

	t.Run("rides on the next sync", func(t *testing.T) {
		s, ts, ids, before := open(t, "", time.Hour, 1)
		defer s.Close()
		done := change(t, s, ids[0])
		if n, _ := ts.counts(); n != before {
			t.Fatalf("the delivered record started a sync (%d, was %d)", n, before)
		}
		select {
		case err := <-done:
			t.Fatalf("Change returned (%v) before any sync covered it", err)
		default:
		}
		mustAppend(t, s, testEnvelope(2), []byte("y"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		settled(t, s, ts, before, 1, ids[0])
	})

	t.Run("alone, after the linger", func(t *testing.T) {
		s, ts, ids, before := open(t, "", time.Millisecond, 1)
		defer s.Close()
		if err := <-change(t, s, ids[0]); err != nil {
			t.Fatal(err)
		}
		settled(t, s, ts, before, 1, ids[0])
	})

	t.Run("many together", func(t *testing.T) {
		s, ts, ids, before := open(t, "", time.Hour, lingerRecords)
		defer s.Close()
		errs := make(chan error, len(ids))
		for _, id := range ids {
			go func() { errs <- s.Change(context.Background(), id, delivered) }()
		}
		for range ids {
			select {
			case err := <-errs:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%d delivered records waiting together were not synced", lingerRecords)
			}
		}
		settled(t, s, ts, before, 2, ids...)
	})

	t.Run("at Close", func(t *testing.T) {
		dir := t.TempDir()
		s, _, ids, _ := open(t, dir, time.Hour, 1)
		done := change(t, s, ids[0])
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		s, ts, _, before := open(t, dir, time.Hour, 0)
		defer s.Close()
		mustAppend(t, s, testEnvelope(3), []byte("z")) // settled wants a sync
		settled(t, s, ts, before, 1, ids[0])
	})
}
