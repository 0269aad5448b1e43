package queue

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendGetContentReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	var want []Message
	for i := range 5 {
		env := testEnvelope(i)
		content := testContent(i, 300+i*100)
		id := mustAppend(t, s, env, content)
		got, ok := s.Get(id)
		if !ok {
			t.Fatalf("Get(%s) after Append: not found", id)
		}
		if got.State != Active || got.Size != int64(len(content)) || len(got.Done) != 2 || got.Done[0] {
			t.Errorf("Get(%s) = state %v size %d done %v", id, got.State, got.Size, got.Done)
		}
		if !reflect.DeepEqual(got.Envelope.Recipients, env.Recipients) || got.Sender != env.Sender ||
			!got.Arrival.Equal(env.Arrival) || got.EnvID != env.EnvID || got.Proto != "ESMTP" {
			t.Errorf("Get(%s) envelope = %+v, want %+v", id, got.Envelope, *env)
		}
		c, err := s.Content(id)
		if err != nil || !bytes.Equal(c, content) {
			t.Fatalf("Content(%s) = %d bytes, %v; want %d bytes", id, len(c), err, len(content))
		}
		want = append(want, got)
	}
	if got := s.List(); !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %v, want %v", ids(got), ids(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, Options{})
	defer s.Close()
	if got := s.List(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen List = %+v\nwant %+v", got, want)
	}
	for i, m := range want {
		c, err := s.Content(m.ID)
		if err != nil || !bytes.Equal(c, testContent(i, 300+i*100)) {
			t.Fatalf("after reopen Content(%s): %v", m.ID, err)
		}
	}
}

func TestAppendFillsIDAndArrival(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	env := &Envelope{Recipients: []Recipient{{Addr: "a@example.com"}}}
	before := time.Now()
	mustAppend(t, s, env, []byte("x\r\n"))
	if !validID(env.ID) || env.Arrival.Before(before) {
		t.Fatalf("ID %q, Arrival %v", env.ID, env.Arrival)
	}
	m, _ := s.Get(env.ID)
	if m.Sender != "" || !m.Arrival.Equal(env.Arrival) {
		t.Fatalf("Get = %+v", m)
	}
}

