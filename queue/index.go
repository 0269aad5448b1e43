package queue

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strings"
)

// entry is what the index keeps per live message: where its record is,
// its lengths and its state, what the scheduler needs; neither its
// content nor its envelope, which are read from the segment when needed
// (envelope.go). It is 64 bytes (a Go size class: every field is sized
// so it stays one); with its ID and its slot in the ID table a message
// costs about 95 bytes, 95 MB for a backlog of a million.
//
// rs is copy-on-write: apply replaces it instead of writing into it, so a
// shallow copy taken under the lock stays valid, and entries with the
// same recipients' state share one (index.shareRcpts).
type entry struct {
	id      string
	nextTry int64      // Unix ns, 0 = none
	rs      *rcptState // nil until a recipient is done or has a reason
	seg     uint32
	off     uint32 // segments are at most 4 GiB (maxSegmentSize)
	bodyLen uint32
	envLen  uint32
	tail    uint32 // state trailer at the end of the body (state records), else 0
	nrcpt   int32
	hpos    int32 // 1 + position in the schedule heap, 0 = not scheduled, or parked
	state   State
	expired bool
	warned  bool
	damage  recordDamage
}

// recordDamage says whether a message's own record is damaged.
type recordDamage uint8

const (
	recordOK recordDamage = iota
	// recordDamaged: the message record itself is damaged, Content
	// returns it raw.
	recordDamaged
	// recordCut: ... and the end of its segment cuts it short.
	recordCut
)

func (e *entry) damaged() bool { return e.damage != recordOK }

// newEntry is the entry of a message record, in no state yet.
func newEntry(r *rawRecord) *entry {
	return &entry{id: r.id, seg: r.seg, off: uint32(r.off), bodyLen: r.bodyLen, envLen: r.envLen}
}

// rcptState is which recipients of a message are done and the last
// reason each failed for; either slice is nil until one is.
type rcptState struct {
	done    []bool
	reasons []string
}

func (e *entry) done() []bool {
	if e.rs == nil {
		return nil
	}
	return e.rs.done
}

func (e *entry) reasons() []string {
	if e.rs == nil {
		return nil
	}
	return e.rs.reasons
}

// hasDomain reports whether a recipient of e not yet done, in its
// encoded envelope env, is in domain.
func (e *entry) hasDomain(env, domain string) bool {
	if env == "" {
		return false
	}
	dec, err := decodeEnvelope(env)
	if err != nil {
		return false
	}
	done := e.done()
	for i, r := range dec.Recipients {
		if i < len(done) && done[i] {
			continue
		}
		if at := strings.LastIndexByte(r.Addr, '@'); at >= 0 && strings.EqualFold(r.Addr[at+1:], domain) {
			return true
		}
	}
	return false
}

// recLen is the size of the entry's record in its segment.
func (e *entry) recLen() int64 { return recOverhead + int64(e.bodyLen) }

// contentLen is the size of the message content.
func (e *entry) contentLen() int64 { return int64(e.bodyLen) - int64(e.envLen) - int64(e.tail) }

// index is the in-memory state rebuilt from the log. Its methods are not
// safe for concurrent use; the Store serializes them.
type index struct {
	m idTable
	// liveBySeg counts live messages per segment of their record, and
	// liveBytes the bytes of those records: the oldest segments can be
	// deleted when their count is zero, and are worth compacting when
	// little of them is live.
	liveBySeg map[uint32]int
	liveBytes map[uint32]int64
	removals  uint64  // records that stopped being live; compaction watches it
	sched     dueHeap // messages waiting for the queue manager, while one runs
	horizon   int64   // ... and due before this (Unix ns); later ones are parked
	// parked holds, per segment, the summary of its messages parked on
	// disk, which m does not hold (park.go); liveBySeg and liveBytes
	// count them.
	parked   map[uint32]*parkGroup
	parkSeed maphash.Seed // for the groups' ID filters
	parkGen  uint64       // the generation of the last state file written
	logf     func(format string, args ...any)
	// lastReason shares one copy of a delay reason among the messages
	// deferred for it: a backlog behind one dead next hop repeats it.
	lastReason string
	lastRcpts  *rcptState // the last one made, for shareRcpts
	damage     Damage     // what reading the log found damaged
	// envs keeps every message's encoded envelope when keepEnvs is set:
	// a read-only snapshot lists them while the daemon may delete their
	// segments.
	envs     map[string]string
	keepEnvs bool
}

