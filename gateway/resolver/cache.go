package resolver

import (
	"container/list"
	"sync"
	"time"
)

// cache holds answers until they expire, at most size of them; when full, the least
// recently used answer goes.
type cache struct {
	size int

	mu      sync.Mutex
	entries map[key]*list.Element // of *entry
	lru     list.List             // front: most recently used
}

type entry struct {
	key     key
	ans     *answer
	err     error // a failure, cached briefly (Options.FailureTTL)
	expires time.Time
}

func newCache(size int) *cache {
	return &cache{size: size, entries: make(map[key]*list.Element)}
}

// get gives the answer (or failure) for k unless it is missing or has
// expired at now.
func (c *cache) get(k key, now time.Time) (*answer, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		return nil, nil, false
	}
	c.lru.MoveToFront(el)
	return e.ans, e.err, true
}

func (c *cache) put(k key, ans *answer, err error, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*entry)
		e.ans, e.err, e.expires = ans, err, expires
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(&entry{key: k, ans: ans, err: err, expires: expires})
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*entry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
