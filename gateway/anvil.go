package gateway

import (
	"net/netip"
	"sync"
	"time"
)

// anvil counts, per service and client address, the client's open
// connections and the connections it opened in the current time unit, as
// Postfix's anvil(8) server does for smtpd: a window starts at a client's
// first event and its rate restarts once anvil_rate_time_unit has passed
// since then. State lives in this process; the greylisting issue moves it
// behind the shared state store.
type anvil struct {
	unit      time.Duration
	mu        sync.Mutex
	clients   map[anvilKey]*anvilClient
	lastSweep time.Time
}

type anvilKey struct {
	service string
	addr    netip.Addr
}

type anvilClient struct {
	count int       // open connections
	rate  int       // connections opened since start
	start time.Time // when the current rate window began
}

func newAnvil(unit time.Duration) *anvil {
	return &anvil{unit: unit, clients: map[anvilKey]*anvilClient{}, lastSweep: time.Now()}
}

// connect counts a new connection and returns the client's open
// connections and its connection rate, both including this one.
func (a *anvil) connect(service string, addr netip.Addr) (count, rate int) {
	now := time.Now()
	k := anvilKey{service, addr}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(now)
	c := a.clients[k]
	if c == nil {
		c = &anvilClient{start: now}
		a.clients[k] = c
	}
	if now.Sub(c.start) > a.unit {
		c.rate, c.start = 0, now
	}
	c.count++
	c.rate++
	return c.count, c.rate
}

// disconnect ends a connection counted by connect.
func (a *anvil) disconnect(service string, addr netip.Addr) {
	a.mu.Lock()
	if c := a.clients[anvilKey{service, addr}]; c != nil && c.count > 0 {
		c.count--
	}
	a.mu.Unlock()
}

// sweep forgets, at most once a time unit, the clients with no connection
// whose rate window has ended, so the table stays as small as the set of
// recent clients (anvil frees them by timer).
func (a *anvil) sweep(now time.Time) {
	if now.Sub(a.lastSweep) < a.unit {
		return
	}
	a.lastSweep = now
	for k, c := range a.clients {
		if c.count == 0 && now.Sub(c.start) > a.unit {
			delete(a.clients, k)
		}
	}
}
