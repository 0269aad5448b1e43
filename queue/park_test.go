package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// onDisk counts the messages parked on disk and those the index holds in
// memory.
func onDisk(s *Store) (parkedN, inMemory int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idx.parkedCount(), s.idx.m.len()
}

// parkFiles lists the state files of parked messages in dir's log.
func parkFiles(t *testing.T, dir string) []string {
	t.Helper()
	return logFiles(t, dir, parkSuffix)
}

// runParking runs a queue manager on s at clock's time, with a transport
// that delivers, and returns the transport.
func runParking(t *testing.T, s *Store, clock *fakeClock) (*fakeTransport, func()) {
	t.Helper()
	tr := newFakeTransport(nil)
	stop := runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: DefaultQueueLifetime,
	})
	looping(t, clock)
	return tr, stop
}

// looping waits until a manager on clock has set its first alarm: it
// times its queue runs from then, so a clock moved before would go
// unseen.
func looping(t *testing.T, clock *fakeClock) {
	t.Helper()
	waitFor(t, "the manager's first alarm", func() bool {
		clock.mu.Lock()
		defer clock.mu.Unlock()
		return len(clock.alarms) > 0
	})
}

const parkedReason = "connect to mx.a.example[192.0.2.1]:25: Connection refused"

// parkedBacklog queues n messages, half to a.example and half to
// b.example, each deferred until 2 hours after the time of the clock it
// returns, past the horizon of a queue manager started then.
func parkedBacklog(t *testing.T, s *Store, n int) (*fakeClock, time.Time, []string) {
	t.Helper()
	clock := newFakeClock()
	t0 := clock.Now()
	var ids []string
	for i := range n {
		dom := []string{"a.example", "b.example"}[i%2]
		id := mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("u%d@%s", i, dom), t0.Add(-time.Hour)), testContent(i, 300))
		mustChange(t, s, id, Change{Kind: ChangeDeferred, Until: t0.Add(2 * time.Hour), Reason: parkedReason})
		ids = append(ids, id)
	}
	return clock, t0, ids
}

// TestParkedFoundByID: a queue manager's start parks a deferred backlog on
// disk, and everything that finds a message by ID still finds it there:
// Get, Content, listings, counts, postsuper -h/-H/-d/-r, ETRN, a second
// Append of its ID; NewID never hands one out.
func TestParkedFoundByID(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{SegmentSize: 4096})
	const n = 40
	clock, t0, ids := parkedBacklog(t, s, n)
	before := s.List()
	tr, _ := runParking(t, s, clock)
	if p, mem := onDisk(s); p != n || mem != 0 {
		t.Fatalf("after the manager's start: %d parked on disk, %d in memory; want %d and 0", p, mem, n)
	}
	if len(parkFiles(t, dir)) < 2 {
		t.Fatalf("state files %v: want one per segment", parkFiles(t, dir))
	}
	if got := s.List(); !reflect.DeepEqual(got, before) {
		t.Fatalf("List of the parked backlog differs:\n%+v\nwant\n%+v", got, before)
	}
	m, ok := s.Get(ids[0])
	if !ok || m.State != Deferred || m.Reasons[0] != parkedReason || !m.NextTry.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Get of a parked message: %v %+v", ok, m)
	}
	if c, err := s.Content(ids[1]); err != nil || string(c) != string(testContent(1, 300)) {
		t.Fatalf("Content of a parked message: %q, %v", c, err)
	}
	if msgs, _ := s.Counts(); msgs[Deferred] != n {
		t.Fatalf("Counts: %v", msgs)
	}
	if p, _ := onDisk(s); p != n {
		t.Fatalf("reading brought messages back into memory: %d parked", p)
	}
	err := s.Append(context.Background(), &Envelope{ID: ids[5], Recipients: []Recipient{{Addr: "x@example.com"}}}, []byte("x\r\n"))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Append with a parked message's ID: %v", err)
	}
	parkedIDs := make(map[string]bool)
	for _, id := range ids {
		parkedIDs[id] = true
	}
	for range 2000 {
		if id := s.NewID(); parkedIDs[id] {
			t.Fatalf("NewID returned %s, a parked message's ID", id)
		}
	}

	admin := func(op, id string) {
		t.Helper()
		if n, errs := s.Admin(context.Background(), op, []string{id}); n != 1 || errs != nil {
			t.Fatalf("%s %s: %d, %v", op, id, n, errs)
		}
	}
	admin("hold", ids[2])
	if m, _ := s.Get(ids[2]); m.State != Hold {
		t.Fatalf("held parked message is %v", m.State)
	}
	admin("release", ids[2])
	if m, _ := s.Get(ids[2]); m.State != Deferred || m.Reasons[0] != parkedReason {
		t.Fatalf("released message: %+v", m)
	}
	admin("delete", ids[3])
	if _, ok := s.Get(ids[3]); ok {
		t.Fatal("deleted parked message still queued")
	}
	admin("requeue", ids[4])
	waitFor(t, "the requeued message", gone(s, ids[4]))
	if tr.nCalls() != 1 {
		t.Fatalf("%d deliveries after requeueing one message", tr.nCalls())
	}

	// ETRN a.example: the a.example half (even indexes) goes, whether
	// parked on disk or brought back by the commands above.
	s.FlushDomain("a.example")
	for i, id := range ids {
		if i%2 == 0 && i != 4 {
			waitFor(t, "the ETRN'd message "+id, gone(s, id))
		}
	}
	idle(t, s)
	left := 0
	for i, id := range ids {
		_, ok := s.Get(id)
		if want := i%2 == 1 && i != 3; ok != want {
			t.Errorf("message %d (%s): queued %v, want %v", i, id, ok, want)
		}
		if ok {
			left++
		}
	}
	// The next queue run parks on disk again what the commands brought
	// back.
	clock.Advance(DefaultQueueRunDelay)
	waitFor(t, "the queue run to park the rest", func() bool { p, mem := onDisk(s); return p == left && mem == 0 })
	if got := len(s.List()); got != left {
		t.Fatalf("List shows %d messages, want %d", got, left)
	}
}

