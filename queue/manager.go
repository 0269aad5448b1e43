package queue

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// The queue manager: Postfix's qmgr over the log. It takes messages as
// they become due (a new message at once, a deferred one when its next try
// comes), routes each recipient to a (transport, next hop) destination,
// hands the transports batches of recipients within each destination's
// concurrency and recipient limits, records every outcome durably, and
// retries, expires, bounces and removes as Postfix does. Transports,
// routing and notices come in through the small interfaces below, so the
// queue never imports relay, rules or gateway.

// Transport delivers one message to one next hop for some of its
// recipients. relay satisfies it (through an adapter gateway wires in);
// so do the error and discard transports.
type Transport interface {
	// Deliver returns one Result per d.Rcpts entry, in the same order. A
	// missing result counts as a temporary failure.
	Deliver(ctx context.Context, d *Delivery) []Result
}

// Delivery is one message for some recipients at one next hop.
type Delivery struct {
	ID       string
	Envelope *Envelope // shared by the message's deliveries: read only
	Rcpts    []int     // indexes into Envelope.Recipients
	Nexthop  string    // as the router said: a domain, [host]:port, ...
	// Content reads the stored content from its segment; the reader
	// verifies the record checksum and fails at the end if it does not
	// match. Call it once per attempt to send (it may be called again to
	// retry on another host).
	Content func() (io.ReadCloser, error)
	Size    int64 // content bytes
}

// ResultStatus is the outcome for one recipient.
type ResultStatus int

// The outcomes. (They carry a prefix because State already owns the name
// Deferred.) The zero value is no outcome, taken as a temporary failure.
const (
	StatusSent     ResultStatus = iota + 1 // delivered
	StatusDeferred                         // temporary failure: try again later
	StatusBounced                          // permanent failure: return to sender
)

func (r ResultStatus) String() string {
	switch r {
	case StatusSent:
		return "sent"
	case StatusDeferred:
		return "deferred"
	case StatusBounced:
		return "bounced"
	}
	return "unknown"
}

// Result is what became of one recipient.
type Result struct {
	Status ResultStatus
	DSN    string // enhanced status, "2.0.0"; "" = x.0.0 by Status
	Reason string // the log's "(...)" text: the remote reply, or what failed
	Relay  string // "host[ip]:port" talked to; "" = none
	Reply  *Reply // the remote reply Reason quotes; nil when it quotes none
	// ConnSetup and Xfer are the delays' c and d: connection set-up
	// (DNS, connect, greeting, HELO, TLS) and transmission.
	ConnSetup, Xfer time.Duration
	ConnUse         int // the connection's use count when reused (logged from 2)
	// SiteFail says the failure was the next hop's, not the recipient's:
	// no connection, no greeting, a lost session. When every result of a
	// delivery is a temporary failure that either says so or reached no
	// host (Relay ""), the destination is dead for minimal_backoff_time:
	// its other recipients are deferred without trying, as Postfix does.
	SiteFail bool
}

// Router maps a recipient to its transport and next hop (rules/route
// satisfies it through an adapter). An error is a lookup failure: the
// recipient is deferred, never bounced.
type Router interface {
	Route(ctx context.Context, rcpt string) (transport, nexthop string, err error)
}

// SenderRouter is a Router whose answer may also depend on the envelope
// sender (sender_dependent_relayhost_maps, ...); the manager asks it that
// way when the Router has it.
type SenderRouter interface {
	RouteFrom(ctx context.Context, sender, rcpt string) (transport, nexthop string, err error)
}

// Bouncer turns final failures and long delays into notifications; a
// separate package composes the DSN text, the manager only calls it.
type Bouncer interface {
	// Notify is called once per message attempt with the recipients that
	// failed for good (bounced, or expired) and those delayed past
	// delay_warning_time. It returns the messages to queue (DSNs,
	// postmaster notices), each with its own envelope and content, which
	// the manager appends to the store before it records the failures: a
	// crash in between sends a notice twice, never not at all. An error
	// leaves the recipients queued, to be tried (and reported) again.
	Notify(ctx context.Context, n *Notice) ([]Outgoing, error)
}

