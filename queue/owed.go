package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Changes the queue manager could not record for want of space. While the
// disk is full the manager goes on delivering, since delivered mail is how
// space comes back; but a delivery whose "delivered" record is lost would
// happen again. So a change that fails with ErrNoSpace is owed: kept in
// memory, in order, written before anything else is done with its message
// (which is not delivered while it owes more than a deferral) and retried
// every owedRetry. A restart before they are written forgets them, and
// the message is delivered again: the "at worst twice" of a crash.

// owedRetry is how often owed changes are tried again.
const owedRetry = 2 * time.Second

// owedChanges are the changes owed, per message.
type owedChanges struct {
	mu       sync.Mutex // guards m
	m        map[string][]Change
	settling sync.Mutex // one writer at a time: each message's changes in order
	retrying bool       // a retry of them all runs (the loop's)
	next     time.Time  // the next retry (the loop's)
}

// change writes a change for the attempt's message, or owes it; false if
// it was not written now. It is written even while the manager stops: a
// delivery that happened must not happen again.
func (m *manager) change(a *attempt, c Change) bool {
	if m.oweAfter(a.id, c) {
		// Earlier changes are owed: this one goes in after them.
		m.settle(a.id)
		return false
	}
	err := m.s.Change(context.WithoutCancel(m.ctx), a.id, c)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
		a.mu.Lock()
		a.gone = true // deleted meanwhile (postsuper -d), or its content found damaged
		a.mu.Unlock()
	case errors.Is(err, ErrNoSpace):
		m.owed.mu.Lock()
		m.owed.m[a.id] = owe(m.owed.m[a.id], c)
		m.owed.mu.Unlock()
		m.logf("qmgr", "warning: %s: update queue file: %v; the %s record is kept until it can be written", a.id, err, c.Kind)
		m.poke() // schedule the retries
	default:
		m.fail(err)
	}
	return false
}

// oweAfter adds c to the changes owed for id if there are any.
func (m *manager) oweAfter(id string, c Change) bool {
	m.owed.mu.Lock()
	defer m.owed.mu.Unlock()
	if len(m.owed.m[id]) == 0 {
		return false
	}
	m.owed.m[id] = owe(m.owed.m[id], c)
	return true
}

// owe appends c to the changes owed. A deferral replaces the deferrals
// owed before it for none but its own recipients, which it would
// overwrite anyway: a message deferred again and again on a full disk
// owes one deferral or two, not one per attempt. The first change owed is
// kept, as settle may be writing it.
func owe(cs []Change, c Change) []Change {
	if c.Kind == ChangeDeferred && len(cs) > 1 {
		kept := slices.DeleteFunc(cs[1:], func(o Change) bool {
			return o.Kind == ChangeDeferred && covers(c.Rcpts, o.Rcpts)
		})
		cs = cs[:1+len(kept)]
	}
	return append(cs, c)
}

// covers reports whether recipient set a (nil: all) holds all of b.
func covers(a, b []int) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	for _, r := range b {
		if !slices.Contains(a, r) {
			return false
		}
	}
	return true
}

// owes reports whether changes are owed for id (any message, for "").
func (m *manager) owes(id string) bool {
	m.owed.mu.Lock()
	defer m.owed.mu.Unlock()
	if id == "" {
		return len(m.owed.m) > 0
	}
	return len(m.owed.m[id]) > 0
}

// owesDone reports whether a change owed for id is more than a deferral.
func (m *manager) owesDone(id string) bool {
	m.owed.mu.Lock()
	defer m.owed.mu.Unlock()
	return slices.ContainsFunc(m.owed.m[id], func(c Change) bool { return c.Kind != ChangeDeferred })
}

// settle writes the changes owed for id, in order, and reports whether
// none is left. A change that removes the message logs its removal, as
// the attempt that owed it could not.
func (m *manager) settle(id string) bool {
	m.owed.settling.Lock()
	defer m.owed.settling.Unlock()
	ctx := context.WithoutCancel(m.ctx)
	for {
		m.owed.mu.Lock()
		cs := m.owed.m[id]
		if len(cs) == 0 {
			delete(m.owed.m, id)
			m.owed.mu.Unlock()
			return true
		}
		c := cs[0]
		m.owed.mu.Unlock()
		err := m.s.Change(ctx, id, c)
		switch {
		case errors.Is(err, ErrNoSpace):
			return false
		case err == nil:
			m.owed.mu.Lock()
			m.owed.m[id] = m.owed.m[id][1:]
			m.owed.mu.Unlock()
			if _, err := m.s.locate(id); errors.Is(err, ErrNotFound) {
				m.logf("qmgr", "%s: removed", id)
			}
		case errors.Is(err, ErrNotFound):
			m.owed.mu.Lock()
			delete(m.owed.m, id) // deleted meanwhile: nothing more to record
			m.owed.mu.Unlock()
			return true
		default:
			if !errors.Is(err, ErrClosed) {
				m.fail(err)
			}
			return false
		}
	}
}

// settleAll writes every owed change it can.
func (m *manager) settleAll() {
	m.owed.mu.Lock()
	ids := make([]string, 0, len(m.owed.m))
	for id := range m.owed.m {
		ids = append(ids, id)
	}
	m.owed.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		m.settle(id)
	}
}

// retryOwed starts, from the loop, a retry of every owed change when one
// is due, and returns when the next is (zero: nothing owed).
func (m *manager) retryOwed(now time.Time) time.Time {
	if m.owed.retrying || !m.owes("") {
		m.owed.next = time.Time{}
		return time.Time{}
	}
	if m.owed.next.IsZero() {
		m.owed.next = now.Add(owedRetry)
	}
	if now.Before(m.owed.next) {
		return m.owed.next
	}
	m.owed.retrying, m.owed.next = true, time.Time{}
	m.wg.Go(func() {
		m.settleAll()
		m.owedDone <- struct{}{}
	})
	return time.Time{}
}

// settleFirst writes what the attempt's message owes before it is
// delivered, and takes its state afresh; false: it is not to be delivered
// now (gone, held meanwhile, or owing a record whose loss would repeat a
// delivery or a notice). Owing only deferrals, it is delivered all the
// same: on a full disk every deferral fails to be written, and delivering
// is what frees space.
func (m *manager) settleFirst(a *attempt) bool {
	if !m.owes(a.id) {
		return true
	}
	if !m.settle(a.id) && m.owesDone(a.id) {
		return false
	}
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.idx.m.get(a.id)
	if e == nil || e.state == Hold || e.state == Corrupt {
		return false
	}
	a.ent = *e
	return true
}

// forget says, when the manager stops, which messages still owe changes:
// they may be delivered again after a restart.
func (m *manager) forget() {
	m.settleAll()
	m.owed.mu.Lock()
	defer m.owed.mu.Unlock()
	for id, cs := range m.owed.m {
		m.logf("qmgr", "warning: %s: %d state changes not written for want of space are lost; the message may be delivered again", id, len(cs))
	}
}
