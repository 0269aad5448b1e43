package rules

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// CacheOptions say how lookups in tables of registered types (the database
// and network tables) are cached and bounded: each such table gets its own
// cache, so a reload, which opens the tables again, starts with empty
// ones. Local tables answer from memory and are not wrapped. The zero
// value caches nothing and adds no bound.
type CacheOptions struct {
	// TTL: how long a found value is served from memory; 0 keeps none.
	TTL time.Duration
	// NegativeTTL: how long "not found" is; 0 keeps none. Errors are never
	// kept: the next lookup asks the server again.
	NegativeTTL time.Duration
	// Timeout bounds one lookup, whatever the table's own timeouts; 0: no
	// bound beyond them.
	Timeout time.Duration
}

// cacheSize is the number of answers kept per table (the least recently
// used goes first): a few MB per table at most.
const cacheSize = 10000

// enabled reports whether a table needs the wrapper at all.
func (o CacheOptions) enabled() bool {
	return o.TTL > 0 || o.NegativeTTL > 0 || o.Timeout > 0
}

// wrap puts the cache and the bound in front of t, spec's table.
func (o CacheOptions) wrap(spec string, t Table) Table {
	if !o.enabled() {
		return t
	}
	c := newCachedTable(spec, t, o, cacheSize)
	if _, named := t.(fmt.Stringer); named {
		return namedCachedTable{c}
	}
	return c
}

// cachedTable serves answers of the table it wraps from memory until they
// expire, and lets concurrent lookups of one key share one query.
type cachedTable struct {
	inner  Table
	spec   string
	opts   CacheOptions
	seed   maphash.Seed
	shards []cacheShard
}

// Shards keep lock contention low; each holds at least minShardSize
// entries so that a small cache stays one exact LRU.
const (
	maxShards    = 16
	minShardSize = 256
)

func newCachedTable(spec string, inner Table, o CacheOptions, size int) *cachedTable {
	size = max(size, 1)
	n := min(max(size/minShardSize, 1), maxShards)
	c := &cachedTable{inner: inner, spec: spec, opts: o, seed: maphash.MakeSeed(), shards: make([]cacheShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.capacity = size / n
		if i < size%n {
			s.capacity++
		}
		s.entries = map[string]*cacheEntry{}
		s.flights = map[string]*flight{}
		s.lru.prev, s.lru.next = &s.lru, &s.lru
	}
	return c
}

// FixedString is the wrapped table's.
func (c *cachedTable) FixedString() bool { return IsFixedString(c.inner) }

// namedCachedTable is a cachedTable over a table that names itself in
// errors (fmt.Stringer), which callers use; one that does not stays so.
type namedCachedTable struct{ *cachedTable }

func (n namedCachedTable) String() string { return n.inner.(fmt.Stringer).String() }

// cacheShard is one part of the cache: an LRU list of answers and the
// lookups in flight, under one mutex.
type cacheShard struct {
	mu       sync.Mutex
	capacity int
	entries  map[string]*cacheEntry
	lru      cacheEntry // sentinel: lru.next is the most recently used
	flights  map[string]*flight
}

type cacheEntry struct {
	key        string
	value      string
	found      bool
	expires    time.Time
	prev, next *cacheEntry
}

// flight is one lookup in progress that several callers may wait for.
type flight struct {
	ctx     context.Context // the table's: bounded by Timeout, ended when no one waits
	cancel  context.CancelFunc
	waiters int
	done    chan struct{} // closed once value, found and err are set
	value   string
	found   bool
	err     error
}

func (c *cachedTable) shard(key string) *cacheShard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// Lookup answers from the cache, else joins the lookup of key in flight or
// starts one. A caller whose ctx ends stops waiting at once; the query is
// cancelled when nobody waits for it any more.
func (c *cachedTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	s := c.shard(key)
	s.mu.Lock()
	if e := s.get(key, time.Now()); e != nil {
		value, found := e.value, e.found
		s.mu.Unlock()
		return value, found, nil
	}
	f := s.flights[key]
	if f == nil || f.ctx.Err() != nil { // one past its bound is not joined
		f = &flight{done: make(chan struct{})}
		// The query serves every caller that joins, so no single
		// caller's end may cancel it; Timeout bounds it instead.
		if base := context.WithoutCancel(ctx); c.opts.Timeout > 0 {
			f.ctx, f.cancel = context.WithTimeout(base, c.opts.Timeout)
		} else {
			f.ctx, f.cancel = context.WithCancel(base)
		}
		s.flights[key] = f
		go c.fetch(s, key, f)
	}
	f.waiters++
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.value, f.found, f.err
	case <-ctx.Done():
		s.leave(key, f)
		return "", false, fmt.Errorf("%s: %w", c.spec, context.Cause(ctx))
	case <-f.ctx.Done():
		// The bound, even for a table that does not watch its context.
		select {
		case <-f.done:
			return f.value, f.found, f.err
		default:
			return "", false, c.timedOut(key)
		}
	}
}

func (c *cachedTable) timedOut(key string) error {
	return fmt.Errorf("%s: lookup of %q: no answer within %v", c.spec, key, c.opts.Timeout)
}

// fetch asks the table and keeps the answer (never an error).
func (c *cachedTable) fetch(s *cacheShard, key string, f *flight) {
	defer f.cancel()
	value, found, err := c.inner.Lookup(f.ctx, key)
	if err != nil && errors.Is(f.ctx.Err(), context.DeadlineExceeded) {
		err = c.timedOut(key) // the table's own message says no more
	}
	s.mu.Lock()
	if s.flights[key] == f {
		delete(s.flights, key)
	}
	if err == nil {
		ttl := c.opts.NegativeTTL
		if found {
			ttl = c.opts.TTL
		}
		if ttl > 0 {
			s.put(key, value, found, time.Now().Add(ttl))
		}
	}
	s.mu.Unlock()
	f.value, f.found, f.err = value, found, err
	close(f.done)
}

// leave is a waiter giving up; the last one cancels the query, and a later
// lookup of the key starts a new one.
func (s *cacheShard) leave(key string, f *flight) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
		if s.flights[key] == f {
			delete(s.flights, key)
		}
	}
}

// get returns key's unexpired entry, now the most recently used, or nil.
func (s *cacheShard) get(key string, now time.Time) *cacheEntry {
	e := s.entries[key]
	if e == nil {
		return nil
	}
	if !now.Before(e.expires) {
		s.remove(e)
		return nil
	}
	s.unlink(e)
	s.pushFront(e)
	return e
}

// put stores an answer, dropping the least recently used one when full.
func (s *cacheShard) put(key, value string, found bool, expires time.Time) {
	if e := s.entries[key]; e != nil {
		s.remove(e)
	}
	if len(s.entries) >= s.capacity {
		s.remove(s.lru.prev)
	}
	e := &cacheEntry{key: key, value: value, found: found, expires: expires}
	s.entries[key] = e
	s.pushFront(e)
}

func (s *cacheShard) remove(e *cacheEntry) {
	s.unlink(e)
	delete(s.entries, e.key)
}

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (s *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}
