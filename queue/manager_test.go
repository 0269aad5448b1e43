package queue

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestManagerPicksUpAtOnce: a message appended while the manager runs is
// delivered without waiting for a queue run (queue_run_delay is an hour).
func TestManagerPicksUpAtOnce(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	tr := newFakeTransport(nil)
	var log mailLog
	runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}, Log: &log, QueueRunDelay: time.Hour})

	env := testEnvelope(1)
	id := mustAppend(t, s, env, testContent(1, 500))
	waitFor(t, "the message to be delivered", gone(s, id))
	calls := tr.callList()
	if len(calls) != 2 { // two recipients, two domains
		t.Fatalf("%d deliveries, want 2: %+v", len(calls), calls)
	}
	for _, c := range calls {
		if c.content != string(testContent(1, 500)) {
			t.Errorf("delivery %v got content %q", c.rcpts, c.content)
		}
	}
	waitFor(t, "the removed line", func() bool { return len(log.find(id+": removed")) == 1 })
	want := []string{
		fmt.Sprintf("qmgr: %s: from=<sender1@example.net>, size=500, nrcpt=2 (queue active)", id),
		"smtp: " + id + ": to=<rcpt1@example.com>, relay=mx.example.com[198.51.100.5]:25, delay=",
		"smtp: " + id + ": to=<other1@example.org>, relay=mx.example.com[198.51.100.5]:25, delay=",
		fmt.Sprintf("qmgr: %s: removed", id),
	}
	for _, w := range want {
		if len(log.find(w)) != 1 {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
}

// TestManagerOutcomes: each recipient's outcome is recorded (sent, deferred
// with its reason and next try, bounced and reported) and survives a
// reopen.
func TestManagerOutcomes(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{})
	clock := newFakeClock()
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		switch {
		case strings.HasPrefix(rcpt, "later"):
			return Result{Status: StatusDeferred, DSN: "4.7.1", Reason: "host mx.example.com[198.51.100.5] said: 451 4.7.1 try later (in reply to RCPT TO command)", Relay: "mx.example.com[198.51.100.5]:25"}
		case strings.HasPrefix(rcpt, "nobody"):
			return Result{Status: StatusBounced, DSN: "5.1.1", Reason: "host mx.example.com[198.51.100.5] said: 550 5.1.1 no such user (in reply to RCPT TO command)", Relay: "mx.example.com[198.51.100.5]:25"}
		}
		return sentResult()
	})
	var bouncer fakeBouncer
	var log mailLog
	stop := runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Bouncer: &bouncer, Log: &log,
		Now: clock.Now, alarm: clock.alarm, MaximalQueueLifetime: DefaultQueueLifetime,
	})
	env := &Envelope{Sender: "s@example.net", Arrival: clock.Now(), Recipients: []Recipient{
		{Addr: "ok@example.com"}, {Addr: "later@example.com"}, {Addr: "nobody@example.com"},
	}}
	id := mustAppend(t, s, env, []byte("Subject: x\r\n\r\nhello\r\n"))
	waitFor(t, "the bounce to be reported", func() bool { return len(log.find(id+": sender non-delivery notification:")) == 1 })
	idle(t, s)
	stop()

	check := func(s *Store) {
		t.Helper()
		m, ok := s.Get(id)
		if !ok {
			t.Fatal("message gone")
		}
		if !reflect.DeepEqual(m.Done, []bool{true, false, true}) || m.State != Deferred {
			t.Errorf("Done %v State %v", m.Done, m.State)
		}
		if !strings.Contains(m.Reasons[1], "451 4.7.1 try later") || !strings.Contains(m.Reasons[2], "550 5.1.1 no such user") {
			t.Errorf("Reasons %q", m.Reasons)
		}
		if want := clock.Now().Add(DefaultMinimalBackoff); !m.NextTry.Equal(want) {
			t.Errorf("NextTry %v, want %v", m.NextTry, want)
		}
	}
	check(s)
	ns := bouncer.list()
	if len(ns) != 1 || !reflect.DeepEqual(ns[0].Failed, []FailedRcpt{{Index: 2, DSN: "5.1.1", Reason: "host mx.example.com[198.51.100.5] said: 550 5.1.1 no such user (in reply to RCPT TO command)", Relay: "mx.example.com[198.51.100.5]:25", Action: "failed"}}) {
		t.Errorf("notices %+v", ns)
	}
	// The DSN went to the sender.
	if tr.sentTo("s@example.net") != 1 {
		t.Errorf("DSN deliveries to the sender: %d", tr.sentTo("s@example.net"))
	}
	s.Close()
	s = openQ(t, dir, Options{})
	check(s)
}

