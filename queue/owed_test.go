package queue

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestManagerOwesChanges: while every write fails with ENOSPC, the queue
// manager keeps delivering instead of stopping; the records of what it
// did are owed, the message is not delivered again while it owes them
// (not even when flushed), and once there is space they are written
// before its next delivery, which goes only to the recipient left.
func TestManagerOwesChanges(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts})
	defer func() { s.Close() }()
	clock := newFakeClock()
	var deliverV atomic.Bool
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if rcpt == "v@example.org" && !deliverV.Load() {
			return Result{Status: StatusDeferred, DSN: "4.2.0", Reason: "450 try later", Relay: "mx.example.org[192.0.2.9]:25"}
		}
		return sentResult()
	})
	gate, started := make(chan struct{}), make(chan string, 10)
	tr.gate, tr.started = gate, started
	var log mailLog
	stop := runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Log: &log,
		Now: clock.Now, alarm: clock.alarm, QueueRunDelay: time.Hour, MaximalQueueLifetime: DefaultQueueLifetime,
	})
	env := &Envelope{Sender: "s@example.net", Arrival: clock.Now(), Recipients: []Recipient{{Addr: "u@example.com"}, {Addr: "v@example.org"}}}
	id := mustAppend(t, s, env, []byte("x\r\n"))
	<-started
	<-started
	ts.failSyncs(1<<30, syscall.ENOSPC) // the disk is full from now on
	close(gate)
	waitFor(t, "the records to be owed", func() bool {
		return len(log.find(id, "update queue file", "no space left on device")) > 0
	})
	idle(t, s)
	if n := owed(s, id); n != 2 {
		t.Fatalf("%d records owed, want 2 (delivered, deferred)", n)
	}
	if err := s.Append(context.Background(), testEnvelope(9), []byte("y\r\n")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append on a full disk = %v, want ErrNoSpace", err)
	}
	if _, ok := s.Get(id); !ok || s.failed() {
		t.Fatalf("message queued %v, store failed %v", ok, s.failed())
	}

	// Flushed while the disk is still full: its records are tried, it is
	// not delivered.
	files, _ := ts.counts()
	s.Flush()
	waitFor(t, "the owed records to be tried", func() bool { f, _ := ts.counts(); return f > files })
	idle(t, s)
	if n := tr.nCalls(); n != 2 {
		t.Fatalf("%d deliveries while the records are owed, want the first 2", n)
	}

	// Space again: flushed, it writes what it owes first, then delivers
	// what is left.
	ts.failSyncs(0, nil)
	deliverV.Store(true)
	s.Flush()
	waitFor(t, "the message to be delivered", gone(s, id))
	if u, v := tr.sentTo("u@example.com"), tr.sentTo("v@example.org"); u != 1 || v != 1 {
		t.Fatalf("sent to u %d times, to v %d times; want once each", u, v)
	}
	waitFor(t, "the removed line", func() bool { return len(log.find(id+": removed")) == 1 })
	stop()
	s.Close()
	s = openT(t, dir, Options{})
	if msgs := s.List(); len(msgs) != 0 {
		t.Fatalf("after reopen: %v still queued", ids(msgs))
	}
}

// TestManagerRetriesOwed: owed records are written by themselves once
// there is space, without waiting for the message's next attempt; the one
// that finishes the message logs its removal.
func TestManagerRetriesOwed(t *testing.T) {
	dir := t.TempDir()
	ts := newTestSyncer()
	s := openT(t, dir, Options{Syncer: ts})
	defer func() { s.Close() }()
	clock := newFakeClock()
	tr := newFakeTransport(nil)
	gate, started := make(chan struct{}), make(chan string, 10)
	tr.gate, tr.started = gate, started
	var log mailLog
	stop := runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Log: &log,
		Now: clock.Now, alarm: clock.alarm, QueueRunDelay: time.Hour,
	})
	id := mustAppend(t, s, oneRcpt("s@example.net", "u@example.com", clock.Now()), []byte("x\r\n"))
	<-started
	ts.failSyncs(1<<30, syscall.ENOSPC)
	close(gate)
	waitFor(t, "the record to be owed", func() bool { return len(log.find(id, "the delivered record is kept")) == 1 })
	idle(t, s)
	if len(log.find(id+": removed")) != 0 {
		t.Fatal("removed logged before its record was written")
	}
	ts.failSyncs(0, nil)
	waitFor(t, "the retry", func() bool {
		clock.Advance(owedRetry)
		return gone(s, id)()
	})
	waitFor(t, "the removed line", func() bool { return len(log.find(id+": removed")) > 0 })
	if got := log.find(id + ": removed"); len(got) != 1 || tr.sentTo("u@example.com") != 1 {
		t.Fatalf("removed lines %q, sent %d times", got, tr.sentTo("u@example.com"))
	}
	stop()
	if strings.Contains(log.String(), "may be delivered again") {
		t.Errorf("stopping lost records:\n%s", log.String())
	}
	s.Close()
	s = openT(t, dir, Options{})
	if msgs := s.List(); len(msgs) != 0 {
		t.Fatalf("after reopen: %v still queued", ids(msgs))
	}
}