func TestAppendErrors(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	id := mustAppend(t, s, testEnvelope(1), []byte("x"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		env  *Envelope
		want error
	}{
		{"duplicate ID", context.Background(), &Envelope{ID: id, Recipients: []Recipient{{Addr: "a@b"}}}, ErrExists},
		{"canceled context", canceled, testEnvelope(2), context.Canceled},
		{"no recipients", context.Background(), &Envelope{ID: "ABCDEF1234"}, nil},
		{"bad ID", context.Background(), &Envelope{ID: "no/slash", Recipients: []Recipient{{Addr: "a@b"}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Append(tc.ctx, tc.env, []byte("x"))
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Append = %v, want %v", err, tc.want)
			}
		})
	}
	if n := len(s.List()); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
}

// TestChanges checks each change kind, live and after a reopen (the same
// apply code must rebuild the same state).
func TestChanges(t *testing.T) {
	until := time.Unix(1763700000, 0)
	for _, tc := range []struct {
		name    string
		changes []Change
		gone    bool
		check   func(t *testing.T, m Message)
	}{
		{"delivered one", []Change{{Kind: ChangeDelivered, Rcpts: []int{1}}}, false, func(t *testing.T, m Message) {
			if !reflect.DeepEqual(m.Done, []bool{false, true}) || m.State != Active {
				t.Errorf("Done %v State %v", m.Done, m.State)
			}
		}},
		{"delivered all", []Change{{Kind: ChangeDelivered, Rcpts: []int{0}}, {Kind: ChangeDelivered, Rcpts: []int{1}}}, true, nil},
		{"delivered nil means all", []Change{{Kind: ChangeDelivered}}, true, nil},
		{"bounced and delivered", []Change{{Kind: ChangeBounced, Rcpts: []int{0}, Reason: "550 no"}, {Kind: ChangeDelivered, Rcpts: []int{1}}}, true, nil},
		{"bounced one", []Change{{Kind: ChangeBounced, Rcpts: []int{0}, Reason: "550 5.1.1 user unknown"}}, false, func(t *testing.T, m Message) {
			if !m.Done[0] || m.Reasons[0] != "550 5.1.1 user unknown" {
				t.Errorf("Done %v Reasons %q", m.Done, m.Reasons)
			}
		}},
		{"deferred", []Change{{Kind: ChangeDeferred, Rcpts: []int{0}, Until: until, Reason: "connect refused"}}, false, func(t *testing.T, m Message) {
			if m.State != Deferred || !m.NextTry.Equal(until) || !reflect.DeepEqual(m.Reasons, []string{"connect refused", ""}) {
				t.Errorf("State %v NextTry %v Reasons %q", m.State, m.NextTry, m.Reasons)
			}
		}},
		{"hold", []Change{{Kind: ChangeHold}}, false, func(t *testing.T, m Message) {
			if m.State != Hold {
				t.Errorf("State %v", m.State)
			}
		}},
		{"deferred while held stays held", []Change{{Kind: ChangeHold}, {Kind: ChangeDeferred, Until: until, Reason: "x"}}, false, func(t *testing.T, m Message) {
			if m.State != Hold || !m.NextTry.Equal(until) {
				t.Errorf("State %v NextTry %v", m.State, m.NextTry)
			}
		}},
		{"release goes to deferred", []Change{{Kind: ChangeHold}, {Kind: ChangeRelease}}, false, func(t *testing.T, m Message) {
			if m.State != Deferred {
				t.Errorf("State %v", m.State)
			}
		}},
		{"release without hold", []Change{{Kind: ChangeRelease}}, false, func(t *testing.T, m Message) {
			if m.State != Active {
				t.Errorf("State %v", m.State)
			}
		}},
		{"expire", []Change{{Kind: ChangeExpire}}, false, func(t *testing.T, m Message) {
			if !m.Expired {
				t.Errorf("Expired false")
			}
		}},
		{"delete", []Change{{Kind: ChangeHold}, {Kind: ChangeDelete}}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{})
			id := mustAppend(t, s, testEnvelope(0), []byte("body\r\n"))
			for _, c := range tc.changes {
				mustChange(t, s, id, c)
			}
			check := func(s *Store) {
				m, ok := s.Get(id)
				if ok == tc.gone {
					t.Fatalf("Get found=%v, want %v", ok, !tc.gone)
				}
				if ok {
					tc.check(t, m)
				}
				if tc.gone {
					if _, err := s.Content(id); !errors.Is(err, ErrNotFound) {
						t.Errorf("Content of a removed message: %v", err)
					}
				}
			}
			check(s)
			s.Close()
			s = openT(t, dir, Options{})
			defer s.Close()
			check(s)
		})
	}
}

func TestChangeErrors(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	id := mustAppend(t, s, testEnvelope(0), []byte("x"))
	for _, tc := range []struct {
		name string
		id   string
		c    Change
		want error
	}{
		{"unknown ID", "ABCDEF0000", Change{Kind: ChangeHold}, ErrNotFound},
		{"invalid ID", "../x", Change{Kind: ChangeHold}, ErrNotFound},
		{"recipient out of range", id, Change{Kind: ChangeDelivered, Rcpts: []int{2}}, nil},
		{"negative recipient", id, Change{Kind: ChangeDelivered, Rcpts: []int{-1}}, nil},
		{"unknown kind", id, Change{Kind: 99}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Change(context.Background(), tc.id, tc.c)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Change = %v, want %v", err, tc.want)
			}
		})
	}
	mustChange(t, s, id, Change{Kind: ChangeDelete})
	if err := s.Change(context.Background(), id, Change{Kind: ChangeHold}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Change after Delete = %v", err)
	}
}

func TestOpenLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	_, err := Open(dir, Options{Syncer: newTestSyncer()})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, "lock")) {
		t.Fatalf("second Open = %v, want ErrLocked naming the lock file", err)
	}
	s.Close()
	s = openT(t, dir, Options{})
	s.Close()
}