func newIndex(logf func(string, ...any)) *index {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &index{
		liveBySeg: make(map[uint32]int),
		liveBytes: make(map[uint32]int64),
		logf:      logf,
		parked:    make(map[uint32]*parkGroup),
		parkSeed:  maphash.MakeSeed(),
		// A random start: a state file from another Store never matches.
		parkGen: rand.Uint64(),
	}
}

func (x *index) add(e *entry) {
	if old := x.m.get(e.id); old != nil {
		// A state record (copy-forward) supersedes the older record of its
		// message; otherwise only a damaged log repeats a live ID. Either
		// way the later record is the newer truth.
		if e.tail == 0 {
			x.logf("queue: %s: queue ID recorded again (segment %d offset %d); the later record wins", e.id, e.seg, e.off)
		}
		x.takeSlot(old, e)
		x.remove(old)
	}
	x.m.put(e)
	x.liveBySeg[e.seg]++
	x.liveBytes[e.seg] += e.recLen()
}

// keepEnvelopes makes the index keep every message's encoded envelope.
func (x *index) keepEnvelopes() {
	x.keepEnvs, x.envs = true, make(map[string]string)
}

// keepEnv keeps a message's encoded envelope when the index keeps them.
func (x *index) keepEnv(id, env string) {
	if x.keepEnvs {
		x.envs[id] = env
	}
}

func (x *index) remove(e *entry) {
	x.m.del(e.id)
	if x.keepEnvs && x.envs[e.id] != "" && x.m.get(e.id) == nil {
		delete(x.envs, e.id)
	}
	x.unschedule(e)
	x.removals++
	if x.liveBySeg[e.seg]--; x.liveBySeg[e.seg] <= 0 {
		delete(x.liveBySeg, e.seg)
		delete(x.liveBytes, e.seg)
	} else {
		x.liveBytes[e.seg] -= e.recLen()
	}
}

// replay applies one record met while reading the log.
func (x *index) replay(r *rawRecord) {
	if r.off >= maxSegmentSize && r.typ != recChange {
		// Only a log written with segments over 4 GiB has one; the index
		// cannot place it (maxSegmentSize).
		x.damage.Records++
		x.logf("%s: message record at offset %d of segment %d, past the 4 GiB a segment may hold: dropped", r.id, r.off, r.seg)
		return
	}
	switch r.typ {
	case recMessage:
		if !r.ok {
			x.namedDamage(r, "message", movedToCorrupt)
			x.addCorrupt(r)
			return
		}
		n, ok := checkEnvelope(r.body[:r.envLen])
		if !ok {
			x.damage.Records++
			x.logf("%s: unreadable envelope in message record in segment %d at offset %d: %s", r.id, r.seg, r.off, movedToCorrupt)
			x.addCorrupt(r)
			return
		}
		e := newEntry(r)
		e.nrcpt = int32(n)
		x.add(e)
		x.keepEnv(r.id, string(r.body[:r.envLen]))
	case recState:
		x.replayState(r)
	case recChange:
		if !r.ok {
			x.changeDamaged(r)
			return
		}
		c, at, err := decodeChange(string(r.body))
		if err != nil {
			x.changeDamaged(r)
			return
		}
		x.apply(r.id, &c, at)
	default:
		// A record type from a newer postgate: its length is trusted, skip it.
		x.logf("queue: %s: unknown record type %d (segment %d offset %d) skipped", r.id, r.typ, r.seg, r.off)
	}
}

// movedToCorrupt ends the log line of a damaged record that puts its
// message in the corrupt queue (Postfix's qmgr says "saving corrupt file").
const movedToCorrupt = "moved to the corrupt queue"

