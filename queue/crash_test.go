package queue

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestCrashRecovery simulates power loss: after N acknowledged operations
// and some still in flight (written, sync not returned), every segment is
// cut back to the length its last completed sync covered. Reopening must
// recover every acknowledged message with identical content and state.
func TestCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		name        string
		writers, n  int
		segmentSize int64
	}{
		{"one append", 1, 1, 0},
		{"serial, small segments", 1, 40, 4096},
		{"concurrent", 8, 200, 0},
		{"concurrent, small segments", 8, 200, 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := newTestSyncer()
			opts := Options{Syncer: ts, SegmentSize: tc.segmentSize}
			s := openT(t, dir, opts)

			// N acknowledged appends, with changes to some of them.
			contents := make(map[string][]byte)
			var mu sync.Mutex
			var wg sync.WaitGroup
			per := (tc.n + tc.writers - 1) / tc.writers
			for w := range tc.writers {
				wg.Go(func() {
					for j := range per {
						i := w*per + j
						if i >= tc.n {
							return
						}
						c := testContent(i, 100+(i*397)%3000)
						env := testEnvelope(i)
						if err := s.Append(context.Background(), env, c); err != nil {
							t.Error(err)
							return
						}
						var ch *Change
						switch i % 5 {
						case 1:
							ch = &Change{Kind: ChangeHold}
						case 2:
							ch = &Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: time.Unix(1763700000, 0), Reason: "451 try again"}
						case 3:
							ch = &Change{Kind: ChangeDelivered, Rcpts: []int{0}}
						case 4:
							if i%10 == 4 {
								ch = &Change{Kind: ChangeDelete}
							}
						}
						if ch != nil {
							if err := s.Change(context.Background(), env.ID, *ch); err != nil {
								t.Error(err)
								return
							}
							if ch.Kind == ChangeDelete {
								continue
							}
						}
						id := env.ID
						mu.Lock()
						contents[id] = c
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			// The in-flight records below must fit the active segment: moving
			// to a new one syncs the old one first, and syncs are held then.
			// Start a fresh segment for them.
			seq, _ := s.activeSegment()
			s.seal(seq)
			fresh := testEnvelope(999)
			mustAppend(t, s, fresh, []byte("fresh segment\r\n"))
			contents[fresh.ID] = []byte("fresh segment\r\n")
			want := s.List()
			if len(want) != len(contents) {
				t.Fatalf("%d messages listed, %d expected", len(want), len(contents))
			}

			// Operations in flight at the crash: written, never synced.
			hold, entered := make(chan struct{}), make(chan string, 100)
			ts.setHold(hold, entered)
			s.mu.Lock()
			base := s.submitted
			s.mu.Unlock()
			inflight := make(chan error, 6)
			for i := range 5 {
				go func() {
					inflight <- s.Append(context.Background(), testEnvelope(1000+i), testContent(1000+i, 300))
				}()
			}
			go func() { inflight <- s.Change(context.Background(), want[0].ID, Change{Kind: ChangeDelete}) }()
			waitSubmitted(t, s, base+6)
			<-entered // a sync covering written but unacknowledged records is running
			ts.mu.Lock()
			synced := maps.Clone(ts.synced)
			ts.fail = errors.New("power lost")
			ts.mu.Unlock()
			// What the crash loses: every byte no completed sync covered.
			logDir := filepath.Join(dir, "log")
			seqs, err := listSegments(logDir)
			if err != nil {
				t.Fatal(err)
			}
			var lost int64
			for _, seq := range seqs {
				lost += segSize(t, dir, seq) - synced[segPath(logDir, seq)]
			}
			if lost <= 0 {
				t.Fatal("the simulated crash loses no written bytes; the test proves nothing")
			}
			close(hold)
			for range 6 {
				if err := <-inflight; err == nil {
					t.Fatal("an operation in flight at the crash was acknowledged")
				}
			}
			s.Close()
			seqs, err = listSegments(logDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, seq := range seqs {
				path := segPath(logDir, seq)
				if err := os.Truncate(path, synced[path]); err != nil {
					t.Fatal(err)
				}
			}

			s = openT(t, dir, Options{SegmentSize: tc.segmentSize})
			defer s.Close()
			got := s.List()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("recovered %d messages, want %d:\n got %v\nwant %v", len(got), len(want), ids(got), ids(want))
			}
			for id, c := range contents {
				if rc, err := s.Content(id); err != nil || !bytes.Equal(rc, c) {
					t.Fatalf("Content(%s) after crash: %v", id, err)
				}
			}
			// And the queue goes on.
			id := mustAppend(t, s, testEnvelope(5000), []byte("after the crash\r\n"))
			if _, ok := s.Get(id); !ok {
				t.Fatal("append after recovery not found")
			}
		})
	}
}