// TestParkedExpiry: a message parked on disk comes back when its next
// try nears, and past maximal_queue_lifetime it is returned to the
// sender.
func TestParkedExpiry(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	t0 := clock.Now()
	id := mustAppend(t, s, oneRcpt("s@example.net", "r@example.org", t0.Add(-3*time.Hour)), []byte("Subject: x\r\n\r\nbody\r\n"))
	mustChange(t, s, id, Change{Kind: ChangeDeferred, Until: t0.Add(90 * time.Minute), Reason: parkedReason})
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if rcpt == "r@example.org" {
			return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: parkedReason, SiteFail: true}
		}
		return sentResult()
	})
	var bouncer fakeBouncer
	var log mailLog
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Bouncer: &bouncer, Log: &log,
		Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: 4 * time.Hour, BounceQueueLifetime: 4 * time.Hour,
	})
	looping(t, clock)
	if p, mem := onDisk(s); p != 1 || mem != 0 {
		t.Fatalf("%d parked on disk, %d in memory; want 1 and 0", p, mem)
	}
	for clock.Now().Before(t0.Add(90 * time.Minute)) {
		clock.Advance(DefaultQueueRunDelay)
		if tr.nCalls() != 0 {
			t.Fatalf("tried at %v, before its next try", clock.Now().Sub(t0))
		}
	}
	waitFor(t, "the expired message's removal", gone(s, id))
	line := fmt.Sprintf("qmgr: %s: from=<s@example.net>, status=expired, returned to sender", id)
	if len(log.find(line)) != 1 {
		t.Fatalf("no %q in\n%s", line, log.String())
	}
	if ns := bouncer.list(); len(ns) != 1 || len(ns[0].Failed) != 1 || ns[0].Failed[0].Reason != parkedReason {
		t.Fatalf("notices %+v", ns)
	}
}

