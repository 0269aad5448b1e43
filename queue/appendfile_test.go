package queue

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// contentFile writes content to a file the way the gateway spools it
// (written sequentially, the file offset left at its end).
func contentFile(t testing.TB, content []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "spool-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestAppendFile: messages appended from files, in batches mixed with
// in-memory appends and across segment boundaries, read back equal and
// verified, before and after a reopen (recovery checks every checksum);
// the held variant lands in the hold queue.
func TestAppendFile(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentSize: 256 << 10})
	sizes := []int{0, 1, 5000, 70000, 300000, 1 << 20}
	type sent struct {
		id      string
		content []byte
		state   State
	}
	var mu sync.Mutex
	var all []sent
	var wg sync.WaitGroup
	for i, size := range sizes {
		for k, kind := range []string{"memory", "file", "held file"} {
			n := i*3 + k
			content := testContent(n, size)
			var f *os.File
			if kind != "memory" {
				f = contentFile(t, content)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				env := testEnvelope(n)
				var err error
				state := Active
				switch kind {
				case "memory":
					err = s.Append(context.Background(), env, content)
				case "file":
					err = s.AppendFile(context.Background(), env, f, int64(len(content)))
				default:
					state = Hold
					err = s.AppendFileHeld(context.Background(), env, f, int64(len(content)))
				}
				if err != nil {
					t.Errorf("%s append of %d bytes: %v", kind, size, err)
					return
				}
				mu.Lock()
				all = append(all, sent{env.ID, content, state})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	check := func(s *Store, when string) {
		t.Helper()
		for _, m := range all {
			got, ok := s.Get(m.id)
			if !ok || got.State != m.state || got.Size != int64(len(m.content)) {
				t.Errorf("%s: Get(%s) = %v state %v size %d; want state %v size %d", when, m.id, ok, got.State, got.Size, m.state, len(m.content))
			}
			c, err := s.Content(m.id)
			if err != nil || !bytes.Equal(c, m.content) {
				t.Errorf("%s: Content(%s) = %d bytes, %v; want %d bytes", when, m.id, len(c), err, len(m.content))
			}
		}
	}
	check(s, "appended")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	log := &logBuf{}
	s = openT(t, dir, Options{SegmentSize: 256 << 10, Logf: log.logf})
	defer s.Close()
	check(s, "reopened")
	if len(log.lines) > 0 {
		t.Errorf("recovery complained about a clean log:\n%s", log)
	}
}

// TestAppendFileTornTail: a crash while a file's content was being
// copied into the log leaves a torn record, which recovery names and
// quarantines as for any message record whose header survived; what was
// acknowledged before stays.
func TestAppendFileTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	first := mustAppend(t, s, testEnvelope(1), testContent(1, 2000))
	big := testContent(2, 500000)
	env := testEnvelope(2)
	if err := s.AppendFile(context.Background(), env, contentFile(t, big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	loc := scanLog(t, dir)[env.ID][0]
	// Cut the segment in the middle of the copied content.
	if err := os.Truncate(segPath(filepath.Join(dir, "log"), loc.seg), int64(loc.off+loc.envLen+recHeaderSize+len(big)/2)); err != nil {
		t.Fatal(err)
	}
	log := &logBuf{}
	s = openT(t, dir, Options{Logf: log.logf})
	defer s.Close()
	if m, ok := s.Get(env.ID); !ok || m.State != Corrupt {
		t.Errorf("the torn message %s: %+v, %v; want it in the corrupt queue", env.ID, m.State, ok)
	}
	if c, err := s.Content(first); err != nil || !bytes.Equal(c, testContent(1, 2000)) {
		t.Errorf("the message before the torn one: %v", err)
	}
	if !log.has(env.ID + ": message record cut short") {
		t.Errorf("recovery did not name the torn message:\n%s", log)
	}
}

// TestAppendFileShort: a file shorter than its claimed size is refused
// before anything is written, and the store goes on.
func TestAppendFileShort(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	content := testContent(1, 3000)
	env := testEnvelope(1)
	if err := s.AppendFile(context.Background(), env, contentFile(t, content), int64(len(content))+10); err == nil {
		t.Fatal("AppendFile of a short file succeeded")
	}
	if _, ok := s.Get(env.ID); ok {
		t.Error("the refused message is queued")
	}
	mustAppend(t, s, testEnvelope(2), testContent(2, 100))
}

// TestCopyByRead: the fallback where copy_file_range does not work copies
// the same bytes to the same place.
func TestCopyByRead(t *testing.T) {
	content := testContent(1, 3*copyChunk+17)
	src := contentFile(t, content)
	dst := contentFile(t, bytes.Repeat([]byte{'-'}, 10))
	if err := copyByRead(dst, 5, src, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("-----"), content...); !bytes.Equal(got, want) {
		t.Errorf("copied %d bytes, want %d", len(got), len(want))
	}
}
