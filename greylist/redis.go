package greylist

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the store shared by the nodes of a pool, on one Redis server,
// a Sentinel-managed master or a Cluster (go-redis's universal client).
type Redis struct {
	client redis.UniversalClient
	desc   string // the URL without its password, for errors
	leases *leases
}

// greylistScript is the whole check in one round trip; Memory.Greylist is
// the same state machine. A triplet record is "g<ms>" while pending and
// "p<ms>" once passed, <ms> the first attempt's time.
//
// KEYS: triplet, client pass count. ARGV: now, delay, retry window,
// lifetime (milliseconds), auto-allowlist count.
var greylistScript = redis.NewScript(`
local now, delay, window, life, awl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if awl > 0 then
  local c = tonumber(redis.call('GET', KEYS[2]) or '0')
  if c >= awl then
    redis.call('PEXPIRE', KEYS[2], life)
    return {4, 0, c}
  end
end
local v = redis.call('GET', KEYS[1])
if v then
  local first = tonumber(string.sub(v, 2))
  if string.sub(v, 1, 1) == 'p' then
    redis.call('PEXPIRE', KEYS[1], life)
    return {3, first, 0}
  end
  local age = now - first
  if age < delay then
    return {1, first, 0}
  end
  if age <= delay + window then
    redis.call('SET', KEYS[1], 'p' .. first, 'PX', life)
    local c = redis.call('INCR', KEYS[2])
    redis.call('PEXPIRE', KEYS[2], life)
    return {2, first, c}
  end
end
redis.call('SET', KEYS[1], 'g' .. now, 'PX', delay + window)
return {0, now, 0}
`)

// Greylist implements Store: one EVALSHA (an EVAL the first time a server
// lacks the script).
func (r *Redis) Greylist(ctx context.Context, k Key, now time.Time, p Policy) (Result, error) {
	vals, err := greylistScript.Run(ctx, r.client, []string{k.tripletKey(), k.clientKey()},
		now.UnixMilli(), p.Delay.Milliseconds(), ms(p.RetryWindow), ms(p.Lifetime), p.AutoAllowClients).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("state store %s: %w", r.desc, err)
	}
	if len(vals) != 3 {
		return Result{}, fmt.Errorf("state store %s: greylist script answered %d values", r.desc, len(vals))
	}
	res := Result{Status: Status(vals[0]), ClientPasses: int(vals[2])}
	if res.Status != AllowedClient {
		res.FirstSeen = time.UnixMilli(vals[1])
	}
	return res, nil
}

// Close implements Store. The connections this node still counts expire
// in Redis after their lease's lifetime.
func (r *Redis) Close() error {
	r.leases.stop()
	return r.client.Close()
}