// TestParkedStateFileNotUsed: a state file found damaged, stale (not the
// one last written) or missing is not used: its messages' state is
// rebuilt from the log, exactly.
func TestParkedStateFileNotUsed(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, s *Store, path string)
	}{
		{"damaged", func(t *testing.T, s *Store, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x20
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"stale", func(t *testing.T, s *Store, path string) {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, g := range s.idx.parked {
				if parkPath(s.logDir, g.seq) != path {
					continue
				}
				es := s.parkedEntries(g)
				es[0].nextTry = 1 // an older state
				if err := os.WriteFile(path, encodePark(g.seq, g.gen-1, es), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"missing", func(t *testing.T, s *Store, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs logBuf
			s := openQ(t, dir, Options{SegmentSize: 4096, Logf: logs.logf})
			const n = 30
			clock, t0, ids := parkedBacklog(t, s, n)
			before := s.List()
			tr, _ := runParking(t, s, clock)
			if p, _ := onDisk(s); p != n {
				t.Fatalf("%d parked on disk, want %d", p, n)
			}
			for _, path := range parkFiles(t, dir) {
				tc.edit(t, s, path)
			}
			if got := s.List(); !reflect.DeepEqual(got, before) {
				t.Fatalf("List with the state files %s differs:\n%+v\nwant\n%+v", tc.name, got, before)
			}
			if !logs.has("not used") || !logs.has("rebuilding its") {
				t.Fatalf("no line about the state file in\n%s", logs.String())
			}
			if n, errs := s.Admin(context.Background(), "hold", ids[:1]); n != 1 || errs != nil {
				t.Fatalf("hold: %d %v", n, errs)
			}
			// Each is still tried at its next try, once.
			clock.Set(t0.Add(2 * time.Hour))
			for _, id := range ids[1:] {
				waitFor(t, "delivery of "+id, gone(s, id))
			}
			if got := tr.nCalls(); got != n-1 {
				t.Fatalf("%d deliveries, want %d", got, n-1)
			}
			if m, ok := s.Get(ids[0]); !ok || m.State != Hold {
				t.Fatalf("held message: %v %v", ok, m.State)
			}
		})
	}
}

// TestParkedRestart: a daemon killed with a backlog parked on disk, a
// held message among it, its state files in any state (whole, torn, a
// temporary one left), restarts with the state the log gives, exactly:
// Open deletes the state files, the next queue manager parks the backlog
// again, and each message is tried at its next try, once.
func TestParkedRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, path string)
	}{
		{"whole", func(*testing.T, string) {}},
		{"torn", func(t *testing.T, path string) {
			if err := os.Truncate(path, 40); err != nil {
				t.Fatal(err)
			}
		}},
		{"temporary left", func(t *testing.T, path string) {
			if err := os.Rename(path, strings.TrimSuffix(path, parkSuffix)+parkTmpSuffix); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{SegmentSize: 4096})
			const n = 30
			clock, t0, ids := parkedBacklog(t, s, n)
			mustChange(t, s, ids[1], Change{Kind: ChangeHold})
			before := s.List()
			_, stop := runParking(t, s, clock)
			if p, mem := onDisk(s); p != n || mem != 0 {
				t.Fatalf("%d parked on disk, %d in memory; want %d and 0", p, mem, n)
			}
			stop()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			files := parkFiles(t, dir)
			if len(files) == 0 {
				t.Fatal("no state files to restart with")
			}
			for _, path := range files {
				tc.edit(t, path)
			}

			s = openQ(t, dir, Options{SegmentSize: 4096})
			clock = newFakeClock() // without the stopped manager's alarm
			if left, _ := filepath.Glob(filepath.Join(dir, "log", "*.park*")); len(left) != 0 {
				t.Fatalf("state files left after Open: %v", left)
			}
			if got := s.List(); !reflect.DeepEqual(got, before) {
				t.Fatalf("List after the restart differs:\n%+v\nwant\n%+v", got, before)
			}
			tr, _ := runParking(t, s, clock)
			if p, mem := onDisk(s); p != n || mem != 0 {
				t.Fatalf("after the restart: %d parked on disk, %d in memory; want %d and 0", p, mem, n)
			}
			clock.Advance(time.Hour)
			if tr.nCalls() != 0 {
				t.Fatal("tried before its next try")
			}
			clock.Set(t0.Add(2 * time.Hour))
			for i, id := range ids {
				if i != 1 {
					waitFor(t, "delivery of "+id, gone(s, id))
				}
			}
			if got := tr.nCalls(); got != n-1 {
				t.Fatalf("%d deliveries, want %d", got, n-1)
			}
		})
	}
}

