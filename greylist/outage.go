package greylist

import (
	"sync"
	"sync/atomic"
	"time"
)

// OutageWarnEvery bounds the warnings of a failing store: under an
// outage every check fails, and one line a minute says as much.
const OutageWarnEvery = time.Minute

// Outage follows a store's failures as one check sees them, so it warns
// once per OutageWarnEvery and notes the first success after a failure.
// The zero value is ready; it is safe for concurrent use.
type Outage struct {
	mu      sync.Mutex
	warned  time.Time // last warning
	failing atomic.Bool
}

// Failed notes a failure at now and reports whether to warn.
func (o *Outage) Failed(now time.Time) bool {
	o.failing.Store(true)
	o.mu.Lock()
	defer o.mu.Unlock()
	if now.Sub(o.warned) < OutageWarnEvery {
		return false
	}
	o.warned = now
	return true
}

// Recovered notes a success and reports whether it is the first after a
// failure.
func (o *Outage) Recovered() bool {
	return o.failing.Load() && o.failing.CompareAndSwap(true, false)
}
