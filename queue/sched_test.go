package queue

import (
	"fmt"
	"testing"
	"time"
)

// scheduled counts the messages in the schedule's heap and the parked
// ones, in memory or on disk (held ones on disk aside).
func scheduled(s *Store) (inHeap, parkedN int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := range s.idx.m.all() {
		switch {
		case e.hpos > 0:
			inHeap++
		case e.hpos == parked:
			parkedN++
		}
	}
	for _, g := range s.idx.parked {
		parkedN += g.msgs[Active] + g.msgs[Deferred]
	}
	if inHeap != len(s.idx.sched) {
		panic(fmt.Sprintf("%d entries say they are in the heap, which holds %d", inHeap, len(s.idx.sched)))
	}
	return inHeap, parkedN
}

// TestManagerParksLaterMessages: a deferred backlog does not sit in the
// schedule's heap. Messages due after the next queue run (and a minimal
// backoff) wait parked in the index; each queue run brings in those due
// before the next, and each is still tried at its next try, not before
// and not a queue run late. postqueue -f and ETRN reach parked messages.
func TestManagerParksLaterMessages(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	t0 := clock.Now()
	const n = 20
	due := make(map[string]time.Time)
	for i := range n {
		id := mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("u%d@example.com", i), t0), []byte("x\r\n"))
		// One every 1000 s from 1000 s on: past the first horizon
		// (queue_run_delay + minimal_backoff_time, 600 s).
		due[id] = t0.Add(time.Duration(i+1) * 1000 * time.Second)
		mustChange(t, s, id, Change{Kind: ChangeDeferred, Until: due[id], Reason: "connect to mx.example.com[192.0.2.1]:25: Connection refused"})
	}
	held := mustAppend(t, s, oneRcpt("s@example.net", "held@example.com", t0), []byte("x\r\n"))
	mustChange(t, s, held, Change{Kind: ChangeDeferred, Until: t0.Add(1500 * time.Second)})
	tr := newFakeTransport(nil)
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Now: clock.Now, alarm: clock.alarm,
		MaximalQueueLifetime: DefaultQueueLifetime,
	})
	mustChange(t, s, held, Change{Kind: ChangeHold})
	if inHeap, p := scheduled(s); inHeap != 0 || p != n+1 {
		t.Fatalf("at the start: %d in the heap, %d parked; want 0 and %d", inHeap, p, n+1)
	}
	for step := time.Duration(1); step <= time.Duration(n)*1000/100+10; step++ {
		now := t0.Add(step * 100 * time.Second)
		clock.Set(now)
		want := 0
		for _, at := range due {
			if !at.After(now) {
				want++
			}
		}
		waitFor(t, fmt.Sprintf("%d deliveries at %v", want, now.Sub(t0)), func() bool { return tr.nCalls() >= want })
		idle(t, s)
		if got := tr.nCalls(); got != want {
			t.Fatalf("at %v: %d deliveries, want %d", now.Sub(t0), got, want)
		}
		// The heap holds at most what is due before the horizon, at most
		// 1000 s ahead here: two messages, and the held one until its
		// time comes (then the schedule drops it, as it would drop it from
		// the heap).
		if inHeap, _ := scheduled(s); inHeap > 3 {
			t.Fatalf("at %v: %d messages in the heap", now.Sub(t0), inHeap)
		}
	}
	if m, ok := s.Get(held); !ok || m.State != Hold {
		t.Fatalf("held message: found %v, state %v", ok, m.State)
	}

	// Mail that has waited long is deferred for maximal_backoff_time
	// (4000 s): parked. ETRN for one domain, then postqueue -f, still make
	// it due at once.
	tr.setFn(func(d *Delivery, rcpt string) Result {
		return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: "connect to mx[192.0.2.1]:25: Connection refused"}
	})
	calls := tr.nCalls()
	ids := make(map[string]string) // domain -> ID
	for _, dom := range []string{"example.org", "example.com"} {
		ids[dom] = mustAppend(t, s, oneRcpt("s@example.net", "v@"+dom, t0), []byte("x\r\n"))
	}
	waitFor(t, "the first attempts", func() bool { return tr.nCalls() == calls+2 })
	idle(t, s)
	if inHeap, p := scheduled(s); inHeap != 0 || p != 2 {
		t.Fatalf("after deferring for 4000 s: %d in the heap, %d parked; want 0 and 2", inHeap, p)
	}
	tr.setFn(nil)
	s.FlushDomain("example.org")
	waitFor(t, "the ETRN'd message", gone(s, ids["example.org"]))
	idle(t, s)
	if _, ok := s.Get(ids["example.com"]); !ok {
		t.Fatal("ETRN example.org delivered the example.com message too")
	}
	s.Flush()
	waitFor(t, "the flushed message", gone(s, ids["example.com"]))
	idle(t, s)
	if m, ok := s.Get(held); !ok || m.State != Hold || tr.nCalls() != calls+4 {
		t.Fatalf("held message: found %v, state %v; %d deliveries, want %d", ok, m.State, tr.nCalls(), calls+4)
	}
}