// TestParkedCompaction: messages parked on disk in old segments are
// copied forward like the others when the messages around them are
// delivered, the old segments and their state files go, and each parked
// message keeps its state and content, is parked again, and is tried at
// its next try, once; a reopen finds the same.
func TestParkedCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{SegmentSize: 4096})
	const n = 6
	clock, t0, ids := parkedBacklog(t, s, n)
	before := s.List()
	firstSeg := scanLog(t, dir)[ids[0]][0].seg
	var others []string
	for i := range 60 {
		others = append(others, mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("v%d@c.example", i), t0), testContent(i, 500)))
	}
	peak := s.SegmentCount()
	tr, stop := runParking(t, s, clock)
	for _, id := range others {
		waitFor(t, "the other messages", gone(s, id))
	}
	waitFor(t, "old segments to be deleted", func() bool { return s.SegmentCount() <= compactMinSegments })
	if peak < 2*compactMinSegments {
		t.Fatalf("the log peaked at %d segments; the test proves little", peak)
	}
	if _, err := os.Stat(parkPath(filepath.Join(dir, "log"), firstSeg)); !os.IsNotExist(err) {
		t.Errorf("the first segment's state file is still there: %v", err)
	}
	// Copies are made in parallel: the log order of the messages may
	// change.
	byID := func(msgs []Message) []Message {
		slices.SortFunc(msgs, func(a, b Message) int { return strings.Compare(a.ID, b.ID) })
		return msgs
	}
	before = byID(before)
	if got := byID(s.List()); !reflect.DeepEqual(got, before) {
		t.Fatalf("List after compaction differs:\n%+v\nwant\n%+v", got, before)
	}
	for i, id := range ids {
		if recs := scanLog(t, dir)[id]; len(recs) == 0 || recs[0].typ != recState {
			t.Errorf("%s was not copied forward: %+v", id, recs)
		}
		if c, err := s.Content(id); err != nil || string(c) != string(testContent(i, 300)) {
			t.Fatalf("Content of %s after compaction: %v", id, err)
		}
	}
	// A queue run parks the copies again, unless a compaction is still
	// copying from their segments: then the next one does.
	for runs := 1; ; runs++ {
		clock.Advance(DefaultQueueRunDelay)
		deadline := time.Now().Add(200 * time.Millisecond)
		for p, _ := onDisk(s); p != n && time.Now().Before(deadline); p, _ = onDisk(s) {
			time.Sleep(time.Millisecond)
		}
		if p, _ := onDisk(s); p == n {
			break
		}
		if runs == 10 { // 50 minutes on: still far from their next try
			t.Fatalf("after %d queue runs, %d of the %d copies are parked", runs, func() int { p, _ := onDisk(s); return p }(), n)
		}
	}
	stop()
	s.Close()

	s = openQ(t, dir, Options{SegmentSize: 4096})
	if got := byID(s.List()); !reflect.DeepEqual(got, before) {
		t.Fatalf("List after reopen differs:\n%+v\nwant\n%+v", got, before)
	}
	clock = newFakeClock()
	clock.Set(t0.Add(time.Hour))
	tr2, _ := runParking(t, s, clock)
	clock.Set(t0.Add(2 * time.Hour))
	for _, id := range ids {
		waitFor(t, "delivery of "+id, gone(s, id))
	}
	if got := tr.nCalls() + tr2.nCalls(); got != len(others)+n {
		t.Fatalf("%d deliveries, want %d", got, len(others)+n)
	}
}

// TestParkedJoin: a message deferred while others of its segment are
// parked on disk joins them in their state file at the next queue run,
// and each is still tried at its own next try.
func TestParkedJoin(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock, t0, ids := parkedBacklog(t, s, 3)
	tr, _ := runParking(t, s, clock)
	tr.setFn(func(d *Delivery, rcpt string) Result {
		return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: parkedReason}
	})
	// Three hours old: deferred for maximal_backoff_time (4000 s), past
	// the horizon.
	late := mustAppend(t, s, oneRcpt("s@example.net", "late@a.example", t0.Add(-3*time.Hour)), []byte("x\r\n"))
	waitFor(t, "the deferral", func() bool { m, _ := s.Get(late); return m.State == Deferred })
	idle(t, s)
	if p, mem := onDisk(s); p != 3 || mem != 1 {
		t.Fatalf("before the queue run: %d parked on disk, %d in memory; want 3 and 1", p, mem)
	}
	clock.Advance(DefaultQueueRunDelay)
	waitFor(t, "the queue run", func() bool { p, mem := onDisk(s); return p == 4 && mem == 0 })
	s.mu.Lock()
	files := len(s.idx.parked)
	s.mu.Unlock()
	if files != 1 {
		t.Fatalf("%d state files for one segment", files)
	}
	m, ok := s.Get(late)
	if want := t0.Add(DefaultMaximalBackoff); !ok || m.State != Deferred || !m.NextTry.Equal(want) {
		t.Fatalf("joined message: %v %+v, want next try %v", ok, m, want)
	}
	tr.setFn(nil)
	calls := tr.nCalls()
	clock.Set(t0.Add(DefaultMaximalBackoff + time.Second))
	waitFor(t, "the late message", gone(s, late))
	idle(t, s)
	if tr.nCalls() != calls+1 {
		t.Fatalf("%d deliveries at the late message's next try, want 1", tr.nCalls()-calls)
	}
	clock.Set(t0.Add(2 * time.Hour))
	for _, id := range ids {
		waitFor(t, "delivery of "+id, gone(s, id))
	}
	if tr.nCalls() != calls+4 {
		t.Fatalf("%d deliveries, want 4", tr.nCalls()-calls)
	}
}

