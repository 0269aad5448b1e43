package queue

import (
	"cmp"
	"io"
	"slices"
	"sync"
	"time"
)

// attempt is one message in the active queue: one pass over the
// recipients it still has.
type attempt struct {
	ent    entry // the index entry when taken (a shallow copy)
	id     string
	env    Envelope
	pickup time.Time
	rcpts  []int // not done when taken

	mu       sync.Mutex
	deferred []FailedRcpt // temporary failures, recorded
	failed   []FailedRcpt // permanent failures, recorded once reported
	finished int          // recipients this attempt recorded done
	gone     bool         // deleted meanwhile
}

// attempt delivers a message to every recipient it has left, then
// reports and records what became of them.
func (m *manager) attempt(a *attempt) {
	defer m.wg.Done()
	defer m.done(a)
	a.id = a.ent.id
	if !m.settleFirst(a) {
		return
	}
	enc, err := m.s.envelope(&a.ent)
	if err != nil {
		m.logf("qmgr", "warning: %s: %v", a.id, err)
		return
	}
	env, err := decodeEnvelope(enc)
	if err != nil {
		return // checked by envelope
	}
	env.ID = a.id
	a.env = env
	done := a.ent.done()
	for i := range env.Recipients {
		if i >= len(done) || !done[i] {
			a.rcpts = append(a.rcpts, i)
		}
	}
	m.logf("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", a.id, printable(env.Sender), a.ent.contentLen(), len(a.rcpts))
	if a.ent.expired {
		// postsuper -e: nothing is tried, everything is returned.
		m.suspend(a, a.rcpts, "4.7.0", "message is administratively expired", nil)
	} else {
		m.dispatch(a)
	}
	if m.ctx.Err() == nil && !a.isGone() {
		m.report(a)
	}
	if a.finishedAll() {
		m.logf("qmgr", "%s: removed", a.id)
	}
}

