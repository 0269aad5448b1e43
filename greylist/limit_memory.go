package greylist

import (
	"context"
	"sync"
	"time"
)

// memLimits is the Limiter state of the memory store: open connections
// per name, and the recent event times per name (the newest Rate.N, all a
// check needs), as the Redis scripts keep them.
type memLimits struct {
	mu        sync.Mutex
	conns     map[string]int
	events    map[string]*eventLog
	nextSweep time.Time
}

type eventLog struct {
	times []time.Time // oldest first, at most the limit's N
	per   time.Duration
}

// over reports whether name already had r.N events in the window ending
// at now.
func (m *memLimits) over(name string, r Rate, now time.Time) bool {
	l := m.events[name]
	return l != nil && len(l.times) >= r.N && now.Sub(l.times[len(l.times)-r.N]) < r.Per
}

// record adds an event at now, keeping the newest r.N.
func (m *memLimits) record(name string, r Rate, now time.Time) {
	l := m.events[name]
	if l == nil {
		l = &eventLog{}
		m.events[name] = l
	}
	l.per = r.Per
	l.times = append(l.times, now)
	if n := len(l.times) - r.N; n > 0 {
		l.times = append(l.times[:0], l.times[n:]...)
	}
}

// sweep drops, at most once a minute, the event logs whose newest event
// left its window, so memory stays bounded by the recent names.
func (m *memLimits) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepEvery)
	for name, l := range m.events {
		if now.Sub(l.times[len(l.times)-1]) >= l.per {
			delete(m.events, name)
		}
	}
}

// Connect implements Limiter.
func (m *Memory) Connect(_ context.Context, name string, l ConnLimits) (Conn, error) {
	now := time.Now()
	ml := &m.limits
	ml.mu.Lock()
	defer ml.mu.Unlock()
	ml.sweep(now)
	if l.Count > 0 && ml.conns[name] >= l.Count {
		return Conn{Over: "concurrency", N: ml.conns[name] + 1}, nil
	}
	if l.Rate.N > 0 && ml.over(name, l.Rate, now) {
		return Conn{Over: "rate", N: l.Rate.N + 1}, nil
	}
	if l.Rate.N > 0 {
		ml.record(name, l.Rate, now)
	}
	c := Conn{Allowed: true, name: name}
	if l.Count > 0 {
		ml.conns[name]++
		c.lease = "memory"
	}
	return c, nil
}

// Disconnect implements Limiter.
func (m *Memory) Disconnect(_ context.Context, c Conn) error {
	if c.lease == "" {
		return nil
	}
	ml := &m.limits
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if ml.conns[c.name]--; ml.conns[c.name] <= 0 {
		delete(ml.conns, c.name)
	}
	return nil
}

// Event implements Limiter.
func (m *Memory) Event(_ context.Context, name string, r Rate) (Count, error) {
	if r.N <= 0 {
		return Count{Allowed: true}, nil
	}
	now := time.Now()
	ml := &m.limits
	ml.mu.Lock()
	defer ml.mu.Unlock()
	ml.sweep(now)
	if ml.over(name, r, now) {
		return Count{N: r.N + 1}, nil
	}
	ml.record(name, r, now)
	return Count{Allowed: true}, nil
}
