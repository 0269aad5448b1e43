package queue

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Parking on disk: while a queue manager runs, each queue run moves the
// messages parked in the index (due after the horizon, sched.go) out of
// memory into a state file per segment of their records, DIR/log/NNN.park,
// and keeps in memory only a summary of each: how many, their bytes,
// their earliest next try, and a Bloom filter of their IDs (10 bits a
// message). A queue run, and the queue manager whenever its heap runs
// low, brings back the messages due before the horizon, earliest first,
// as far as the heap has room (bringIn), and writes the rest of each
// file back. So memory holds what the schedule needs now, not the
// backlog.
//
// A state file is derived data, never the truth: it holds each message's
// state as the log left it when the file was written, and a message
// leaves it (its whole file is read back into memory) before any record
// about it is placed in the log, so the file and the log never disagree.
// Nothing is synced: a file is valid only for the Store that wrote it (its
// generation says which), Open deletes them all and rebuilds the state
// from the log, and a file found damaged, stale or missing is rebuilt
// from the log too (rebuildParked).
//
//	0  8  magic "\x89PGPRK\r\n"
//	8  4  format version (1)
//	12 4  segment number
//	16 8  generation
//	24 4  message count
//	28    messages, each: ID (length-prefixed), then uvarints offset, body
//	      length, envelope length, state trailer length (of a state
//	      record, else 0), recipient count, length of the state; the
//	      state as a state record trailer (staterec.go)
//	n  4  CRC32C of everything before

const (
	parkSuffix     = ".park"
	parkTmpSuffix  = ".park.tmp"
	parkHeaderSize = 28
	parkVersion    = 1
)

var parkMagic = []byte("\x89PGPRK\r\n")

func parkPath(logDir string, seq uint32) string {
	return filepath.Join(logDir, seqName(seq, parkSuffix))
}

// parkGroup is what memory keeps of the messages of one segment parked
// on disk.
type parkGroup struct {
	seq     uint32
	gen     uint64
	n       int
	minNext int64 // the earliest next try among them, held ones aside (Unix ns)
	msgs    [Corrupt + 1]int
	bytes   [Corrupt + 1]int64 // content bytes, by state
	ids     idFilter
}

// idFilter is a Bloom filter of queue IDs: NewID and lookups by ID pass
// over the files that cannot hold an ID without reading them.
type idFilter []uint64

const idFilterProbes = 4

func newIDFilter(n int) idFilter { return make(idFilter, (n*10+63)/64) }

func (f idFilter) add(h uint64) {
	for b := range f.bits(h) {
		f[b/64] |= 1 << (b % 64)
	}
}

