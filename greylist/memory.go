package greylist

import (
	"context"
	"sync"
	"time"
)

// sweepEvery is how often the memory store drops expired records, so
// memory stays bounded by the records alive in one lifetime.
const sweepEvery = time.Minute

// Memory is the embedded store of a single node. It follows the same
// state machines as the Redis scripts (redis.go, limit_redis.go); both
// pass one test suite.
type Memory struct {
	mu        sync.Mutex
	triplets  map[string]triplet
	clients   map[string]counter
	verify    map[string]verifyEntry
	nextSweep time.Time
	limits    memLimits
}

type triplet struct {
	first   time.Time
	passed  bool
	expires time.Time
}

type counter struct {
	n       int
	expires time.Time
}

// NewMemory makes an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{triplets: map[string]triplet{}, clients: map[string]counter{}, verify: map[string]verifyEntry{},
		limits: memLimits{conns: map[string]int{}, events: map[string]*eventLog{}}}
}

// Greylist implements Store.
func (m *Memory) Greylist(_ context.Context, k Key, now time.Time, p Policy) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	ck := k.clientKey()
	c, ok := m.clients[ck]
	if !ok || !now.Before(c.expires) {
		c = counter{}
	}
	if p.AutoAllowClients > 0 && c.n >= p.AutoAllowClients {
		c.expires = now.Add(p.Lifetime)
		m.clients[ck] = c
		return Result{Status: AllowedClient, ClientPasses: c.n}, nil
	}
	tk := k.tripletKey()
	if t, ok := m.triplets[tk]; ok && now.Before(t.expires) {
		if t.passed {
			t.expires = now.Add(p.Lifetime)
			m.triplets[tk] = t
			return Result{Status: Known, FirstSeen: t.first}, nil
		}
		age := now.Sub(t.first)
		if age < p.Delay {
			return Result{Status: TooEarly, FirstSeen: t.first}, nil
		}
		if age <= p.Delay+p.RetryWindow {
			m.triplets[tk] = triplet{first: t.first, passed: true, expires: now.Add(p.Lifetime)}
			c = counter{n: c.n + 1, expires: now.Add(p.Lifetime)}
			m.clients[ck] = c
			return Result{Status: Passed, FirstSeen: t.first, ClientPasses: c.n}, nil
		}
	}
	m.triplets[tk] = triplet{first: now, expires: now.Add(p.Delay + p.RetryWindow)}
	return Result{Status: New, FirstSeen: now}, nil
}

func (m *Memory) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepEvery)
	for k, t := range m.triplets {
		if !now.Before(t.expires) {
			delete(m.triplets, k)
		}
	}
	for k, c := range m.clients {
		if !now.Before(c.expires) {
			delete(m.clients, k)
		}
	}
	for k, e := range m.verify {
		if !now.Before(e.expires) {
			delete(m.verify, k)
		}
	}
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