func TestClose(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() { errs <- s.Append(context.Background(), testEnvelope(i), testContent(i, 200)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), testEnvelope(99), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if _, err := s.Content(s.List()[0].ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Content after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestSegmentRoll checks that records spill into new segments, each made
// durable (header sync, directory sync) before records are written to it.
func TestSegmentRoll(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts, SegmentSize: 4096})
	var want [][]byte
	var idl []string
	for i := range 30 {
		c := testContent(i, 700)
		if i == 10 {
			c = testContent(i, 9000) // bigger than a segment: gets one alone
		}
		want = append(want, c)
		idl = append(idl, mustAppend(t, s, testEnvelope(i), c))
	}
	s.Close()
	seqs, _ := listSegments(filepath.Join(dir, "log"))
	if len(seqs) < 5 {
		t.Fatalf("%d segments, want several", len(seqs))
	}
	for _, seq := range seqs {
		if size := segSize(t, dir, seq); size > 4096 && size < 9000 {
			t.Errorf("segment %d has %d bytes, over SegmentSize without an oversized record", seq, size)
		}
	}
	// Every segment's first sync covers only its header and is followed by
	// a directory sync.
	for i, ev := range ts.events {
		if strings.HasSuffix(ev, " 32") && (i+1 >= len(ts.events) || ts.events[i+1] != "dir") {
			t.Errorf("segment header sync %q not followed by a directory sync: %q", ev, ts.events)
		}
	}
	if ts.dirSyncs != len(seqs) {
		t.Errorf("%d directory syncs for %d segments", ts.dirSyncs, len(seqs))
	}
	s = openT(t, dir, Options{SegmentSize: 4096})
	defer s.Close()
	for i, id := range idl {
		if c, err := s.Content(id); err != nil || !bytes.Equal(c, want[i]) {
			t.Fatalf("Content(%s) after reopen: %v", id, err)
		}
	}
}

func TestSyncFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts})
	id0 := mustAppend(t, s, testEnvelope(0), []byte("ok"))
	ts.mu.Lock()
	ts.fail = errors.New("EIO")
	ts.mu.Unlock()
	if err := s.Append(context.Background(), testEnvelope(1), []byte("x")); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("Append with failing sync = %v", err)
	}
	ts.mu.Lock()
	ts.fail = nil
	ts.mu.Unlock()
	if err := s.Append(context.Background(), testEnvelope(2), []byte("x")); err == nil {
		t.Fatal("Append after a failed sync succeeded; want the store to refuse until reopened")
	}
	s.Close()
	s = openT(t, dir, Options{})
	defer s.Close()
	mustAppend(t, s, testEnvelope(3), []byte("again"))
	if c, err := s.Content(id0); err != nil || string(c) != "ok" {
		t.Fatalf("acknowledged message after reopen: %q, %v", c, err)
	}
}

func TestDefaultSyncer(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{}) // real fdatasync
	if err != nil {
		t.Fatal(err)
	}
	id := mustAppend(t, s, testEnvelope(0), []byte("durable\r\n"))
	mustChange(t, s, id, Change{Kind: ChangeHold})
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, ok := s.Get(id); !ok || m.State != Hold {
		t.Fatalf("Get after reopen = %v, %v", m.State, ok)
	}
	if _, err := os.Stat(filepath.Join(dir, "lock")); err != nil {
		t.Fatal(err)
	}
}

// TestContentRewind: a transport can read the content again from its
// start (to send it to the next MX host), checksum verified each time, for
// small records (read whole) and large ones (streamed).
func TestContentRewind(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	for _, size := range []int{5000, 200000} {
		content := testContent(3, size)
		id := mustAppend(t, s, oneRcpt("a@example.net", "b@example.com", time.Time{}), content)
		rc, err := s.openContent(id)
		if err != nil {
			t.Fatal(err)
		}
		sk, ok := rc.(io.Seeker)
		if !ok {
			t.Fatalf("%d bytes: content reader is not an io.Seeker", size)
		}
		for i := 0; i < 2; i++ {
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("%d bytes, read %d: %v, %d bytes", size, i, err, len(got))
			}
			if _, err := sk.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestContentDamaged: a flipped content byte is never handed to a
// transport: small records fail at open, large ones at the end of reading.
func TestContentDamaged(t *testing.T) {
	for _, size := range []int{5000, 200000} {
		dir := t.TempDir()
		s := openQ(t, dir, Options{})
		content := testContent(4, size)
		id := mustAppend(t, s, oneRcpt("a@example.net", "b@example.com", time.Time{}), content)
		seg := filepath.Join(dir, "log", "000000000001.seg")
		raw, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(raw, content[100:140])
		if i < 0 {
			t.Fatal("content not found in the segment")
		}
		f, err := os.OpenFile(seg, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{raw[i] ^ 1}, int64(i))
		f.Close()
		rc, err := s.openContent(id)
		if err == nil {
			_, err = io.ReadAll(rc)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d bytes: damaged content read with error %v, want ErrCorrupt", size, err)
		}
	}
}