// TestManagerConcurrencyLimit: 30 messages for one destination with a
// limit of 2 never have more than 2 deliveries in flight, while another
// destination is not held up by the first.
func TestManagerConcurrencyLimit(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	gate := make(chan struct{})
	slow := newFakeTransport(nil)
	slow.gate = gate
	fast := newFakeTransport(nil)
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"slow": slow, "fast": fast},
		Router:     domainRouter{"slow.example": "slow", "fast.example": "fast"},
		DestinationConcurrency: func(transport string) int {
			if transport == "slow" {
				return 2
			}
			return 0
		},
	})
	var slowIDs []string
	for i := range 30 {
		slowIDs = append(slowIDs, mustAppend(t, s, oneRcpt("s@example.net", fmt.Sprintf("u%d@slow.example", i), time.Time{}), testContent(i, 200)))
	}
	waitFor(t, "two slow deliveries in flight", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return slow.inflight == 2
	})
	// The slow destination is full; the fast one still delivers.
	fastID := mustAppend(t, s, oneRcpt("s@example.net", "u@fast.example", time.Time{}), []byte("x\r\n"))
	waitFor(t, "the fast message", gone(s, fastID))
	close(gate)
	for _, id := range slowIDs {
		waitFor(t, "the slow messages", gone(s, id))
	}
	if slow.most != 2 {
		t.Errorf("at most %d slow deliveries in flight, want 2", slow.most)
	}
	if n := slow.nCalls(); n != 30 {
		t.Errorf("%d slow deliveries, want 30", n)
	}
}

// TestManagerRecipientBatching: recipients are grouped by destination and
// handed over at most destination_recipient_limit at a time.
func TestManagerRecipientBatching(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	tr := newFakeTransport(nil)
	runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}})
	env := &Envelope{Sender: "s@example.net"}
	for i := range 120 {
		env.Recipients = append(env.Recipients, Recipient{Addr: fmt.Sprintf("u%d@big.example", i)})
		if i%40 == 0 {
			env.Recipients = append(env.Recipients, Recipient{Addr: fmt.Sprintf("u%d@small.example", i)})
		}
	}
	id := mustAppend(t, s, env, []byte("x\r\n"))
	waitFor(t, "delivery", gone(s, id))
	var sizes []string
	seen := make(map[string]int)
	for _, c := range tr.callList() {
		sizes = append(sizes, fmt.Sprintf("%s:%d", c.nexthop, len(c.rcpts)))
		for _, r := range c.rcpts {
			seen[r]++
			if !strings.HasSuffix(r, "@"+c.nexthop) {
				t.Errorf("%s delivered to next hop %s", r, c.nexthop)
			}
		}
	}
	sort.Strings(sizes)
	if want := []string{"big.example:20", "big.example:50", "big.example:50", "small.example:3"}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("deliveries %v, want %v", sizes, want)
	}
	for _, r := range env.Recipients {
		if seen[r.Addr] != 1 {
			t.Errorf("%s delivered %d times", r.Addr, seen[r.Addr])
		}
	}
}