// Notice is what Notify reports on.
type Notice struct {
	Msg    Message      // the message as queued, reasons of earlier attempts included
	Failed []FailedRcpt // failed for good: Action "failed"
	// Delayed lists the recipients delayed past delay_warning_time;
	// Delays has the same recipients, in order, with their last delay
	// (Action "delayed").
	Delayed []int
	Delays  []FailedRcpt
	Content func() (io.ReadCloser, error)
}

// FailedRcpt is one recipient in a notice.
type FailedRcpt struct {
	Index  int    // into Msg.Recipients
	DSN    string // enhanced status: "5.1.1"; an expired recipient keeps its last 4.x.x
	Reason string // the last reply or failure
	Relay  string // the host that said so, "" if none
	Reply  *Reply // the remote reply Reason quotes, nil if none
	Action string // DSN action: "failed" (bounced, expired) or "delayed"
}

// Outgoing is a message a Bouncer wants queued.
type Outgoing struct {
	Envelope Envelope // ID "" = a new one; Arrival zero = now
	Content  []byte   // CRLF
	// Label names it in the bounce log line "ID: <Label>: NEWID", e.g.
	// "postmaster non-delivery notification"; "" = "sender non-delivery
	// notification", or "sender delay notification" for a notice about
	// delays only.
	Label string
}

// Logger writes Postfix-shaped mail log lines for a program ("qmgr",
// "smtp", "error", "bounce"); gateway's MailLog satisfies it.
type Logger interface {
	Logf(prog, format string, args ...any)
}

// ManagerOptions configure RunManager. Zero durations and limits take
// Postfix's defaults, except the two lifetimes, where 0 means "try once"
// as in main.cf: set them (DefaultQueueLifetime) unless that is meant.
type ManagerOptions struct {
	// Transports by name ("smtp", "relay", "error", "discard", ...). A
	// route to a name not here is deferred: "mail transport unavailable".
	Transports map[string]Transport
	Router     Router  // nil: every recipient goes to "smtp" at its domain
	Bouncer    Bouncer // nil: failures are recorded, nobody is told
	Log        Logger  // nil: no mail log

	// <transport>_destination_concurrency_limit (default 20) and
	// <transport>_destination_recipient_limit (default 50); nil or a
	// result below 1 means the default.
	DestinationConcurrency    func(transport string) int
	DestinationRecipientLimit func(transport string) int

	MinimalBackoff time.Duration // minimal_backoff_time, 300s
	MaximalBackoff time.Duration // maximal_backoff_time, 4000s
	QueueRunDelay  time.Duration // queue_run_delay, 300s

	MaximalQueueLifetime time.Duration // maximal_queue_lifetime (5d); 0 = try once
	BounceQueueLifetime  time.Duration // bounce_queue_lifetime (5d), for null-sender mail; 0 = try once
	DelayWarningTime     time.Duration // delay_warning_time; 0 = no warnings
	SoftBounce           bool          // soft_bounce: bounces become deferrals

	ActiveLimit int // qmgr_message_active_limit, 20000

	// DefaultFilterNexthop is default_filter_nexthop: where a content
	// filter named without a next hop sends mail ("": the recipient's
	// domain).
	DefaultFilterNexthop string

	// Agent names the delivery agent that logs a transport's delivery
	// lines (the "smtp" in postgate/smtp[pid]); nil: "smtp" for "smtp" and
	// "relay", the transport's own name otherwise.
	Agent func(transport string) string

	Now func() time.Time // nil: time.Now

	// alarm, set by tests with a fake clock, returns a channel that
	// receives once the clock reaches at.
	alarm func(at time.Time) <-chan time.Time
}

// Postfix's defaults.
const (
	DefaultDestinationConcurrency    = 20
	DefaultDestinationRecipientLimit = 50
	DefaultMinimalBackoff            = 300 * time.Second
	DefaultMaximalBackoff            = 4000 * time.Second
	DefaultQueueRunDelay             = 300 * time.Second
	DefaultQueueLifetime             = 5 * 24 * time.Hour
	DefaultActiveLimit               = 20000
)

