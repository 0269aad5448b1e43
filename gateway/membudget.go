package gateway

import (
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// memBudget is postgate_memory_limit: the bytes of message content that
// all sessions together may hold in memory. A session takes from it
// before it grows its in-memory copy of a message and gives back when the
// message is done; a session that cannot take more moves its message to a
// spool file (spool.go). So total memory is bounded, not only per session.
type memBudget struct {
	limit int64
	used  atomic.Int64
	// high: more than half the budget was in use since the last return of
	// memory to the OS.
	high atomic.Bool

	mu       sync.Mutex
	lastFree time.Time // when memory was last returned to the OS
	pending  bool      // a return is scheduled
}

func newMemBudget(limit int64) *memBudget { return &memBudget{limit: limit} }

// take reserves n bytes, or reports false (and reserves nothing) when that
// would pass the limit.
func (b *memBudget) take(n int64) bool {
	used := b.used.Add(n)
	if used > b.limit {
		b.used.Add(-n)
		return false
	}
	if used > b.limit/4 && !b.high.Load() {
		b.high.Store(true)
	}
	return true
}

// give returns n bytes. When a burst is over (the budget was more than a
// quarter used and now is under an eighth), memory goes back to the OS. (A
// half was too high: a burst that arrives slowly may end without its use
// ever passing it again after the first return.)
func (b *memBudget) give(n int64) {
	if b.used.Add(-n) < b.limit/8 && b.high.Load() && b.high.CompareAndSwap(true, false) {
		b.freeOSMemory()
	}
}

// freeInterval spaces the returns of memory to the OS.
const freeInterval = 5 * time.Second

// freeOSMemory returns the memory of a burst to the OS, now or, if it did
// so less than freeInterval ago, then. The big buffers of a burst are
// garbage once it is over, but the garbage collector paces itself by
// allocation, so a quiet server may not collect for minutes, and the
// runtime gives collected memory back only gradually: the process would
// stay near its peak. One forced collection per burst costs a few
// milliseconds of CPU for a small live heap.
func (b *memBudget) freeOSMemory() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending {
		return
	}
	b.pending = true
	time.AfterFunc(time.Until(b.lastFree.Add(freeInterval)), func() {
		debug.FreeOSMemory()
		b.mu.Lock()
		b.lastFree, b.pending = time.Now(), false
		b.mu.Unlock()
	})
}

// setGoMemoryLimit makes the garbage collector work harder as the process
// nears twice postgate_memory_limit: message buffers are large and
// short-lived, and by default the heap may grow to twice what is live
// before a collection, so a burst would leave the process far above the
// budget with garbage. Half is for content, the other half for everything
// else (connections, the queue index, tables, garbage not collected yet).
// The limit is soft: past it the runtime collects more often (at most
// about half the CPU) and never fails an allocation. An admin's GOMEMLIMIT
// wins (a host with a very large queue index may want more).
func setGoMemoryLimit(budget int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(2 * budget)
}
