package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fakes for the queue manager's seams: a clock with alarms, transports
// that record every call, a router by domain, a bouncer that returns one
// DSN per notice, and a mail log.

// fakeClock is a manual clock; the manager sleeps on its alarms.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	alarms []fakeAlarm
}

type fakeAlarm struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1763629200, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) alarm(at time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.alarms = append(c.alarms, fakeAlarm{at, ch})
	return ch
}

// Advance moves the clock on and rings the alarms it passes.
func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	c.alarms = slices.DeleteFunc(c.alarms, func(a fakeAlarm) bool {
		if a.at.After(t) {
			return false
		}
		a.ch <- t
		return true
	})
}

// fakeCall is one Deliver call as the transport saw it.
type fakeCall struct {
	id      string
	nexthop string
	rcpts   []string
	content string
}

// fakeTransport answers with fn (nil: everything sent) and records calls,
// the recipients sent, and the most deliveries it had in flight at once.
type fakeTransport struct {
	mu       sync.Mutex
	fn       func(d *Delivery, rcpt string) Result
	calls    []fakeCall
	sent     map[string]int // recipient -> times sent
	inflight int
	most     int
	gate     chan struct{} // non-nil: each call waits for it to close
	started  chan string   // non-nil: told each call's queue ID as it starts
}

func newFakeTransport(fn func(d *Delivery, rcpt string) Result) *fakeTransport {
	return &fakeTransport{fn: fn, sent: make(map[string]int)}
}

func (t *fakeTransport) Deliver(ctx context.Context, d *Delivery) []Result {
	t.mu.Lock()
	t.inflight++
	t.most = max(t.most, t.inflight)
	gate, started, fn := t.gate, t.started, t.fn
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.inflight--
		t.mu.Unlock()
	}()
	if started != nil {
		started <- d.ID
	}
	content, err := readAllContent(d)
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	call := fakeCall{id: d.ID, nexthop: d.Nexthop, content: string(content)}
	res := make([]Result, len(d.Rcpts))
	for i, ri := range d.Rcpts {
		rcpt := d.Envelope.Recipients[ri].Addr
		call.rcpts = append(call.rcpts, rcpt)
		switch {
		case err != nil:
			res[i] = Result{Status: StatusDeferred, DSN: "4.3.0", Reason: err.Error()}
		case ctx.Err() != nil:
			res[i] = Result{Status: StatusDeferred, DSN: "4.4.2", Reason: "shutting down"}
		case fn != nil:
			res[i] = fn(d, rcpt)
		default:
			res[i] = sentResult()
		}
	}
	t.mu.Lock()
	t.calls = append(t.calls, call)
	for i, r := range res {
		if r.Status == StatusSent {
			t.sent[call.rcpts[i]]++
		}
	}
	t.mu.Unlock()
	return res
}

func readAllContent(d *Delivery) ([]byte, error) {
	rc, err := d.Content()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if int64(len(b)) != d.Size && err == nil {
		err = fmt.Errorf("read %d bytes of %d", len(b), d.Size)
	}
	return b, err
}

func sentResult() Result {
	return Result{Status: StatusSent, DSN: "2.0.0", Reason: "250 2.0.0 Ok: queued as 4XYZ", Relay: "mx.example.com[198.51.100.5]:25"}
}

func (t *fakeTransport) setFn(fn func(d *Delivery, rcpt string) Result) {
	t.mu.Lock()
	t.fn = fn
	t.mu.Unlock()
}

func (t *fakeTransport) nCalls() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

func (t *fakeTransport) callList() []fakeCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

func (t *fakeTransport) sentTo(rcpt string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent[rcpt]
}

func (t *fakeTransport) sentCounts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.sent))
	for k, v := range t.sent {
		out[k] = v
	}
	return out
}

// domainRouter routes by recipient domain: domain -> transport, the next
// hop being the domain. Unlisted domains go to "smtp"; "fail.example"
// fails the lookup.
type domainRouter map[string]string

func (r domainRouter) Route(ctx context.Context, rcpt string) (string, string, error) {
	domain := rcpt[strings.LastIndexByte(rcpt, '@')+1:]
	if domain == "fail.example" {
		return "", "", errors.New("table lookup failed")
	}
	if t, ok := r[domain]; ok {
		return t, domain, nil
	}
	return "smtp", domain, nil
}

// fakeBouncer records notices and returns a DSN to the sender for each
// (none for the null sender).
type fakeBouncer struct {
	mu      sync.Mutex
	notices []Notice
	err     error
}

func (b *fakeBouncer) Notify(ctx context.Context, n *Notice) ([]Outgoing, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	c, err := n.Content()
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	b.notices = append(b.notices, *n)
	if n.Msg.Sender == "" {
		return nil, nil
	}
	return []Outgoing{{
		Envelope: Envelope{Recipients: []Recipient{{Addr: n.Msg.Sender}}},
		Content:  append([]byte("Subject: Undelivered Mail Returned to Sender\r\n\r\n"), body...),
	}}, nil
}

func (b *fakeBouncer) list() []Notice {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.notices)
}

// mailLog collects mail log lines as "prog: text".
type mailLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *mailLog) Logf(prog, format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, prog+": "+fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// find returns the lines containing every one of subs.
func (l *mailLog) find(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func (l *mailLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// openQ opens a store that is closed when the test ends, after any
// manager runManager started on it has stopped.
func openQ(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s := openT(t, dir, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// runManager runs the manager on s until the test ends (or stop is
// called), failing the test if it returns an error.
func runManager(t *testing.T, s *Store, o ManagerOptions) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.RunManager(ctx, o) }()
	// Wait until it runs, so what the test does next is seen by it.
	waitFor(t, "the manager to start", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mgr != nil
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("RunManager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds; only a hang fails (after 20 s), no
// timing is asserted.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// idle waits until the manager has nothing in the active queue and no
// compaction runs.
func idle(t *testing.T, s *Store) {
	t.Helper()
	waitFor(t, "the active queue to empty", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.delivering) == 0 && (s.mgr == nil || len(s.idx.sched) == 0 || s.idx.sched[0].due > s.mgr.now().UnixNano())
	})
}

// oneRcpt is an envelope from sender to the one recipient rcpt.
func oneRcpt(sender, rcpt string, arrival time.Time) *Envelope {
	return &Envelope{Sender: sender, Recipients: []Recipient{{Addr: rcpt}}, Arrival: arrival}
}

func gone(s *Store, id string) func() bool {
	return func() bool { _, ok := s.Get(id); return !ok }
}