// ErrManagerRunning is returned by RunManager when the Store already has
// a queue manager.
var ErrManagerRunning = errors.New("queue: a queue manager is already running")

// manager is one run of RunManager.
type manager struct {
	s      *Store
	o      ManagerOptions
	ctx    context.Context
	cancel context.CancelCauseFunc
	kick   chan struct{} // something became due, or an attempt ended
	wg     sync.WaitGroup

	mu    sync.Mutex
	dests map[destKey]*dest

	// Owned by the loop.
	timer       *time.Timer
	compacting  bool
	compactTo   uint32 // the segments being compacted: 1..compactTo
	compactDone chan error
	blocked     []string // due while their segment was being compacted
	planned     planKey
	blockedBy   string // the message being delivered that cut the last plan short
	parkAt      int    // messages in memory past which take parks them on disk
	scans       uint64
	segSeen     uint32    // the active segment last seen holding records
	segSince    time.Time // when it was first seen so
	owedDone    chan struct{}

	owed owedChanges // changes not written for want of space
}

// RunManager runs the queue manager until ctx ends, then waits for the
// deliveries in progress (their transports see ctx end) and returns nil;
// or it returns the store's error if the store fails or is closed. Every
// live message is scheduled at the start; new Appends are taken as soon
// as they are durable. Only one manager runs on a Store at a time.
func (s *Store) RunManager(ctx context.Context, o ManagerOptions) error {
	m := newManager(ctx, s, o)
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.mgr != nil {
		s.mu.Unlock()
		return ErrManagerRunning
	}
	s.mgr = m
	now := m.now().UnixNano()
	s.idx.scheduleAll(m.horizon(now), func(e *entry) (int64, bool) {
		switch {
		case e.state == Hold || e.state == Corrupt:
			return 0, false
		}
		// Due at its next try, past or not (0: never tried, so first):
		// what the heap holds beyond the active limit can then wait on
		// disk (trimSchedule), to come back in the same order.
		return e.nextTry, true
	})
	s.queueRun(s.idx.horizon, m.o.ActiveLimit)
	held := s.idx.m.len()
	s.mu.Unlock()
	m.park()
	s.mu.Lock()
	parkedNow := held - s.idx.m.len()
	s.mu.Unlock()
	if parkedNow > 100_000 {
		// Open built the whole index; what parking freed (97 bytes a
		// message) goes back to the system now, not as the scavenger
		// gets to it over minutes.
		debug.FreeOSMemory()
	}
	defer func() {
		s.mu.Lock()
		s.mgr = nil
		s.idx.clearSchedule()
		clear(s.delivering)
		s.mu.Unlock()
	}()
	return m.run()
}

// Flush makes every deferred message due now and revives dead
// destinations, like postqueue -f. Without a running manager it does
// nothing.
func (s *Store) Flush() {
	s.flushWhere(nil, nil)
}

// FlushDomain makes the deferred messages due now that have a recipient
// not yet delivered in domain, and revives dead destinations (ETRN:
// Postfix's flush service for fast_flush_domains). Without a running
// manager it does nothing.
func (s *Store) FlushDomain(domain string) {
	s.mu.Lock()
	var cands []entry
	for e := range s.idx.waiting() {
		if e.state == Deferred {
			cands = append(cands, *e)
		}
	}
	if s.mgr != nil {
		cands = append(cands, s.allParked()...)
	}
	s.mu.Unlock()
	// The envelopes are read outside the lock.
	match := make(map[string]bool)
	segs := make(map[uint32]bool)
	for i, env := range s.envelopes(cands) {
		if cands[i].state == Deferred && cands[i].hasDomain(env, domain) {
			match[cands[i].id] = true
			segs[cands[i].seg] = true
		}
	}
	s.flushWhere(match, segs)
}