// owed counts the changes the running manager owes for id.
func owed(s *Store, id string) int {
	s.mu.Lock()
	m := s.mgr
	s.mu.Unlock()
	m.owed.mu.Lock()
	defer m.owed.mu.Unlock()
	return len(m.owed.m[id])
}

// TestManagerDeliversOwingDeferrals: a message that owes only deferrals is
// still delivered on a full disk (deliveries are what free space), and
// once it owes its delivery it is not delivered again.
func TestManagerDeliversOwingDeferrals(t *testing.T) {
	ts := newTestSyncer()
	s := openQ(t, t.TempDir(), Options{Syncer: ts})
	clock := newFakeClock()
	var accept atomic.Bool
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if !accept.Load() {
			return Result{Status: StatusDeferred, DSN: "4.2.0", Reason: "450 try later", Relay: "mx.example.com[192.0.2.9]:25"}
		}
		return sentResult()
	})
	var log mailLog
	gate, started := make(chan struct{}), make(chan string, 10)
	tr.gate, tr.started = gate, started
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Log: &log,
		Now: clock.Now, alarm: clock.alarm, QueueRunDelay: time.Hour, MaximalQueueLifetime: DefaultQueueLifetime,
	})
	id := mustAppend(t, s, oneRcpt("s@example.net", "u@example.com", clock.Now()), []byte("x\r\n"))
	<-started
	ts.failSyncs(1<<30, syscall.ENOSPC) // full before its first attempt ends
	close(gate)
	waitFor(t, "the deferral to be owed", func() bool { return len(log.find(id, "the deferred record is kept")) == 1 })
	idle(t, s)

	accept.Store(true)
	s.Flush()
	waitFor(t, "the delivery", func() bool { return tr.sentTo("u@example.com") == 1 })
	idle(t, s)
	if n := owed(s, id); n != 2 {
		t.Fatalf("%d records owed, want the deferral and the delivery", n)
	}
	calls := tr.nCalls()
	s.Flush()
	idle(t, s)
	time.Sleep(5 * time.Millisecond) // a second delivery would show now
	if tr.nCalls() != calls {
		t.Fatal("delivered again while its delivery is owed")
	}
	ts.failSyncs(0, nil)
	waitFor(t, "the owed records to be written", func() bool {
		clock.Advance(owedRetry)
		return gone(s, id)()
	})
	if n := tr.sentTo("u@example.com"); n != 1 {
		t.Fatalf("sent %d times, want once", n)
	}
}

// TestOweCollapsesDeferrals: a deferral replaces earlier owed deferrals
// of no more recipients, never the first owed change (being written) nor
// anything else.
func TestOweCollapsesDeferrals(t *testing.T) {
	d := func(why string, rcpts ...int) Change { return Change{Kind: ChangeDeferred, Rcpts: rcpts, Reason: why} }
	done := Change{Kind: ChangeDelivered, Rcpts: []int{2}}
	var cs []Change
	for _, c := range []Change{d("first", 0), done, d("a", 0, 1), d("b", 1), d("c", 0, 1), {Kind: ChangeDeferred, Reason: "all"}} {
		cs = owe(cs, c)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.Kind.String()+":"+c.Reason)
	}
	want := []string{"deferred:first", "delivered:", "deferred:all"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("owed %v, want %v", got, want)
	}
}