// dispatch routes the recipients, groups them by destination and runs
// the deliveries, at most the recipient limit in each.
func (m *manager) dispatch(a *attempt) {
	type group struct {
		k     destKey
		rcpts []int
	}
	var groups []*group
	byKey := make(map[destKey]*group)
	for _, i := range a.rcpts {
		transport, nexthop, err := m.route(m.ctx, &a.env, a.env.Recipients[i].Addr)
		if err != nil {
			if m.ctx.Err() != nil {
				return
			}
			m.logf("qmgr", "warning: %s: to=<%s>: address resolver failure: %v", a.id, printable(a.env.Recipients[i].Addr), err)
			m.suspend(a, []int{i}, "4.3.0", "address resolver failure", nil)
			continue
		}
		k := destKey{transport, nexthop}
		g := byKey[k]
		if g == nil {
			g = &group{k: k}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.rcpts = append(g.rcpts, i)
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		tr := m.o.Transports[g.k.transport]
		if tr == nil {
			m.logf("qmgr", "warning: %s: no transport named %q: mail transport unavailable", a.id, g.k.transport)
			m.suspend(a, g.rcpts, "4.3.0", "mail transport unavailable", nil)
			continue
		}
		for batch := range slices.Chunk(g.rcpts, m.recipientLimit(g.k.transport)) {
			wg.Go(func() { m.deliver(a, g.k, tr, batch) })
		}
	}
	wg.Wait()
}

// deliver hands one batch to its transport once the destination has a
// free slot, unless the destination is dead.
func (m *manager) deliver(a *attempt, k destKey, tr Transport, rcpts []int) {
	d := m.dest(k)
	defer m.release(k, d)
	if f, dead := m.dead(d); dead {
		m.suspend(a, rcpts, f.DSN, "delivery temporarily suspended: "+f.Reason, f.Reply)
		return
	}
	select {
	case d.slots <- struct{}{}:
	case <-m.ctx.Done():
		return
	}
	defer func() { <-d.slots }()
	if f, dead := m.dead(d); dead { // it died while we waited
		m.suspend(a, rcpts, f.DSN, "delivery temporarily suspended: "+f.Reason, f.Reply)
		return
	}
	start := m.now()
	res := tr.Deliver(m.ctx, &Delivery{
		ID:       a.id,
		Envelope: &a.env,
		Rcpts:    rcpts,
		Nexthop:  k.nexthop,
		Content:  func() (io.ReadCloser, error) { return m.s.openContent(a.id) },
		Size:     a.ent.contentLen(),
	})
	res = m.record(a, rcpts, res, m.agent(k.transport), start)
	// A message whose content was found damaged failed alone, not its
	// next hop.
	if m.ctx.Err() == nil && siteFailed(res) && !m.s.corrupt(a.id) {
		m.kill(d, res[0])
	}
}

// siteFailed reports whether a delivery failed for its next hop as a
// whole: every recipient deferred for the site's sake or with no host
// reached.
func siteFailed(res []Result) bool {
	for i := range res {
		r := &res[i]
		noHost := r.Relay == "" || r.Relay == "none"
		if r.Status != StatusDeferred || !(r.SiteFail || noHost) {
			return false
		}
	}
	return len(res) > 0
}

// suspend defers recipients without trying them (the queue manager's own
// deferral, logged by the error agent as in Postfix); reply is the remote
// reply the reason quotes, if any.
func (m *manager) suspend(a *attempt, rcpts []int, dsn, why string, reply *Reply) {
	res := make([]Result, len(rcpts))
	for i := range res {
		res[i] = Result{Status: StatusDeferred, DSN: dsn, Reason: why, Reply: reply}
	}
	m.record(a, rcpts, res, "error", time.Time{})
}

// record logs and records the results of one delivery; handoff is when
// the transport got it (zero: no transport did). Bounces are recorded
// only once reported (report). It returns the results as taken: one per
// recipient, soft_bounce and defaults applied.
func (m *manager) record(a *attempt, rcpts []int, res []Result, agent string, handoff time.Time) []Result {
	now := m.now()
	stopping := m.ctx.Err() != nil
	var before, inQmgr time.Duration // the delays' a and b
	if !a.arrival().IsZero() {
		before = max(a.pickup.Sub(a.arrival()), 0)
	}
	if handoff.IsZero() {
		inQmgr = max(now.Sub(a.pickup), 0)
	} else {
		inQmgr = max(handoff.Sub(a.pickup), 0)
	}
	out := make([]Result, len(rcpts))
	var sent []int
	var deferred []FailedRcpt
	for i, ri := range rcpts {
		r := Result{Status: StatusDeferred, DSN: "4.3.0", Reason: "unknown mail transport error"}
		if i < len(res) && res[i].Status >= StatusSent && res[i].Status <= StatusBounced {
			r = res[i]
		}
		if r.Status == StatusBounced && m.o.SoftBounce {
			r.Status, r.DSN = StatusDeferred, softDSN(r.DSN)
		}
		if r.DSN == "" {
			r.DSN = defaultDSN(r.Status)
		}
		if handoff.IsZero() {
			r.ConnSetup, r.Xfer = 0, 0
		}
		out[i] = r
		if stopping && r.Status != StatusSent {
			// Shutting down: the transport was cut short. Only deliveries
			// are worth keeping; the rest is tried at the next start.
			continue
		}
		m.logf(agent, "%s", deliveryLine(a.id, &a.env.Recipients[ri], &r, before, inQmgr))
		switch r.Status {
		case StatusSent:
			sent = append(sent, ri)
		case StatusDeferred:
			deferred = append(deferred, FailedRcpt{Index: ri, DSN: r.DSN, Reason: r.Reason, Relay: r.Relay, Reply: r.Reply, Action: "delayed"})
		case StatusBounced:
			a.mu.Lock()
			a.failed = append(a.failed, FailedRcpt{Index: ri, DSN: r.DSN, Reason: r.Reason, Relay: r.Relay, Reply: r.Reply, Action: "failed"})
			a.mu.Unlock()
		}
	}
	if len(sent) > 0 && m.change(a, Change{Kind: ChangeDelivered, Rcpts: sent}) {
		a.mu.Lock()
		a.finished += len(sent)
		a.mu.Unlock()
	}
	if len(deferred) > 0 {
		until := m.nextTry(a.arrival(), now)
		for why, idx := range byReason(deferred) {
			m.change(a, Change{Kind: ChangeDeferred, Rcpts: idx, Until: until, Reason: why})
		}
		a.mu.Lock()
		a.deferred = append(a.deferred, deferred...)
		a.mu.Unlock()
	}
	return out
}

// defaultDSN is the enhanced status of a result that gave none.
func defaultDSN(st ResultStatus) string {
	switch st {
	case StatusSent:
		return "2.0.0"
	case StatusBounced:
		return "5.0.0"
	}
	return "4.0.0"
}

// softDSN turns a permanent status into a temporary one (soft_bounce).
func softDSN(dsn string) string {
	if len(dsn) > 0 && dsn[0] == '5' {
		return "4" + dsn[1:]
	}
	return dsn
}

// byReason yields the recipients of rs grouped by reason, in order of
// first appearance.
func byReason(rs []FailedRcpt) func(yield func(string, []int) bool) {
	return func(yield func(string, []int) bool) {
		var order []string
		groups := make(map[string][]int)
		for _, r := range rs {
			if _, ok := groups[r.Reason]; !ok {
				order = append(order, r.Reason)
			}
			groups[r.Reason] = append(groups[r.Reason], r.Index)
		}
		for _, why := range order {
			if !yield(why, groups[why]) {
				return
			}
		}
	}
}

// report ends an attempt as Postfix's qmgr does when a message leaves the
// active queue: expired recipients are returned, a delay warning goes out
// once, and every failure is reported (Bouncer) before it is recorded.
func (m *manager) report(a *attempt) {
	a.mu.Lock()
	failed := slices.Clone(a.failed)
	deferred := slices.Clone(a.deferred)
	a.mu.Unlock()
	byIndex := func(x, y FailedRcpt) int { return cmp.Compare(x.Index, y.Index) }
	slices.SortFunc(failed, byIndex)
	slices.SortFunc(deferred, byIndex)

	now := m.now()
	var age time.Duration
	if !a.arrival().IsZero() {
		age = now.Sub(a.arrival())
	}
	sender := printable(a.env.Sender)
	if len(deferred) > 0 && !m.o.SoftBounce && (a.ent.expired || age >= m.lifetime(a.env.Sender)) {
		status := "expired"
		if a.ent.expired {
			status = "force-expired"
		}
		m.logf("qmgr", "%s: from=<%s>, status=%s, returned to sender", a.id, sender, status)
		for _, d := range deferred {
			d.Action = "failed"
			failed = append(failed, d)
		}
		slices.SortFunc(failed, byIndex)
		deferred = nil
	}
	var delayed []FailedRcpt
	if len(deferred) > 0 && m.o.DelayWarningTime > 0 && !a.ent.warned && age >= m.o.DelayWarningTime && m.o.Bouncer != nil {
		delayed = deferred
	}
	if len(failed) == 0 && len(delayed) == 0 {
		return
	}
	if m.o.Bouncer != nil && !m.notify(a, failed, delayed) {
		// Nobody was told: the failed recipients stay queued with their
		// reason, to be tried and reported again.
		until := m.nextTry(a.arrival(), now)
		for why, idx := range byReason(failed) {
			m.change(a, Change{Kind: ChangeDeferred, Rcpts: idx, Until: until, Reason: why})
		}
		return
	}
	for why, idx := range byReason(failed) {
		if m.change(a, Change{Kind: ChangeBounced, Rcpts: idx, Reason: why}) {
			a.mu.Lock()
			a.finished += len(idx)
			a.mu.Unlock()
		}
	}
	if len(delayed) > 0 {
		m.change(a, Change{Kind: ChangeWarned})
	}
}

// notify has the Bouncer report failures and delays, and queues what it
// returns. false: nothing may be recorded as reported.
func (m *manager) notify(a *attempt, failed, delayed []FailedRcpt) bool {
	msg, ok := m.s.Get(a.id)
	if !ok {
		return false
	}
	n := &Notice{
		Msg:     msg,
		Failed:  failed,
		Delays:  delayed,
		Content: func() (io.ReadCloser, error) { return m.s.openContent(a.id) },
	}
	for _, d := range delayed {
		n.Delayed = append(n.Delayed, d.Index)
	}
	outs, err := m.o.Bouncer.Notify(m.ctx, n)
	if err != nil {
		m.logf("qmgr", "warning: %s: cannot make a notification: %v", a.id, err)
		return false
	}
	for i := range outs {
		out := &outs[i]
		env := out.Envelope
		if env.Arrival.IsZero() {
			env.Arrival = m.now()
		}
		if err := m.s.appendNotice(m.ctx, &env, out.Content); err != nil {
			m.logf("qmgr", "warning: %s: cannot queue a notification: %v", a.id, err)
			if m.s.failed() {
				m.fail(err)
			}
			return false
		}
		what := out.Label
		switch {
		case what != "":
		case len(failed) > 0:
			what = "sender non-delivery notification"
		default:
			what = "sender delay notification"
		}
		m.logf("bounce", "%s: %s: %s", a.id, what, env.ID)
	}
	return true
}

func (a *attempt) arrival() time.Time { return a.env.Arrival }

func (a *attempt) isGone() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gone
}

// finishedAll reports whether this attempt recorded every recipient it
// had done, so the message is gone because of it.
func (a *attempt) finishedAll() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.gone && a.finished >= len(a.rcpts) && len(a.rcpts) > 0
}