// TestManagerBackoff: a deferred message is retried at now +
// clamp(age, minimal_backoff_time, maximal_backoff_time), not before, and
// each recipient is delivered exactly once.
func TestManagerBackoff(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	t0 := clock.Now()
	var tries int
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if rcpt == "late@example.org" {
			tries++
			if tries <= 6 {
				return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: "connect to mx.example.org[192.0.2.9]:25: Connection refused", Relay: "mx.example.org[192.0.2.9]:25"}
			}
		}
		return sentResult()
	})
	var log mailLog
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Log: &log,
		Now: clock.Now, alarm: clock.alarm, MaximalQueueLifetime: DefaultQueueLifetime,
	})
	env := &Envelope{Sender: "s@example.net", Arrival: t0, Recipients: []Recipient{{Addr: "now@example.com"}, {Addr: "late@example.org"}}}
	id := mustAppend(t, s, env, []byte("x\r\n"))

	// Attempts at 0, 300, 600, 1200, 2400 and 4800 s defer: the backoff
	// doubles with the age, then is capped at 4000 s; the seventh, at
	// 8800 s, delivers.
	for i, next := range []time.Duration{300, 600, 1200, 2400, 4800, 8800} {
		next *= time.Second
		waitFor(t, fmt.Sprintf("deferral %d", i+1), func() bool {
			m, ok := s.Get(id)
			return ok && m.NextTry.Equal(t0.Add(next)) && !m.Done[1]
		})
		idle(t, s)
		calls := tr.nCalls()
		clock.Set(t0.Add(next - time.Second))
		time.Sleep(5 * time.Millisecond) // a too-early retry would show now
		if tr.nCalls() != calls {
			t.Fatalf("retried before its next try (%v)", next)
		}
		clock.Set(t0.Add(next))
		if i == 5 {
			break
		}
	}
	waitFor(t, "delivery", gone(s, id))
	if tries != 7 || tr.sentTo("now@example.com") != 1 || tr.sentTo("late@example.org") != 1 {
		t.Fatalf("tries %d, sent %v", tries, tr.sentCounts())
	}
	// Nothing more happens.
	s.Flush()
	clock.Advance(10 * time.Hour)
	time.Sleep(5 * time.Millisecond)
	if n := tr.nCalls(); n != 8 {
		t.Errorf("%d deliveries, want 8", n)
	}
	if got := log.find(id+": to=<late@example.org>", "status=deferred"); len(got) != 6 ||
		got[1] != "smtp: "+id+": to=<late@example.org>, relay=mx.example.org[192.0.2.9]:25, delay=300, delays=300/0/0/0, dsn=4.4.1, status=deferred (connect to mx.example.org[192.0.2.9]:25: Connection refused)" {
		t.Errorf("deferral lines:\n%s", strings.Join(got, "\n"))
	}
}

