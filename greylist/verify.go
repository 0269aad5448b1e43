package greylist

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// VerifyCache is the address verification cache (Postfix's verify(8)
// with its address_verify_map), kept in the store so that the nodes
// sharing a Redis store share what their probes found. Its state machine
// is verify(8)'s: a record holds a status, when a probe was last sent,
// when an answer last came, and the answer's text.
type VerifyCache interface {
	// VerifyQuery says what is known of addr at now; an unknown or
	// expired address is VerifyTodo "Address verification in progress".
	// probe reports that the caller must send a probe now: the record
	// is due for a refresh and no probe was sent in the last
	// p.ProbeTTL. The claim is atomic, so of the nodes asking at once
	// only one probes.
	VerifyQuery(ctx context.Context, addr string, now time.Time, p VerifyPolicy) (r VerifyRecord, probe bool, err error)
	// VerifyUpdate records a probe's answer. A failure does not replace
	// a deliverable record before it expires (verify(8)'s robustness
	// rule): the address is probed again at the next query instead.
	VerifyUpdate(ctx context.Context, addr string, r VerifyRecord, now time.Time, p VerifyPolicy) error
}

// VerifyStatus is what a probe found (Postfix's DEL_RCPT_STAT_*).
type VerifyStatus int

const (
	VerifyTodo   VerifyStatus = iota // no answer yet
	VerifyOK                         // deliverable
	VerifyDefer                      // the next hop answered with a temporary failure
	VerifyBounce                     // undeliverable
)

// VerifyRecord is an address's status and the text that explains it.
type VerifyRecord struct {
	Status VerifyStatus
	Text   string
}

// verifyInProgress is the text of an address with no answer yet.
const verifyInProgress = "Address verification in progress"

// VerifyPolicy is how long answers count (address_verify_*_time).
type VerifyPolicy struct {
	PositiveExpire  time.Duration // a deliverable answer is forgotten after this (31d)
	PositiveRefresh time.Duration // ... and probed again after this (7d)
	NegativeExpire  time.Duration // an undeliverable answer is forgotten after this (3d)
	NegativeRefresh time.Duration // ... and probed again after this (3h)
	// ProbeTTL: a probe without an answer after this is taken as lost
	// (verify(8)'s fixed 1000 s; 0 means that).
	ProbeTTL time.Duration
}

// DefaultProbeTTL is verify(8)'s PROBE_TTL.
const DefaultProbeTTL = 1000 * time.Second

func (p VerifyPolicy) probeTTL() time.Duration {
	if p.ProbeTTL <= 0 {
		return DefaultProbeTTL
	}
	return p.ProbeTTL
}

// verifyKey is an address's record key; addresses are compared without
// case.
func verifyKey(addr string) string { return "postgate:verify:" + strings.ToLower(addr) }

// verifyEntry is a record as stored: times in Unix milliseconds, 0 for
// none (verify(8)'s "status:probed:updated:text").
type verifyEntry struct {
	status          VerifyStatus
	probed, updated int64
	text            string
	expires         time.Time // the memory store's expiry
}

// VerifyQuery implements VerifyCache.
func (m *Memory) VerifyQuery(_ context.Context, addr string, now time.Time, p VerifyPolicy) (VerifyRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	k := verifyKey(addr)
	ms, ttl := now.UnixMilli(), p.probeTTL().Milliseconds()
	e, ok := m.verify[k]
	if !ok || !now.Before(e.expires) || ms-e.probed > ttl && e.expired(ms, p) {
		e = verifyEntry{status: VerifyTodo, text: verifyInProgress}
	}
	r := VerifyRecord{Status: e.status, Text: e.text}
	if ms-e.probed <= ttl || !e.refresh(ms, p) {
		return r, false, nil
	}
	e.probed = ms
	e.expires = time.UnixMilli(e.keepUntil(p))
	m.verify[k] = e
	return r, true, nil
}

// VerifyUpdate implements VerifyCache.
func (m *Memory) VerifyUpdate(_ context.Context, addr string, r VerifyRecord, now time.Time, p VerifyPolicy) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := verifyKey(addr)
	if old, ok := m.verify[k]; ok && now.Before(old.expires) && old.status == VerifyOK && r.Status != VerifyOK {
		return nil
	}
	e := verifyEntry{status: r.Status, updated: now.UnixMilli(), text: r.Text}
	e.expires = time.UnixMilli(e.keepUntil(p))
	m.verify[k] = e
	return nil
}

// expired: the answer is too old to give (verify(8)'s
// POSITIVE_ENTRY_EXPIRED / NEGATIVE_ENTRY_EXPIRED).
func (e verifyEntry) expired(now int64, p VerifyPolicy) bool {
	if e.status == VerifyOK {
		return e.updated+p.PositiveExpire.Milliseconds() < now
	}
	return e.updated+p.NegativeExpire.Milliseconds() < now
}