// FuzzDecodePark: decodePark never panics on any bytes, and what it
// accepts has as many messages as its header says. The checksum is made
// to match and the group is the one the header names, so the fuzzer
// reaches the message decoder behind them.
func FuzzDecodePark(f *testing.F) {
	x := newIndex(nil)
	replayTypical(x, 0, 3, time.Unix(1763630000, 0))
	var es []*entry
	for e := range x.m.all() {
		es = append(es, e)
	}
	f.Add(encodePark(1, 7, es))
	f.Add(encodePark(1, 7, es[:1]))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) - 4
		if n < parkHeaderSize {
			x.decodePark(data, &parkGroup{})
			return
		}
		binary.LittleEndian.PutUint32(data[n:], crc32.Checksum(data[:n], castagnoli))
		g := &parkGroup{seq: binary.LittleEndian.Uint32(data[12:]), gen: binary.LittleEndian.Uint64(data[16:]),
			n: int(min(binary.LittleEndian.Uint32(data[24:]), 1<<16))}
		if got, err := x.decodePark(data, g); err == nil && len(got) != g.n {
			t.Fatalf("decoded %d messages of %d", len(got), g.n)
		}
	})
}

// TestParkedActiveLimit: when a long outage's backlog comes due, memory
// holds what the active queue can take soon, not the backlog: messages
// come in from disk as the heap runs low and go back to disk as their
// deferrals pile up, each tried once.
func TestParkedActiveLimit(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	const n, limit = 120, 4
	clock, t0, _ := parkedBacklog(t, s, n)
	var mu sync.Mutex
	most := 0
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		_, mem := onDisk(s)
		mu.Lock()
		most = max(most, mem)
		mu.Unlock()
		// A host answered: the destination is not suspended, so each
		// message is tried.
		return Result{Status: StatusDeferred, DSN: "4.3.0", Reason: "451 4.3.0 try again", Relay: "mx.a.example[192.0.2.1]:25"}
	})
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: DefaultQueueLifetime, ActiveLimit: limit,
	})
	looping(t, clock)
	clock.Set(t0.Add(2 * time.Hour))
	waitFor(t, "every message's attempt", func() bool { return tr.nCalls() == n })
	idle(t, s)
	mu.Lock()
	defer mu.Unlock()
	if most > 8*limit {
		t.Errorf("memory held %d messages at once, with %d in the active queue at most", most, limit)
	}
	clock.Advance(DefaultQueueRunDelay)
	waitFor(t, "the queue run to park them all", func() bool { p, mem := onDisk(s); return p == n && mem == 0 })
	if tr.nCalls() != n {
		t.Fatalf("%d attempts of %d messages", tr.nCalls(), n)
	}
	t.Logf("at most %d of %d messages in memory", most, n)
}

// TestParkedHeld: held messages wait on disk too (postsuper -h ALL in an
// outage), counted as held, never brought in by queue runs; released,
// they come back and are delivered.
func TestParkedHeld(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{SegmentSize: 4096})
	const n = 20
	clock, t0, ids := parkedBacklog(t, s, n)
	tr, _ := runParking(t, s, clock)
	if held, errs := s.Admin(context.Background(), "hold", []string{"ALL"}); held != n || errs != nil {
		t.Fatalf("hold ALL: %d, %v", held, errs)
	}
	clock.Advance(DefaultQueueRunDelay)
	waitFor(t, "the held messages to go to disk", func() bool { p, mem := onDisk(s); return p == n && mem == 0 })
	if msgs, _ := s.Counts(); msgs[Hold] != n {
		t.Fatalf("Counts: %v", msgs)
	}
	// Past their next try: queue runs leave them on disk.
	clock.Set(t0.Add(3 * time.Hour))
	clock.Advance(DefaultQueueRunDelay)
	idle(t, s)
	if p, mem := onDisk(s); p != n || mem != 0 || tr.nCalls() != 0 {
		t.Fatalf("held and due: %d on disk, %d in memory, %d deliveries", p, mem, tr.nCalls())
	}
	if released, errs := s.Admin(context.Background(), "release", []string{"ALL"}); released != n || errs != nil {
		t.Fatalf("release ALL: %d, %v", released, errs)
	}
	for _, id := range ids {
		waitFor(t, "delivery of "+id, gone(s, id))
	}
	if tr.nCalls() != n {
		t.Fatalf("%d deliveries, want %d", tr.nCalls(), n)
	}
}