// flushWhere makes the scheduled messages ids names (nil: all) due now,
// and revives dead destinations. The messages parked on disk in segs
// come back into memory for it; with segs nil, those ids may name.
func (s *Store) flushWhere(ids map[string]bool, segs map[uint32]bool) {
	s.mu.Lock()
	m := s.mgr
	if m != nil {
		s.unparkWhere(ids, segs)
		if ids == nil {
			s.idx.dueAll(0)
		} else {
			s.idx.dueWhere(0, func(e *entry) bool { return ids[e.id] })
		}
	}
	s.mu.Unlock()
	if m == nil {
		return
	}
	m.mu.Lock()
	for k, d := range m.dests {
		d.deadUntil = time.Time{}
		if d.refs == 0 {
			delete(m.dests, k)
		}
	}
	m.mu.Unlock()
	m.poke()
}

func newManager(ctx context.Context, s *Store, o ManagerOptions) *manager {
	if o.MinimalBackoff <= 0 {
		o.MinimalBackoff = DefaultMinimalBackoff
	}
	if o.MaximalBackoff <= 0 {
		o.MaximalBackoff = DefaultMaximalBackoff
	}
	if o.QueueRunDelay <= 0 {
		o.QueueRunDelay = DefaultQueueRunDelay
	}
	if o.ActiveLimit <= 0 {
		o.ActiveLimit = DefaultActiveLimit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = discardLog{}
	}
	m := &manager{
		s: s, o: o,
		kick:        make(chan struct{}, 1),
		dests:       make(map[destKey]*dest),
		compactDone: make(chan error, 1),
		owedDone:    make(chan struct{}, 1),
		owed:        owedChanges{m: make(map[string][]Change)},
	}
	m.ctx, m.cancel = context.WithCancelCause(ctx)
	return m
}

type discardLog struct{}

func (discardLog) Logf(string, string, ...any) {}

func (m *manager) now() time.Time { return m.o.Now() }

func (m *manager) logf(prog, format string, args ...any) { m.o.Log.Logf(prog, format, args...) }

// poke wakes the loop.
func (m *manager) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// fail stops the manager because the store failed.
func (m *manager) fail(err error) {
	m.logf("qmgr", "warning: queue manager stopping: %v", err)
	m.cancel(err)
}

// applied is told, under s.mu, of every record applied to the index: a
// new message is due at once, so is one released from hold.
func (m *manager) applied(p *pendingRec) {
	x := m.s.idx
	var e *entry
	switch {
	case p.ent != nil:
		// A new message (state records that copy a message forward keep
		// the old record's place in the schedule).
		if p.ent.tail != 0 || x.m.get(p.ent.id) != p.ent {
			return
		}
		e = p.ent
	case p.change.Kind == ChangeRelease:
		e = x.m.get(p.id)
		if e == nil || e.state != Deferred || e.hpos != 0 {
			return
		}
		if _, busy := m.s.delivering[p.id]; busy {
			return // rescheduled when its attempt ends
		}
	default:
		return
	}
	x.schedule(e, m.now().UnixNano())
	m.poke()
}

