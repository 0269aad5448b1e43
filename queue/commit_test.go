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
