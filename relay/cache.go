package relay

import (
	"sync"
	"time"
)

// cache holds idle sessions by next hop, each for at most its idle time.
type cache struct {
	mu       sync.Mutex
	sessions map[string][]*session
	closed   bool
}

// take returns the most recently cached session for nexthop, or nil.
func (c *cache) take(nexthop string) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.sessions[nexthop]
	if len(list) == 0 {
		return nil
	}
	s := list[len(list)-1]
	list[len(list)-1] = nil
	if len(list) == 1 {
		delete(c.sessions, nexthop)
	} else {
		c.sessions[nexthop] = list[:len(list)-1]
	}
	s.idle.Stop() // if it already fired, its remove finds nothing
	s.idle = nil
	return s
}

// put caches s under nexthop for idle; false when the cache is closed.
func (c *cache) put(nexthop string, s *session, idle time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.sessions[nexthop] = append(c.sessions[nexthop], s)
	s.idle = time.AfterFunc(idle, func() {
		if c.remove(nexthop, s) {
			s.quit()
		}
	})
	return true
}

// remove takes s out of the cache, reporting whether it was there.
func (c *cache) remove(nexthop string, s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.sessions[nexthop]
	for i, x := range list {
		if x == s {
			list = append(list[:i], list[i+1:]...)
			if len(list) == 0 {
				delete(c.sessions, nexthop)
			} else {
				c.sessions[nexthop] = list
			}
			return true
		}
	}
	return false
}

// close empties the cache for good and returns what it held.
func (c *cache) close() []*session {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var all []*session
	for _, list := range c.sessions {
		for _, s := range list {
			s.idle.Stop()
			all = append(all, s)
		}
	}
	c.sessions = map[string][]*session{}
	return all
}

// release ends a session's use by one delivery: a clean session that may
// serve again is cached, any other one is closed.
func (t *SMTP) release(nexthop string, s *session) {
	o := &t.opts
	reusable := !s.broken && o.ConnectionReuse &&
		(o.MaxReuse == 0 || s.uses <= o.MaxReuse) &&
		time.Since(s.opened) < o.ReuseTimeLimit
	if reusable && t.cache.put(nexthop, s, o.MaxIdle) {
		return
	}
	s.quit()
}