// TestManagerDeadDestination: a destination that failed as a whole is
// suspended for minimal_backoff_time: its other messages are deferred
// without trying, with the reason; afterwards it is tried again.
func TestManagerDeadDestination(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	const refused = "connect to mx.down.example[192.0.2.1]:25: Connection refused"
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if strings.HasSuffix(rcpt, "@down.example") {
			return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: refused}
		}
		return sentResult()
	})
	var log mailLog
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Log: &log,
		Now: clock.Now, alarm: clock.alarm, MaximalQueueLifetime: DefaultQueueLifetime,
		MinimalBackoff: 60 * time.Second,
	})
	first := mustAppend(t, s, oneRcpt("s@example.net", "a@down.example", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the first deferral", func() bool { m, _ := s.Get(first); return m.State == Deferred })
	idle(t, s)
	second := mustAppend(t, s, oneRcpt("s@example.net", "b@down.example", clock.Now()), []byte("x\r\n"))
	other := mustAppend(t, s, oneRcpt("s@example.net", "c@up.example", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the second deferral", func() bool { m, _ := s.Get(second); return m.State == Deferred })
	waitFor(t, "the other destination", gone(s, other))
	if n := tr.nCalls(); n != 2 {
		t.Fatalf("%d deliveries, want 2 (the dead destination tried once)", n)
	}
	m, _ := s.Get(second)
	if m.Reasons[0] != "delivery temporarily suspended: "+refused {
		t.Errorf("reason %q", m.Reasons[0])
	}
	want := "error: " + second + ": to=<b@down.example>, relay=none, delay=0, delays=0/0/0/0, dsn=4.4.1, status=deferred (delivery temporarily suspended: " + refused + ")"
	if len(log.find(want)) != 1 {
		t.Errorf("no line %q in\n%s", want, log.String())
	}
	// After minimal_backoff_time the destination is tried again.
	clock.Advance(60 * time.Second)
	third := mustAppend(t, s, oneRcpt("s@example.net", "d@down.example", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the third attempt", func() bool { m, _ := s.Get(third); return m.State == Deferred })
	if n := tr.nCalls(); n < 3 {
		t.Errorf("%d deliveries: the destination was not tried after its suspension", n)
	}
}

// TestManagerExpiry: a temporary failure past maximal_queue_lifetime
// returns the message: the qmgr expired line, the Bouncer told with the
// last reason, the notice queued and delivered, the message removed.
func TestManagerExpiry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sender string
		force  bool // postsuper -e instead of age
		status string
	}{
		{"maximal_queue_lifetime", "s@example.net", false, "expired"},
		{"bounce_queue_lifetime", "", false, "expired"},
		{"force-expired", "s@example.net", true, "force-expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openQ(t, t.TempDir(), Options{})
			clock := newFakeClock()
			const why = "host mx.example.org[192.0.2.9] said: 451 4.3.0 try again (in reply to end of DATA command)"
			tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
				if rcpt == "r@example.org" {
					return Result{Status: StatusDeferred, DSN: "4.3.0", Reason: why, Relay: "mx.example.org[192.0.2.9]:25"}
				}
				return sentResult()
			})
			var bouncer fakeBouncer
			var log mailLog
			o := ManagerOptions{
				Transports: map[string]Transport{"smtp": tr}, Bouncer: &bouncer, Log: &log,
				Now: clock.Now, alarm: clock.alarm,
				MaximalQueueLifetime: 4 * time.Hour, BounceQueueLifetime: time.Hour,
			}
			if tc.force {
				o.MaximalQueueLifetime = DefaultQueueLifetime
			}
			runManager(t, s, o)
			arrival := clock.Now().Add(-2 * time.Hour) // past bounce_queue_lifetime only
			if tc.sender != "" && !tc.force {
				arrival = clock.Now().Add(-5 * time.Hour)
			}
			id := mustAppend(t, s, oneRcpt(tc.sender, "r@example.org", arrival), []byte("Subject: x\r\n\r\nbody\r\n"))
			if tc.force {
				waitFor(t, "the deferral", func() bool { m, _ := s.Get(id); return m.State == Deferred })
				idle(t, s)
				mustChange(t, s, id, Change{Kind: ChangeExpire})
				s.Flush()
			}
			waitFor(t, "removal", gone(s, id))
			line := fmt.Sprintf("qmgr: %s: from=<%s>, status=%s, returned to sender", id, tc.sender, tc.status)
			if len(log.find(line)) != 1 {
				t.Errorf("no %q in\n%s", line, log.String())
			}
			ns := bouncer.list()
			wantWhy, wantDSN := why, "4.3.0"
			if tc.force {
				wantWhy, wantDSN = "message is administratively expired", "4.7.0"
			}
			if len(ns) != 1 || len(ns[0].Failed) != 1 || ns[0].Failed[0] != (FailedRcpt{Index: 0, DSN: wantDSN, Reason: wantWhy, Relay: ns[0].Failed[0].Relay, Action: "failed"}) {
				t.Fatalf("notices %+v", ns)
			}
			if tc.sender != "" {
				waitFor(t, "the DSN", func() bool { return tr.sentTo(tc.sender) == 1 })
				if len(log.find(id+": sender non-delivery notification: ")) != 1 {
					t.Errorf("no bounce line in\n%s", log.String())
				}
			}
			if tc.force {
				if n := tr.nCalls(); n != 1+btoi(tc.sender != "") {
					t.Errorf("%d deliveries: a force-expired message was tried", n)
				}
				want := "error: " + id + ": to=<r@example.org>, relay=none, delay=7200, delays=7200/0/0/0, dsn=4.7.0, status=deferred (message is administratively expired)"
				if len(log.find(want)) != 1 {
					t.Errorf("no %q in\n%s", want, log.String())
				}
			}
			waitFor(t, "the removed line", func() bool { return len(log.find("qmgr: "+id+": removed")) == 1 })
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestManagerDelayWarning: a message still deferred after
// delay_warning_time gets one delay notice.
func TestManagerDelayWarning(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{})
	clock := newFakeClock()
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if rcpt == "r@example.org" {
			return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: "connect to mx.example.org[192.0.2.9]:25: Connection timed out", Relay: "mx.example.org[192.0.2.9]:25", SiteFail: true}
		}
		return sentResult()
	})
	var bouncer fakeBouncer
	var log mailLog
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Bouncer: &bouncer, Log: &log,
		Now: clock.Now, alarm: clock.alarm, MaximalQueueLifetime: DefaultQueueLifetime,
		DelayWarningTime: 4 * time.Hour,
	})
	id := mustAppend(t, s, oneRcpt("s@example.net", "r@example.org", clock.Now().Add(-5*time.Hour)), []byte("x\r\n"))
	waitFor(t, "the warning", func() bool { m, _ := s.Get(id); return m.Warned })
	for range 2 {
		idle(t, s)
		s.Flush()
		clock.Advance(time.Hour)
	}
	idle(t, s)
	ns := bouncer.list()
	if len(ns) != 1 || len(ns[0].Failed) != 0 || !reflect.DeepEqual(ns[0].Delayed, []int{0}) || ns[0].Delays[0].Action != "delayed" || ns[0].Delays[0].DSN != "4.4.1" {
		t.Fatalf("notices %+v", ns)
	}
	if len(log.find("bounce: "+id+": sender delay notification: ")) != 1 {
		t.Errorf("no delay notification line:\n%s", log.String())
	}
	if m, ok := s.Get(id); !ok || m.State != Deferred {
		t.Errorf("message %v %v", ok, m.State)
	}
}