func (f idFilter) mayHold(h uint64) bool {
	for b := range f.bits(h) {
		if f[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// bits yields the filter bits of an ID hash (double hashing).
func (f idFilter) bits(h uint64) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		m := uint64(len(f)) * 64
		h1, h2 := h&0xFFFFFFFF, h>>32|1
		for i := range uint64(idFilterProbes) {
			if !yield((h1 + i*h2) % m) {
				return
			}
		}
	}
}

func (x *index) idHash(id string) uint64 { return maphash.String(x.parkSeed, id) }

// mayBeParked reports whether id may be a message parked on disk.
func (x *index) mayBeParked(id string) bool {
	if len(x.parked) == 0 {
		return false
	}
	h := x.idHash(id)
	for _, g := range x.parked {
		if g.ids.mayHold(h) {
			return true
		}
	}
	return false
}

// parkedCount is how many messages are parked on disk.
func (x *index) parkedCount() int {
	n := 0
	for _, g := range x.parked {
		n += g.n
	}
	return n
}

// encodePark builds the state file of segment seq holding es.
func encodePark(seq uint32, gen uint64, es []*entry) []byte {
	b := make([]byte, parkHeaderSize, parkHeaderSize+len(es)*64)
	copy(b, parkMagic)
	binary.LittleEndian.PutUint32(b[8:], parkVersion)
	binary.LittleEndian.PutUint32(b[12:], seq)
	binary.LittleEndian.PutUint64(b[16:], gen)
	binary.LittleEndian.PutUint32(b[24:], uint32(len(es)))
	var st []byte
	for _, e := range es {
		b = appendStr(b, e.id)
		for _, v := range [...]uint32{e.off, e.bodyLen, e.envLen, e.tail, uint32(e.nrcpt)} {
			b = binary.AppendUvarint(b, uint64(v))
		}
		st = appendStateTrailer(st[:0], e)
		b = binary.AppendUvarint(b, uint64(len(st)))
		b = append(b, st...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodePark reads the state file of group g back into entries, or says
// why it does not describe g.
func (x *index) decodePark(data []byte, g *parkGroup) ([]*entry, error) {
	data, err := checkDerived(data, parkMagic, parkVersion, parkHeaderSize, g.seq)
	if err != nil {
		return nil, fmt.Errorf("not a state file: %w", err)
	}
	n := len(data)
	if got := binary.LittleEndian.Uint64(data[16:]); got != g.gen {
		return nil, errors.New("stale: not the file last written")
	}
	if got := int(binary.LittleEndian.Uint32(data[24:])); got != g.n {
		return nil, fmt.Errorf("holds %d messages, not %d", got, g.n)
	}
	d := decoder{s: string(data[parkHeaderSize:n])}
	es := make([]*entry, 0, g.n)
	for range g.n {
		id := strings.Clone(d.str()) // not to keep the file's bytes alive
		off, bodyLen, envLen, tail, nrcpt := d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint(), d.uvarint()
		st := d.str()
		if d.bad || !validID([]byte(id)) || off >= maxSegmentSize || bodyLen > maxBodyLen || envLen > bodyLen ||
			tail > bodyLen-envLen || nrcpt == 0 || nrcpt > maxBodyLen || len(st) < minStateTrailer {
			return nil, errors.New("bad message entry")
		}
		e := &entry{id: id, seg: g.seq, off: uint32(off), bodyLen: uint32(bodyLen), envLen: uint32(envLen),
			tail: uint32(tail), nrcpt: int32(nrcpt)}
		if !x.decodeStateTrailer(st[:len(st)-4], e) {
			return nil, fmt.Errorf("%s: bad state", id)
		}
		es = append(es, e)
	}
	if d.i != len(d.s) {
		return nil, errors.New("bytes after the last message")
	}
	return es, nil
}

// parkedEntries reads group g's messages, under s.mu, from its state file,
// or rebuilds them from the log when the file does not describe them.
func (s *Store) parkedEntries(g *parkGroup) []*entry {
	path := parkPath(s.logDir, g.seq)
	data, err := os.ReadFile(path)
	var es []*entry
	if err == nil {
		es, err = s.idx.decodePark(data, g)
	}
	if err == nil {
		return es
	}
	s.opts.Logf("queue: segment %d: state file %s not used (%v): rebuilding its %d parked messages from the log", g.seq, path, err, g.n)
	return s.rebuildParked(g)
}

// rebuildParked works out, from the log, the state of group g's messages:
// the messages whose record is in segment g.seq and that memory does not
// hold. No record about them was placed since they were parked, so the
// log says what the file said.
func (s *Store) rebuildParked(g *parkGroup) []*entry {
	x := newIndex(nil) // Open logged the log's damage already
	if _, _, _, err := recoverLog(s.logDir, x, false); err != nil {
		s.opts.Logf("queue: segment %d: cannot rebuild its parked messages: %v", g.seq, err)
	}
	var es []*entry
	for e := range x.m.all() {
		_, pending := s.pending[e.id]
		if e.seg == g.seq && !pending && s.idx.m.get(e.id) == nil {
			es = append(es, e)
		}
	}
	if len(es) != g.n {
		s.opts.Logf("queue: segment %d: the log holds %d of its %d parked messages", g.seq, len(es), g.n)
	}
	return es
}

// unpark brings group g's messages back into memory, to stay until a
// queue run parks them again, and deletes its file.
func (s *Store) unpark(g *parkGroup) {
	for _, e := range s.parkedEntries(g) {
		s.restore(e)
	}
	s.dropPark(g)
}

// restore puts a message read from a state file back in memory: while a
// manager runs, in the schedule (the heap when due before the horizon,
// else parked in memory), else, or held, unscheduled.
func (s *Store) restore(e *entry) {
	e.hpos = 0
	s.idx.m.put(e)
	if s.idx.horizon != 0 && e.state != Hold {
		s.idx.schedule(e, e.nextTry)
	}
}

func (s *Store) dropPark(g *parkGroup) {
	delete(s.idx.parked, g.seq)
	if err := os.Remove(parkPath(s.logDir, g.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.opts.Logf("queue: segment %d: cannot remove its state file: %v", g.seq, err)
	}
}

// find returns, under s.mu, the entry of a live message, bringing its
// segment's parked messages back into memory if it is one of them.
func (s *Store) find(id string) *entry {
	x := s.idx
	if e := x.m.get(id); e != nil || len(x.parked) == 0 {
		return e
	}
	if g, _ := s.parkedWith(id); g != nil {
		s.unpark(g)
	}
	return x.m.get(id)
}

// parkedWith returns, under s.mu, the group holding parked message id,
// and a copy of its entry.
func (s *Store) parkedWith(id string) (*parkGroup, entry) {
	x := s.idx
	if len(x.parked) == 0 {
		return nil, entry{}
	}
	h := x.idHash(id)
	for _, g := range x.parked {
		if !g.ids.mayHold(h) {
			continue
		}
		for _, e := range s.parkedEntries(g) {
			if e.id == id {
				return g, *e
			}
		}
	}
	return nil, entry{}
}

// peek returns, under s.mu, a copy of a live message's entry without
// bringing anything back into memory.
func (s *Store) peek(id string) (entry, bool) {
	if e := s.idx.m.get(id); e != nil {
		return *e, true
	}
	g, c := s.parkedWith(id)
	return c, g != nil
}

// allParked returns, under s.mu, copies of every message parked on disk.
func (s *Store) allParked() []entry {
	var es []entry
	for _, g := range s.idx.parked {
		for _, e := range s.parkedEntries(g) {
			es = append(es, *e)
		}
	}
	return es
}

// queueRun moves, under s.mu, the horizon on to horizon: the messages
// parked in memory due before it join the heap (index.advance), and so
// do those parked on disk, as far as room allows (bringIn). The queue
// manager then parks what waits in memory (parkOut).
func (s *Store) queueRun(horizon int64, room int) {
	s.idx.advance(horizon)
	s.bringIn(room)
}

// bringIn moves, under s.mu, messages parked on disk and due before the
// horizon into the heap, earliest first, until the heap holds room
// messages. The others wait on disk until the heap runs low (take) or
// the next queue run: memory holds what the active queue can take soon,
// not all that a long outage makes due before the horizon, as Postfix's
// qmgr leaves deferred mail where it is while its active queue is full.
func (s *Store) bringIn(room int) {
	x := s.idx
	for len(x.sched) < room {
		var g *parkGroup
		for _, c := range x.parked {
			if c.minNext < x.horizon && (g == nil || c.minNext < g.minNext) {
				g = c
			}
		}
		if g == nil {
			return
		}
		es := s.parkedEntries(g)
		slices.SortFunc(es, func(a, b *entry) int { return cmp.Or(cmp.Compare(a.nextTry, b.nextTry), cmp.Compare(a.off, b.off)) })
		var later []*entry
		for _, e := range es {
			if e.state == Hold || e.nextTry >= x.horizon || len(x.sched) >= room {
				later = append(later, e)
				continue
			}
			e.hpos = 0
			x.m.put(e)
			x.schedule(e, e.nextTry)
		}
		s.dropPark(g)
		if len(later) > 0 && !s.writePark(g.seq, later) {
			for _, e := range later {
				s.restore(e)
			}
		}
	}
}

// parkedSegs lists the segments with messages parked on disk, in order.
func (s *Store) parkedSegs() []uint32 {
	seqs := make([]uint32, 0, len(s.idx.parked))
	for seq := range s.idx.parked {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs
}

// parkOut moves the messages parked in memory, and those the schedule's
// heap holds beyond room (trimSchedule), to their segments' state
// files, joining those already there, except in segments up to keep,
// which a compaction is copying forward. It takes s.mu itself, for one
// segment's file at a time: appends wait for one file's writing at most,
// not for a whole backlog's (a million messages take seconds).
func (s *Store) parkOut(keep uint32, room int) {
	s.mu.Lock()
	s.idx.trimSchedule(room)
	bySeg := make(map[uint32][]*entry)
	for e := range s.idx.m.all() {
		if s.parkable(e, keep) {
			bySeg[e.seg] = append(bySeg[e.seg], e)
		}
	}
	s.mu.Unlock()
	for seq, es := range bySeg {
		s.mu.Lock()
		s.parkSegment(seq, es, keep)
		s.mu.Unlock()
	}
	// What the trim took out of the heap but could not go to disk (a
	// segment being compacted, a record in flight, a failed write) waits
	// in the heap again, not for the next queue run.
	s.mu.Lock()
	s.idx.advance(s.idx.horizon)
	s.mu.Unlock()
}

// parkable reports, under s.mu, whether e waits for nothing the queue
// manager does soon: parked in the schedule, or held and not being
// delivered.
func (s *Store) parkable(e *entry, keep uint32) bool {
	if e.seg <= keep || e.damaged() {
		return false
	}
	if e.state == Hold {
		_, busy := s.delivering[e.id]
		return e.hpos <= 0 && !busy // not in the heap
	}
	return e.hpos == parked && (e.state == Active || e.state == Deferred)
}

// parkSegment moves, under s.mu, the messages of segment seq among cands
// that are still parked in memory to the segment's state file. A message
// with a record in flight (written, not yet applied) stays: applying it
// needs the entry.
func (s *Store) parkSegment(seq uint32, cands []*entry, keep uint32) {
	x := s.idx
	inFlight := make(map[string]bool)
	for _, b := range [...]*batch{s.flushing, s.cur} {
		if b == nil {
			continue
		}
		for i := range b.recs {
			p := &b.recs[i]
			if p.ent != nil {
				inFlight[p.ent.id] = true
			} else {
				inFlight[p.id] = true
			}
		}
	}
	es := cands[:0]
	for _, e := range cands {
		// Still the message's entry (not removed, nor replaced by a
		// copy), and still parked.
		if x.m.get(e.id) == e && s.parkable(e, keep) && !inFlight[e.id] {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		return
	}
	all := es
	if old := x.parked[seq]; old != nil {
		all = append(s.parkedEntries(old), es...)
	}
	if !s.writePark(seq, all) {
		return // they stay in memory; the old file still holds
	}
	for _, e := range es {
		x.m.del(e.id)
		e.hpos = 0
	}
}

// writePark writes the state file of segment seq holding es, replacing
// any, and records its group; false if it could not (logged).
func (s *Store) writePark(seq uint32, es []*entry) bool {
	x := s.idx
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.off, b.off) })
	x.parkGen++
	g := &parkGroup{seq: seq, gen: x.parkGen, n: len(es), minNext: math.MaxInt64, ids: newIDFilter(len(es))}
	for _, e := range es {
		if e.state != Hold { // due only once released
			g.minNext = min(g.minNext, e.nextTry)
		}
		g.msgs[e.state]++
		g.bytes[e.state] += e.contentLen()
		g.ids.add(x.idHash(e.id))
	}
	path := parkPath(s.logDir, seq)
	tmp := strings.TrimSuffix(path, parkSuffix) + parkTmpSuffix
	// Not synced: Open deletes these files, so a crash needs none of them.
	err := os.WriteFile(tmp, encodePark(seq, g.gen, es), 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		s.opts.Logf("queue: segment %d: cannot write the state file of %d parked messages, keeping them in memory: %v", seq, len(es), err)
		return false
	}
	x.parked[seq] = g
	return true
}

// unparkWhere brings back into memory, under s.mu, the groups of the
// segments in segs, or with segs nil those whose filters may hold a
// message ids names (nil: every group): postqueue -f, ETRN, requeue.
func (s *Store) unparkWhere(ids map[string]bool, segs map[uint32]bool) {
	x := s.idx
	for _, seq := range s.parkedSegs() {
		g := x.parked[seq]
		hit := ids == nil || segs[seq]
		for id := range ids {
			if hit || segs != nil {
				break
			}
			hit = g.ids.mayHold(x.idHash(id))
		}
		if hit {
			s.unpark(g)
		}
	}
}
