package queue

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Golden mailq output shows local time; pin it.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// testSyncer stands in for fdatasync: it records, per file, the length
// covered by the last completed sync, counts calls, and can hold syncs
// until the test releases them or make them fail.
type testSyncer struct {
	mu        sync.Mutex
	fileSyncs int              // Sync calls on segment files
	completed int              // file Syncs that have returned
	dirSyncs  int              // Sync calls on the log directory
	synced    map[string]int64 // file -> length at its last completed sync
	syncGen   map[string]int   // file -> which Sync call (fileSyncs) set synced
	events    []string         // "file NAME SIZE" / "dir", in order
	hold      chan struct{}    // non-nil: file Syncs wait for it to be closed
	entered   chan string      // non-nil: told the file name when a file Sync starts
	fail      error
	failNext  int   // the next failNext file Syncs fail with failErr
	failErr   error // e.g. syscall.ENOSPC
}

func newTestSyncer() *testSyncer {
	return &testSyncer{synced: make(map[string]int64), syncGen: make(map[string]int)}
}

func (ts *testSyncer) Sync(f *os.File) error {
	ts.mu.Lock() // the size and the call's place in line, together
	fi, err := f.Stat()
	if err != nil {
		ts.mu.Unlock()
		return err
	}
	if fi.IsDir() {
		ts.dirSyncs++
		ts.events = append(ts.events, "dir")
		ts.mu.Unlock()
		return nil
	}
	ts.fileSyncs++
	gen := ts.fileSyncs
	hold, entered := ts.hold, ts.entered
	ts.mu.Unlock()
	if entered != nil {
		select {
		case entered <- f.Name():
		default: // the test has heard enough
		}
	}
	if hold != nil {
		<-hold
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.fail != nil {
		return ts.fail
	}
	if ts.failNext > 0 {
		ts.failNext--
		return ts.failErr
	}
	// Syncs of one file may overlap (the commit loop's, and the one that
	// ends a segment): the one that started last says what is durable, even
	// if one that started before it ends later.
	if gen > ts.syncGen[f.Name()] {
		ts.synced[f.Name()], ts.syncGen[f.Name()] = fi.Size(), gen
	}
	ts.events = append(ts.events, fmt.Sprintf("file %s %d", filepath.Base(f.Name()), fi.Size()))
	ts.completed++
	return nil
}

func (ts *testSyncer) counts() (files, completed int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.fileSyncs, ts.completed
}

// failSyncs makes the next n file Syncs fail with err.
func (ts *testSyncer) failSyncs(n int, err error) {
	ts.mu.Lock()
	ts.failNext, ts.failErr = n, err
	ts.mu.Unlock()
}

func (ts *testSyncer) setHold(hold chan struct{}, entered chan string) {
	ts.mu.Lock()
	ts.hold, ts.entered = hold, entered
	ts.mu.Unlock()
}

// logBuf collects Logf output.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logBuf) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(s string) bool { return strings.Contains(s, sub) })
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func openT(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Syncer == nil {
		opts.Syncer = newTestSyncer()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func testEnvelope(i int) *Envelope {
	return &Envelope{
		Sender: fmt.Sprintf("sender%d@example.net", i),
		Recipients: []Recipient{
			{Addr: fmt.Sprintf("rcpt%d@example.com", i), ORCPT: fmt.Sprintf("rfc822;rcpt%d@example.com", i), Notify: "SUCCESS,FAILURE"},
			{Addr: fmt.Sprintf("other%d@example.org", i)},
		},
		RET:        "HDRS",
		EnvID:      fmt.Sprintf("env%d", i),
		Arrival:    time.Unix(1763629200+int64(i), 123456789),
		ClientName: "mail.example.net", ClientAddr: "192.0.2.7", Helo: "mail.example.net", Proto: "ESMTP",
	}
}

// testContent is CRLF text of about size bytes, different for each i.
func testContent(i, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: message %d\r\n\r\n", i)
	for n := 0; b.Len() < size; n++ {
		fmt.Fprintf(&b, "line %d of message %d: the quick brown fox\r\n", n, i)
	}
	return []byte(b.String()[:max(size, 0)])
}

func mustAppend(t testing.TB, s *Store, env *Envelope, content []byte) string {
	t.Helper()
	if err := s.Append(context.Background(), env, content); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return env.ID
}

func mustChange(t testing.TB, s *Store, id string, c Change) {
	t.Helper()
	if err := s.Change(context.Background(), id, c); err != nil {
		t.Fatalf("Change(%s, %v): %v", id, c.Kind, err)
	}
}

// recLoc is where a record sits, found by scanning the log.
type recLoc struct {
	seg      uint32
	off, end int
	envLen   int
	typ      recType
}

// scanLog lists the records of every segment under dir, per ID in order.
func scanLog(t testing.TB, dir string) map[string][]recLoc {
	t.Helper()
	logDir := filepath.Join(dir, "log")
	seqs, err := listSegments(logDir)
	if err != nil {
		t.Fatal(err)
	}
	locs := make(map[string][]recLoc)
	for _, seq := range seqs {
		data, err := os.ReadFile(segPath(logDir, seq))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a running store's compaction deleted it since the listing
		}
		if err != nil {
			t.Fatal(err)
		}
		scanSegment(data, seq, false, func(r *rawRecord) {
			locs[r.id] = append(locs[r.id], recLoc{seg: seq, off: int(r.off), end: int(r.off) + recOverhead + len(r.body), envLen: int(r.envLen), typ: r.typ})
		}, func(int, int) {})
	}
	return locs
}

// editSegment rewrites segment seq of the queue in dir through f.
func editSegment(t testing.TB, dir string, seq uint32, f func([]byte) []byte) {
	t.Helper()
	path := segPath(filepath.Join(dir, "log"), seq)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func segSize(t testing.TB, dir string, seq uint32) int64 {
	t.Helper()
	fi, err := os.Stat(segPath(filepath.Join(dir, "log"), seq))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func ids(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}