// namedDamage counts and logs a record that its header names but whose
// body cannot be trusted, saying what became of it.
func (x *index) namedDamage(r *rawRecord, kind, outcome string) {
	x.damage.Records++
	if r.torn {
		outcome += " (the end of the newest segment: most likely a write the system stopped in, never acknowledged)"
	}
	if r.cut {
		x.logf("%s: %s record cut short in segment %d at offset %d (%d of its %d bytes are left): %s",
			r.id, kind, r.seg, r.off, recHeaderSize+len(r.body), recOverhead+int(r.bodyLen), outcome)
		return
	}
	x.logf("%s: damaged %s record in segment %d at offset %d: %s", r.id, kind, r.seg, r.off, outcome)
}

// addCorrupt adds the message of a damaged message record to the corrupt
// queue: its header vouches for its ID and place, nothing else. Its
// envelope is shown when it is all there and decodes, unverified, so an
// admin sees whose mail it is; nothing delivers a corrupt message.
func (x *index) addCorrupt(r *rawRecord) {
	e := newEntry(r)
	e.state, e.damage = Corrupt, recordDamaged
	if r.cut {
		e.damage = recordCut
	}
	if int(r.envLen) <= len(r.body) {
		if n, ok := checkEnvelope(r.body[:r.envLen]); ok {
			e.nrcpt = int32(n)
			x.add(e)
			x.keepEnv(r.id, string(r.body[:r.envLen]))
			return
		}
	}
	x.add(e)
}

// changeDamaged handles a change record whose body cannot be trusted: the
// message it names may be in any state, so it goes to corrupt for an admin
// to look at rather than being delivered (again) or forgotten.
func (x *index) changeDamaged(r *rawRecord) {
	e := x.m.get(r.id)
	if e == nil {
		x.namedDamage(r, "change", "dropped: its message is no longer queued")
		return
	}
	x.namedDamage(r, "change", "message "+movedToCorrupt)
	e.state = Corrupt
}

// checkChange validates a change before it is logged.
func (x *index) checkChange(id string, c *Change) error {
	e := x.m.get(id)
	if e == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if c.Kind < ChangeDelivered || c.Kind > ChangeWarned {
		return fmt.Errorf("queue: %s: unknown change kind %d", id, c.Kind)
	}
	if e.state == Corrupt && c.Kind != ChangeDelete {
		return fmt.Errorf("%w: %s is in the corrupt queue; it can only be deleted", ErrCorrupt, id)
	}
	for _, r := range c.Rcpts {
		if r < 0 || r >= int(e.nrcpt) {
			return fmt.Errorf("queue: %s: no recipient #%d (it has %d)", id, r, e.nrcpt)
		}
	}
	return nil
}

// apply applies a change in log order. It is the only interpreter of
// changes, used live and at recovery alike, so a restart rebuilds exactly
// the state the daemon had.
func (x *index) apply(id string, c *Change, at int64) {
	_ = at // recorded for logs; no state depends on it yet
	e := x.m.get(id)
	if e == nil {
		return // changes outlive their message, or its record was lost
	}
	if x.change(e, c) {
		x.remove(e)
	}
}

// change applies c to e and reports whether the message is gone. It only
// writes e's own fields (done and reasons copy-on-write), so it also
// serves to work out the state of a message that changes still in flight
// will leave (see stateAhead).
func (x *index) change(e *entry, c *Change) (gone bool) {
	switch c.Kind {
	case ChangeDelivered, ChangeBounced:
		done := cloneOr(e.done(), int(e.nrcpt))
		reasons := e.reasons()
		why := x.intern(c.Reason)
		bounced := c.Kind == ChangeBounced && why != ""
		if bounced {
			reasons = cloneOr(reasons, int(e.nrcpt))
		}
		eachRcpt(c.Rcpts, int(e.nrcpt), func(i int) {
			done[i] = true
			if bounced {
				reasons[i] = why
			}
		})
		e.rs = x.shareRcpts(done, reasons)
		return !slices.Contains(done, false)
	case ChangeDeferred:
		reasons := cloneOr(e.reasons(), int(e.nrcpt))
		why := x.intern(c.Reason)
		eachRcpt(c.Rcpts, int(e.nrcpt), func(i int) { reasons[i] = why })
		e.rs = x.shareRcpts(e.done(), reasons)
		e.nextTry = nanos(c.Until)
		if e.state == Active {
			e.state = Deferred
		}
	case ChangeHold:
		if e.state != Corrupt {
			e.state = Hold
		}
	case ChangeRelease:
		if e.state == Hold {
			e.state = Deferred // like postsuper -H
		}
	case ChangeDelete:
		return true
	case ChangeExpire:
		e.expired = true
	case ChangeWarned:
		e.warned = true
	}
	return false
}