// TestManagerSoftBounce: with soft_bounce a permanent failure is deferred,
// its DSN class made temporary, and nothing is returned.
func TestManagerSoftBounce(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	const why = "host mx.example.com[198.51.100.5] said: 550 5.1.1 <u@example.com>: Recipient address rejected (in reply to RCPT TO command)"
	tr := newFakeTransport(func(*Delivery, string) Result {
		return Result{Status: StatusBounced, DSN: "5.1.1", Reason: why, Relay: "mx.example.com[198.51.100.5]:25"}
	})
	var bouncer fakeBouncer
	var log mailLog
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Bouncer: &bouncer, Log: &log, SoftBounce: true,
		Now: clock.Now, alarm: clock.alarm, MaximalQueueLifetime: time.Hour,
	})
	id := mustAppend(t, s, oneRcpt("s@example.net", "u@example.com", clock.Now().Add(-2*time.Hour)), []byte("x\r\n"))
	waitFor(t, "the deferral", func() bool { m, _ := s.Get(id); return m.State == Deferred })
	idle(t, s)
	if ns := bouncer.list(); len(ns) != 0 {
		t.Errorf("soft_bounce returned mail: %+v", ns)
	}
	want := "smtp: " + id + ": to=<u@example.com>, relay=mx.example.com[198.51.100.5]:25, delay=7200, delays=7200/0/0/0, dsn=4.1.1, status=deferred (" + why + ")"
	if len(log.find(want)) != 1 {
		t.Errorf("no %q in\n%s", want, log.String())
	}
	if m, _ := s.Get(id); m.Reasons[0] != why || m.Done[0] {
		t.Errorf("recorded %+v", m)
	}
}