// refresh: the answer is old enough to probe again.
func (e verifyEntry) refresh(now int64, p VerifyPolicy) bool {
	if e.status == VerifyOK {
		return e.updated+p.PositiveRefresh.Milliseconds() < now
	}
	return e.updated+p.NegativeRefresh.Milliseconds() < now
}

// keepUntil is when the record can go: once its answer expired and no
// probe is outstanding (verify(8)'s cache cleanup rule).
func (e verifyEntry) keepUntil(p VerifyPolicy) int64 {
	exp := p.NegativeExpire
	if e.status == VerifyOK {
		exp = p.PositiveExpire
	}
	until := e.probed + p.probeTTL().Milliseconds()
	if e.updated != 0 {
		until = max(until, e.updated+exp.Milliseconds())
	}
	return until
}

// verifyLua is the record's format and the rules of verifyEntry, for the
// scripts. Status 1 is VerifyOK.
const verifyLua = `
local function parse(v)
  if not v then return nil end
  local st, probed, updated, text = string.match(v, '^(%d+):(%d+):(%d+):(.*)$')
  if not st then return nil end
  return {st = tonumber(st), probed = tonumber(probed), updated = tonumber(updated), text = text}
end
local function keep(e, posexp, negexp, ttl)
  local exp = negexp
  if e.st == 1 then exp = posexp end
  local until_ = e.probed + ttl
  if e.updated ~= 0 and e.updated + exp > until_ then until_ = e.updated + exp end
  return until_
end
local function put(key, e, now, posexp, negexp, ttl)
  local px = keep(e, posexp, negexp, ttl) - now
  if px < 1 then px = 1 end
  redis.call('SET', key, e.st .. ':' .. e.probed .. ':' .. e.updated .. ':' .. e.text, 'PX', px)
end
`

// verifyQueryScript is Memory.VerifyQuery. KEYS: the record. ARGV: now,
// positive expire, positive refresh, negative expire, negative refresh,
// probe TTL (ms). Answer: {status, probe (0/1), text}.
var verifyQueryScript = redis.NewScript(verifyLua + `
local now, posexp, postry, negexp, negtry, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local e = parse(redis.call('GET', KEYS[1]))
local function older(pos, neg)
  if e.st == 1 then return e.updated + pos < now end
  return e.updated + neg < now
end
if not e or (now - e.probed > ttl and older(posexp, negexp)) then
  e = {st = 0, probed = 0, updated = 0, text = '` + verifyInProgress + `'}
end
if now - e.probed <= ttl or not older(postry, negtry) then
  return {e.st, 0, e.text}
end
local answer = {e.st, 1, e.text}
e.probed = now
put(KEYS[1], e, now, posexp, negexp, ttl)
return answer
`)

// verifyUpdateScript is Memory.VerifyUpdate. KEYS: the record. ARGV:
// now, status, text, positive expire, negative expire, probe TTL (ms).
var verifyUpdateScript = redis.NewScript(verifyLua + `
local now, st, posexp, negexp, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local old = parse(redis.call('GET', KEYS[1]))
if old and old.st == 1 and st ~= 1 then return 0 end
put(KEYS[1], {st = st, probed = 0, updated = now, text = ARGV[3]}, now, posexp, negexp, ttl)
return 1
`)

// VerifyQuery implements VerifyCache: one EVALSHA.
func (r *Redis) VerifyQuery(ctx context.Context, addr string, now time.Time, p VerifyPolicy) (VerifyRecord, bool, error) {
	vals, err := verifyQueryScript.Run(ctx, r.client, []string{verifyKey(addr)}, now.UnixMilli(),
		ms(p.PositiveExpire), ms(p.PositiveRefresh), ms(p.NegativeExpire), ms(p.NegativeRefresh), ms(p.probeTTL())).Slice()
	if err != nil {
		return VerifyRecord{}, false, fmt.Errorf("state store %s: %w", r.desc, err)
	}
	if len(vals) != 3 {
		return VerifyRecord{}, false, fmt.Errorf("state store %s: verify script answered %d values", r.desc, len(vals))
	}
	st, _ := vals[0].(int64)
	probe, _ := vals[1].(int64)
	text, _ := vals[2].(string)
	return VerifyRecord{Status: VerifyStatus(st), Text: text}, probe == 1, nil
}

// VerifyUpdate implements VerifyCache: one EVALSHA.
func (r *Redis) VerifyUpdate(ctx context.Context, addr string, rec VerifyRecord, now time.Time, p VerifyPolicy) error {
	err := verifyUpdateScript.Run(ctx, r.client, []string{verifyKey(addr)}, now.UnixMilli(), int(rec.Status), rec.Text,
		ms(p.PositiveExpire), ms(p.NegativeExpire), ms(p.probeTTL())).Err()
	if err != nil {
		return fmt.Errorf("state store %s: %w", r.desc, err)
	}
	return nil
}