// TestParkedOutageInflow: mail keeps arriving while the next hop defers
// everything. Each deferral is due a backoff from now, before the
// horizon, so only the heap's limit parks it: memory holds a few times
// the active queue's limit however much arrives, and every message is
// tried again once its backoff has passed.
func TestParkedOutageInflow(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{SegmentSize: 16 << 10})
	const n, limit = 300, 5
	clock := newFakeClock()
	var mu sync.Mutex
	most := 0
	note := func() {
		_, mem := onDisk(s)
		mu.Lock()
		most = max(most, mem)
		mu.Unlock()
	}
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		note()
		return Result{Status: StatusDeferred, DSN: "4.3.0", Reason: "451 4.3.0 try again", Relay: "mx.a.example[192.0.2.1]:25"}
	})
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: DefaultQueueLifetime, ActiveLimit: limit,
	})
	looping(t, clock)
	for i := range n {
		mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("u%d@a.example", i), clock.Now()), testContent(i, 300))
		note()
		if i%limit == 0 {
			// The inflow outpaces nothing: each message is tried before
			// many more arrive, as at a gateway whose next hop refuses.
			waitFor(t, "the arrivals to be tried", func() bool { return tr.nCalls() > i-2*limit })
		}
	}
	waitFor(t, "every message's first attempt", func() bool { return tr.nCalls() == n })
	idle(t, s)
	mu.Lock()
	if most > 10*limit {
		t.Errorf("memory held %d messages at once, with an active queue limit of %d", most, limit)
	}
	mu.Unlock()
	if p, mem := onDisk(s); p+mem != n || mem > 10*limit {
		t.Errorf("after the inflow: %d parked on disk, %d in memory, of %d", p, mem, n)
	}
	// Past the backoff every message comes back, a limit's worth at a
	// time, and is tried again: none is left behind on disk.
	tries := func() (least int) {
		per := make(map[string]int)
		for _, c := range tr.callList() {
			per[c.id]++
		}
		least = len(per) - n // negative while some message was never tried
		if least == 0 {
			least = math.MaxInt
			for _, k := range per {
				least = min(least, k)
			}
		}
		return least
	}
	for range 20 {
		if tries() >= 2 {
			break
		}
		clock.Advance(DefaultQueueRunDelay)
		idle(t, s)
	}
	if least := tries(); least < 2 {
		p, mem := onDisk(s)
		t.Fatalf("a message was tried %d times after 20 queue runs (%d parked, %d in memory)", least, p, mem)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("at most %d of %d messages in memory", most, n)
}

// TestParkedDueAtStart: a queue manager starting on a backlog that is all
// due (a restart after the outage, or of a queue filled while none ran)
// holds no more of it in memory than its active limit allows, and
// delivers every message once.
func TestParkedDueAtStart(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{SegmentSize: 16 << 10})
	const n, limit = 200, 5
	clock := newFakeClock()
	for i := range n {
		mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("u%d@a.example", i), clock.Now()), testContent(i, 300))
	}
	tr := newFakeTransport(nil)
	tr.gate = make(chan struct{}) // nothing is delivered until memory is counted
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: DefaultQueueLifetime, ActiveLimit: limit,
	})
	// The start parks a segment at a time, after the manager runs.
	waitFor(t, "the start's parking to leave a few times the limit in memory", func() bool {
		p, mem := onDisk(s)
		return p+mem == n && mem <= 3*limit
	})
	close(tr.gate)
	waitFor(t, "every message delivered", func() bool { return len(tr.sentCounts()) == n })
	idle(t, s)
	for rcpt, k := range tr.sentCounts() {
		if k != 1 {
			t.Errorf("%s delivered %d times", rcpt, k)
		}
	}
	if p, mem := onDisk(s); p+mem != 0 {
		t.Errorf("after delivery: %d parked, %d in memory", p, mem)
	}
}