// TestManagerHold: held messages are never scheduled, however they were
// held; a release makes them due.
func TestManagerHold(t *testing.T) {
	dir := t.TempDir()
	s := openQ(t, dir, Options{})
	heldBefore := mustAppend(t, s, oneRcpt("s@example.net", "a@example.com", time.Time{}), []byte("x\r\n"))
	mustChange(t, s, heldBefore, Change{Kind: ChangeHold})
	tr := newFakeTransport(nil)
	stop := runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}})
	env := oneRcpt("s@example.net", "b@example.com", time.Time{})
	if err := s.AppendHeld(context.Background(), env, []byte("y\r\n")); err != nil {
		t.Fatal(err)
	}
	heldOnArrival := env.ID
	control := mustAppend(t, s, oneRcpt("s@example.net", "c@example.com", time.Time{}), []byte("z\r\n"))
	waitFor(t, "the control message", gone(s, control))
	s.Flush()
	idle(t, s)
	for _, id := range []string{heldBefore, heldOnArrival} {
		if m, ok := s.Get(id); !ok || m.State != Hold {
			t.Fatalf("%s: found %v, state %v", id, ok, m.State)
		}
	}
	if n := tr.nCalls(); n != 1 {
		t.Fatalf("%d deliveries, want 1: held mail was delivered", n)
	}
	// Held survives a restart of the manager and of the store.
	stop()
	s.Close()
	s = openQ(t, dir, Options{})
	runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}})
	if c, err := s.Content(heldOnArrival); err != nil || string(c) != "y\r\n" {
		t.Fatalf("Content of the held message: %q %v", c, err)
	}
	s.Flush()
	idle(t, s)
	if n := tr.nCalls(); n != 1 {
		t.Fatalf("%d deliveries after restart, want 1", n)
	}
	mustChange(t, s, heldOnArrival, Change{Kind: ChangeRelease})
	waitFor(t, "the released message", gone(s, heldOnArrival))
	if _, ok := s.Get(heldBefore); !ok {
		t.Fatal("the other held message went too")
	}
}

// TestManagerTransportErrors: an unknown transport and a failed route
// defer (never bounce), logged by the error agent with relay=none.
func TestManagerTransportErrors(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	var log mailLog
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": newFakeTransport(nil)},
		Router:     domainRouter{"lmtp.example": "lmtp"},
		Log:        &log, Now: clock.Now, alarm: clock.alarm, MaximalQueueLifetime: DefaultQueueLifetime,
	})
	env := &Envelope{Sender: "s@example.net", Arrival: clock.Now(), Recipients: []Recipient{
		{Addr: "a@lmtp.example"}, {Addr: "b@fail.example"}, {Addr: "c@ok.example"},
	}}
	id := mustAppend(t, s, env, []byte("x\r\n"))
	waitFor(t, "the deferrals", func() bool { m, _ := s.Get(id); return m.State == Deferred && m.Done[2] })
	idle(t, s)
	m, _ := s.Get(id)
	if m.Reasons[0] != "mail transport unavailable" || m.Reasons[1] != "address resolver failure" {
		t.Errorf("reasons %q", m.Reasons)
	}
	for _, want := range []string{
		"error: " + id + ": to=<a@lmtp.example>, relay=none, delay=0, delays=0/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)",
		"error: " + id + ": to=<b@fail.example>, relay=none, delay=0, delays=0/0/0/0, dsn=4.3.0, status=deferred (address resolver failure)",
	} {
		if len(log.find(want)) != 1 {
			t.Errorf("no %q in\n%s", want, log.String())
		}
	}
}

