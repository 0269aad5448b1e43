package greylist

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultLeaseTTL is how long a connection counts in Redis after its node
// last renewed it: a node that crashed stops counting that much later.
const defaultLeaseTTL = time.Minute

// leases are the open connections this node counts in Redis, renewed
// every third of their lifetime until Disconnect ends them.
type leases struct {
	ttl  time.Duration
	node string // this process's lease prefix

	mu     sync.Mutex
	seq    uint64
	open   map[string]map[string]bool // conn key -> lease members
	cancel context.CancelFunc         // ends the renewal, nil before the first lease
	done   chan struct{}
}

func newLeases(ttl time.Duration) *leases {
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	b := make([]byte, 8)
	rand.Read(b)
	return &leases{ttl: ttl, node: hex.EncodeToString(b), open: map[string]map[string]bool{}}
}

// limitLua is what every limit script starts with: the server's clock (one
// clock for every node; effects replication, which Redis before 7 needs
// for a script that reads TIME and writes), and the sliding window kept
// as a list of event times, newest first, at most the limit long.
const limitLua = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function over(key, n, per)
  if n <= 0 or redis.call('LLEN', key) < n then return false end
  return tonumber(redis.call('LINDEX', key, n - 1)) > now - per
end
local function record(key, n, per)
  redis.call('LPUSH', key, now)
  redis.call('LTRIM', key, 0, n - 1)
  redis.call('PEXPIRE', key, per)
end
`

// connectScript is Memory.Connect. A lease is a member of the conn key's
// sorted set scored by when it expires.
//
// KEYS: conn key, rate key. ARGV: count limit, rate limit, rate window
// (ms), lease lifetime (ms), lease member. Answer: {0} let through, {1, n}
// over the count limit, {2, n} over the rate limit.
var connectScript = redis.NewScript(limitLua + `
local count, n, per, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if count > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local open = redis.call('ZCARD', KEYS[1])
  if open >= count then return {1, open + 1} end
end
if over(KEYS[2], n, per) then return {2, n + 1} end
if n > 0 then record(KEYS[2], n, per) end
if count > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {0, 0}
`)

// eventScript is Memory.Event. KEYS: rate key. ARGV: limit, window (ms).
// Answer: 0 let through, else the events in the window with this one.
var eventScript = redis.NewScript(limitLua + `
local n, per = tonumber(ARGV[1]), tonumber(ARGV[2])
if over(KEYS[1], n, per) then return n + 1 end
record(KEYS[1], n, per)
return 0
`)

// renewLua extends this node's leases of one conn key; a lease that
// expired meanwhile (Redis was away longer than its lifetime) stays gone,
// so an error undercounts, never locks a client out. KEYS: conn key.
// ARGV: lifetime (ms), members.
const renewLua = limitLua + `
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
`

// Connect implements Limiter: one EVALSHA.
func (r *Redis) Connect(ctx context.Context, name string, l ConnLimits) (Conn, error) {
	if l.Count <= 0 && l.Rate.N <= 0 {
		return Conn{Allowed: true}, nil
	}
	c := Conn{Allowed: true, name: name}
	if l.Count > 0 {
		c.lease = r.leases.next()
	}
	vals, err := connectScript.Run(ctx, r.client, []string{connKey(name), rateKey(name)},
		l.Count, l.Rate.N, ms(l.Rate.Per), ms(r.leases.ttl), c.lease).Int64Slice()
	if err != nil {
		return Conn{}, fmt.Errorf("state store %s: %w", r.desc, err)
	}
	if len(vals) != 2 {
		return Conn{}, fmt.Errorf("state store %s: connect script answered %d values", r.desc, len(vals))
	}
	switch vals[0] {
	case 1:
		return Conn{Over: "concurrency", N: int(vals[1])}, nil
	case 2:
		return Conn{Over: "rate", N: int(vals[1])}, nil
	}
	if c.lease != "" {
		r.leases.add(ctx, connKey(name), c.lease, r.renew)
	}
	return c, nil
}

// Disconnect implements Limiter: one ZREM. When it fails the lease still
// ends, when its lifetime is over.
func (r *Redis) Disconnect(ctx context.Context, c Conn) error {
	if c.lease == "" {
		return nil
	}
	r.leases.remove(connKey(c.name), c.lease)
	if err := r.client.ZRem(ctx, connKey(c.name), c.lease).Err(); err != nil {
		return fmt.Errorf("state store %s: %w", r.desc, err)
	}
	return nil
}

// Event implements Limiter: one EVALSHA.
func (r *Redis) Event(ctx context.Context, name string, l Rate) (Count, error) {
	if l.N <= 0 {
		return Count{Allowed: true}, nil
	}
	n, err := eventScript.Run(ctx, r.client, []string{rateKey(name)}, l.N, ms(l.Per)).Int64()
	if err != nil {
		return Count{}, fmt.Errorf("state store %s: %w", r.desc, err)
	}
	return Count{Allowed: n == 0, N: int(n)}, nil
}

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

func (ls *leases) next() string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.seq++
	return ls.node + ":" + strconv.FormatUint(ls.seq, 36)
}

// add remembers a lease to renew; the first one starts the renewal, which
// runs until stop.
func (ls *leases) add(ctx context.Context, key, member string, renew func(ctx context.Context, open map[string][]string)) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.open[key] == nil {
		ls.open[key] = map[string]bool{}
	}
	ls.open[key][member] = true
	if ls.cancel != nil {
		return
	}
	// The renewal belongs to the store, not to the session that opened
	// the first lease: it ends with Close. (A store that never counts
	// connections never starts it.)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ls.cancel, ls.done = cancel, make(chan struct{})
	go func() {
		defer close(ls.done)
		tick := time.NewTicker(ls.ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				renew(ctx, ls.snapshot())
			}
		}
	}()
}

func (ls *leases) remove(key, member string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	delete(ls.open[key], member)
	if len(ls.open[key]) == 0 {
		delete(ls.open, key)
	}
}

func (ls *leases) snapshot() map[string][]string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make(map[string][]string, len(ls.open))
	for key, members := range ls.open {
		for m := range members {
			out[key] = append(out[key], m)
		}
	}
	return out
}

// stop ends the renewal; the leases then expire in Redis by themselves.
func (ls *leases) stop() {
	ls.mu.Lock()
	cancel, done := ls.cancel, ls.done
	ls.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// renew extends the open leases, in one pipeline (go-redis splits it per
// Cluster node). A failure is not reported: the next round tries again,
// and meanwhile a lease can only expire early.
func (r *Redis) renew(ctx context.Context, open map[string][]string) {
	if len(open) == 0 {
		return
	}
	pipe := r.client.Pipeline()
	for key, members := range open {
		args := []any{ms(r.leases.ttl)}
		for _, m := range members {
			args = append(args, m)
		}
		pipe.Eval(ctx, renewLua, []string{key}, args...)
	}
	pipe.Exec(ctx)
}