// intern returns a copy of a reason that is not part of a larger string
// (a change body) and is shared with the previous identical reason.
func (x *index) intern(s string) string {
	if s != x.lastReason {
		x.lastReason = strings.Clone(s)
	}
	return x.lastReason
}

// shareRcpts returns a recipients' state of done and reasons, the last
// one made if that is equal: copy-on-write lets entries share one, and a
// backlog deferred for one reason repeats the same state message after
// message.
func (x *index) shareRcpts(done []bool, reasons []string) *rcptState {
	if l := x.lastRcpts; l != nil && (l.done == nil) == (done == nil) && (l.reasons == nil) == (reasons == nil) &&
		slices.Equal(l.done, done) && slices.Equal(l.reasons, reasons) {
		return l
	}
	x.lastRcpts = &rcptState{done: done, reasons: reasons}
	return x.lastRcpts
}

func cloneOr[T any](s []T, n int) []T {
	if s == nil {
		return make([]T, n)
	}
	return slices.Clone(s)
}

// eachRcpt calls f for each valid index in rcpts, or for all n when nil.
func eachRcpt(rcpts []int, n int, f func(int)) {
	if rcpts == nil {
		for i := range n {
			f(i)
		}
		return
	}
	for _, i := range rcpts {
		if i >= 0 && i < n {
			f(i)
		}
	}
}

// message builds the public view of an entry whose encoded envelope is
// enc ("" when it cannot be read). It only reads e's fields, so it runs on
// a shallow copy outside the lock.
func (e *entry) message(enc string) Message {
	var env Envelope
	if enc != "" {
		env, _ = decodeEnvelope(enc) // checked when read
	}
	env.ID = e.id
	n := len(env.Recipients)
	m := Message{
		Envelope: env,
		State:    e.state,
		Size:     e.contentLen(),
		Done:     make([]bool, n),
		Reasons:  make([]string, n),
		NextTry:  fromNanos(e.nextTry),
		Expired:  e.expired,
		Warned:   e.warned,
	}
	if e.state == Corrupt {
		m.Damage = e.damageText(enc != "")
	}
	copy(m.Done, e.done())
	copy(m.Reasons, e.reasons())
	return m
}

// damageText says why a corrupt message is corrupt, for admins' listings;
// the mail log has the details of a damaged change.
func (e *entry) damageText(withEnv bool) string {
	what := "damaged message record"
	switch {
	case !e.damaged():
		return "damaged change record"
	case e.damage == recordCut:
		what = "message record cut short"
	}
	unverified := ""
	if withEnv {
		unverified = ", envelope unverified"
	}
	return fmt.Sprintf("%s in segment %d at offset %d%s", what, e.seg, e.off, unverified)
}

// liveThrough returns the live records in segments up to through, in log
// order.
func (x *index) liveThrough(through uint32) []*entry {
	var es []*entry
	for e := range x.m.all() {
		if e.seg <= through {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	return es
}

// snapshot copies the entries in log (arrival) order.
func (x *index) snapshot() []entry {
	es := make([]entry, 0, x.m.len())
	for e := range x.m.all() {
		es = append(es, *e)
	}
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	return es
}

// messages builds the public view of entries, with their envelopes.
func messages(es []entry, envs []string) []Message {
	msgs := make([]Message, len(es))
	for i := range es {
		msgs[i] = es[i].message(envs[i])
	}
	return msgs
}