// run is the loop: take what is due, sleep until the next due time, the
// next queue run or a poke.
func (m *manager) run() error {
	m.timer = time.NewTimer(time.Hour)
	defer m.timer.Stop()
	nextScan := m.now().Add(m.o.QueueRunDelay)
	for {
		now := m.now()
		if !now.Before(nextScan) {
			m.scan(now)
			nextScan = now.Add(m.o.QueueRunDelay)
		}
		full := m.take()
		m.maybeCompact()
		wake := nextScan
		for _, t := range [...]time.Time{m.sealOld(now), m.retryOwed(now)} {
			if !t.IsZero() && t.Before(wake) {
				wake = t
			}
		}
		if !full {
			m.s.mu.Lock()
			if due, ok := m.s.idx.nextDue(); ok && due < wake.UnixNano() {
				wake = time.Unix(0, due)
			}
			m.s.mu.Unlock()
		}
		select {
		case <-m.ctx.Done():
			m.wg.Wait()
			m.forget()
			if err := context.Cause(m.ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		case <-m.kick:
		case err := <-m.compactDone:
			m.compacted(err)
		case <-m.owedDone:
			m.owed.retrying = false
		case <-m.sleep(wake):
		}
	}
}

// sleep returns a channel that receives at (manager clock).
func (m *manager) sleep(at time.Time) <-chan time.Time {
	if m.o.alarm != nil {
		return m.o.alarm(at)
	}
	m.timer.Reset(max(at.Sub(m.now()), 0))
	return m.timer.C
}

// horizon is, for a queue run at now (Unix ns), how far ahead the
// schedule holds messages in its heap: past the next queue run by the
// minimal backoff, so a message whose attempt is cut short, due again
// that long after, is never parked (index.schedule parks only a message
// due at its next try).
func (m *manager) horizon(now int64) int64 {
	return now + int64(m.o.QueueRunDelay) + int64(m.o.MinimalBackoff)
}

// scan is the periodic queue run: it brings into the schedule's heap the
// parked messages due before the new horizon, parks the others on disk
// (park.go), forgets destinations that are neither busy nor dead, and
// lets compaction look again.
func (m *manager) scan(now time.Time) {
	m.s.mu.Lock()
	m.s.queueRun(m.horizon(now.UnixNano()), m.o.ActiveLimit)
	m.s.mu.Unlock()
	m.park()
	m.mu.Lock()
	for k, d := range m.dests {
		if d.refs == 0 && !now.Before(d.deadUntil) {
			delete(m.dests, k)
		}
	}
	m.mu.Unlock()
	m.scans++
}

// keep is the last segment a compaction in progress copies from, whose
// messages stay in memory; 0 if none runs.
func (m *manager) keep() uint32 {
	if m.compacting {
		return m.compactTo
	}
	return 0
}

// park moves what waits in memory to disk (Store.parkOut), then notes
// how many messages memory still holds: parking runs again between
// queue runs once twice the active queue's limit more than the least
// since are held (take), so a long outage's deferrals do not pile up in
// memory until the next queue run.
func (m *manager) park() {
	m.s.parkOut(m.keep(), m.o.ActiveLimit)
	m.s.mu.Lock()
	m.parkAt = m.s.idx.m.len() + 2*m.o.ActiveLimit
	m.s.mu.Unlock()
}

// take starts an attempt for every due message while the active queue
// has room, and reports whether it is full. It first brings in messages
// parked on disk when the heap runs low, and parks those waiting in
// memory when they have piled up.
func (m *manager) take() (full bool) {
	s := m.s
	s.mu.Lock()
	held := s.idx.m.len()
	s.mu.Unlock()
	// Twice the limit over the least memory held since parking last ran.
	piled := held > m.parkAt
	m.parkAt = min(m.parkAt, held+2*m.o.ActiveLimit)
	if piled {
		m.park()
	}
	now := m.now()
	var due []*attempt
	s.mu.Lock()
	if len(s.idx.sched) < m.o.ActiveLimit/2 {
		s.bringIn(m.o.ActiveLimit)
	}
	for {
		if len(s.delivering) >= m.o.ActiveLimit {
			full = true
			break
		}
		e := s.idx.popDue(now.UnixNano())
		if e == nil {
			break
		}
		if _, busy := s.delivering[e.id]; busy || e.state == Hold || e.state == Corrupt {
			continue
		}
		if m.compacting && e.seg <= m.compactTo {
			m.blocked = append(m.blocked, e.id)
			continue
		}
		s.delivering[e.id] = struct{}{}
		due = append(due, &attempt{ent: *e, pickup: now})
	}
	s.mu.Unlock()
	for _, a := range due {
		m.wg.Add(1)
		go m.attempt(a)
	}
	return full
}

// done ends an attempt: the message leaves the active queue and, if it is
// still queued and not held, waits for its next try.
func (m *manager) done(a *attempt) {
	s := m.s
	now := m.now().UnixNano()
	s.mu.Lock()
	delete(s.delivering, a.id)
	if e := s.idx.m.get(a.id); e != nil && m.ctx.Err() == nil && (e.state == Active || e.state == Deferred) {
		due := e.nextTry
		if due <= now {
			// Nothing was deferred (the attempt was cut short): never
			// retry at once.
			due = now + int64(m.o.MinimalBackoff)
		}
		s.idx.schedule(e, due)
	}
	s.mu.Unlock()
	m.poke()
}

// destKey is a destination: where one transport delivers for a next hop.
type destKey struct{ transport, nexthop string }

// dest is a destination's in-memory state.
type dest struct {
	slots     chan struct{} // one per delivery in flight: the concurrency limit
	refs      int           // deliveries holding or waiting for a slot
	deadUntil time.Time
	// deadAs is the failure that killed it: its recipients are deferred
	// with it, remote reply included, as Postfix's qmgr defers them with
	// the delivery agent's whole status.
	deadAs Result
}

// dest returns the destination for k, held until release.
func (m *manager) dest(k destKey) *dest {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.dests[k]
	if d == nil {
		n := DefaultDestinationConcurrency
		if f := m.o.DestinationConcurrency; f != nil {
			if v := f(k.transport); v > 0 {
				n = v
			}
		}
		d = &dest{slots: make(chan struct{}, n)}
		m.dests[k] = d
	}
	d.refs++
	return d
}

func (m *manager) release(k destKey, d *dest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d.refs--; d.refs == 0 && !m.now().Before(d.deadUntil) && m.dests[k] == d {
		delete(m.dests, k)
	}
}

// dead reports whether a destination is suspended, and the failure that
// suspended it.
func (m *manager) dead(d *dest) (Result, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.now().Before(d.deadUntil) {
		return d.deadAs, true
	}
	return Result{}, false
}

func (m *manager) kill(d *dest, failed Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d.deadUntil = m.now().Add(m.o.MinimalBackoff)
	d.deadAs = Result{DSN: failed.DSN, Reason: failed.Reason, Reply: failed.Reply}
}

func (m *manager) recipientLimit(transport string) int {
	if f := m.o.DestinationRecipientLimit; f != nil {
		if v := f(transport); v > 0 {
			return v
		}
	}
	return DefaultDestinationRecipientLimit
}

func (m *manager) agent(transport string) string {
	if m.o.Agent != nil {
		if a := m.o.Agent(transport); a != "" {
			return a
		}
	}
	if transport == "relay" {
		return "smtp"
	}
	return transport
}

// route returns where a recipient of env goes. A content filter
// overrides the address resolver (Postfix's qmgr): every recipient goes
// to the filter's transport and next hop.
func (m *manager) route(ctx context.Context, env *Envelope, rcpt string) (transport, nexthop string, err error) {
	if env.Filter != "" {
		transport, nexthop, _ = strings.Cut(env.Filter, ":")
		if nexthop == "" {
			nexthop = m.o.DefaultFilterNexthop
		}
		if nexthop == "" {
			nexthop = rcpt[strings.LastIndexByte(rcpt, '@')+1:]
		}
		return transport, nexthop, nil
	}
	if sr, ok := m.o.Router.(SenderRouter); ok {
		return sr.RouteFrom(ctx, env.Sender, rcpt)
	}
	if m.o.Router != nil {
		return m.o.Router.Route(ctx, rcpt)
	}
	return "smtp", rcpt[strings.LastIndexByte(rcpt, '@')+1:], nil
}

// nextTry is when a message that arrived at arrival and was deferred at
// now is tried again: its age, within the backoff bounds, from now.
func (m *manager) nextTry(arrival, now time.Time) time.Time {
	age := time.Duration(0)
	if !arrival.IsZero() {
		age = now.Sub(arrival)
	}
	return now.Add(max(min(age, m.o.MaximalBackoff), m.o.MinimalBackoff))
}

// lifetime is how long a message may stay queued.
func (m *manager) lifetime(sender string) time.Duration {
	if sender == "" {
		return m.o.BounceQueueLifetime
	}
	return m.o.MaximalQueueLifetime
}