// TestManagerConcurrentAppends: the manager runs while sessions keep
// appending; every recipient is delivered exactly once.
func TestManagerConcurrentAppends(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{SegmentSize: 64 << 10})
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		if strings.HasPrefix(rcpt, "rcpt") && d.ID[len(d.ID)-1]%3 == 0 {
			return Result{Status: StatusDeferred, DSN: "4.0.0", Reason: "try later", Relay: "x[192.0.2.1]:25"}
		}
		return sentResult()
	})
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, MaximalQueueLifetime: DefaultQueueLifetime,
		MinimalBackoff: time.Millisecond, MaximalBackoff: time.Millisecond,
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []string
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				env := testEnvelope(w*1000 + i)
				env.Arrival = time.Time{}
				if err := s.Append(context.Background(), env, testContent(i, 300)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, env.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	tr.setFn(nil) // everything goes now
	s.Flush()
	for _, id := range all {
		waitFor(t, "every message", gone(s, id))
	}
	counts := tr.sentCounts()
	if len(counts) != 8*40*2 {
		t.Errorf("%d recipients delivered, want %d", len(counts), 8*40*2)
	}
	for r, n := range counts {
		if n != 1 {
			t.Errorf("%s delivered %d times", r, n)
		}
	}
}

// TestRunManagerTwice: one manager per store.
func TestRunManagerTwice(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	runManager(t, s, ManagerOptions{})
	if err := s.RunManager(context.Background(), ManagerOptions{}); err != ErrManagerRunning {
		t.Fatalf("second RunManager = %v", err)
	}
}

// TestManagerListShowsActive: a deferred message being delivered is in the
// active queue for mailq.
func TestManagerListShowsActive(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	id := mustAppend(t, s, oneRcpt("s@example.net", "a@example.com", time.Time{}), []byte("x\r\n"))
	mustChange(t, s, id, Change{Kind: ChangeDeferred, Until: time.Unix(1, 0), Reason: "earlier"})
	tr := newFakeTransport(nil)
	tr.gate = make(chan struct{})
	tr.started = make(chan string, 1)
	runManager(t, s, ManagerOptions{Transports: map[string]Transport{"smtp": tr}})
	<-tr.started
	if m, _ := s.Get(id); m.State != Active {
		t.Errorf("Get state %v during delivery", m.State)
	}
	if l := s.List(); len(l) != 1 || l[0].State != Active {
		t.Errorf("List %+v", l)
	}
	close(tr.gate)
	waitFor(t, "delivery", gone(s, id))
}

// TestContentFilterOverridesRoutes: a message with a content filter goes,
// every recipient of it, to the filter's transport and next hop, whatever
// the router says; a filter without a next hop uses
// DefaultFilterNexthop, else each recipient's domain.
func TestContentFilterOverridesRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, filter, defNexthop string
		want                     []string // nexthop: recipients
	}{
		{"with nexthop", "scan:[127.0.0.1]:10024", "", []string{"[127.0.0.1]:10024: a@one.example b@two.example"}},
		{"default nexthop", "scan:", "[filter.example]", []string{"[filter.example]: a@one.example b@two.example"}},
		{"recipient domain", "scan", "", []string{"one.example: a@one.example", "two.example: b@two.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{})
			defer s.Close()
			scan, smtp := newFakeTransport(nil), newFakeTransport(nil)
			stop := runManager(t, s, ManagerOptions{
				Transports:           map[string]Transport{"scan": scan, "smtp": smtp},
				DefaultFilterNexthop: tc.defNexthop,
			})
			defer stop()
			env := &Envelope{Sender: "s@example.net", Recipients: []Recipient{{Addr: "a@one.example"}, {Addr: "b@two.example"}}, Filter: tc.filter}
			id := mustAppend(t, s, env, []byte("x\r\n"))
			waitFor(t, "the message to be delivered", gone(s, id))
			scan.mu.Lock()
			var got []string
			for _, c := range scan.calls {
				got = append(got, c.nexthop+": "+strings.Join(c.rcpts, " "))
			}
			scan.mu.Unlock()
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("filter deliveries %q, want %q", got, tc.want)
			}
			if smtp.nCalls() != 0 {
				t.Errorf("%d deliveries by the routed transport, want none", smtp.nCalls())
			}
		})
	}
}
