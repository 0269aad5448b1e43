package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"slices"
	"sync"
)

// Compaction deletes old segments. Changes for a message always follow
// its record in the log, so a prefix of the log (its oldest segments)
// holding no live message record holds nothing a live message needs: it
// can go. A live message whose record sits in an old segment (held, or
// deferred for days) is copied forward: re-appended as one state record
// with its envelope, content and current state, same ID, which supersedes
// the old record and every change before it. Once every copy is durable
// the prefix is deleted, oldest segment first, the directory synced after
// each, so a crash at any point leaves a log whose every message is
// recovered exactly once: before the deletions, the original and its copy
// are both there and the copy (later) wins; during them, what is left of
// the prefix is a shorter prefix, which still holds no record whose
// changes were in a deleted segment.

const (
	// compactMinSegments is how many old segments must go before a
	// compaction copies messages forward; a prefix holding no live
	// message at all goes as soon as it is found.
	compactMinSegments = 4
	// compactLiveShare: a prefix is compacted while its live messages
	// take less than 1/4 of its bytes.
	compactLiveShare = 4
	// compactCopyers is how many copies are in flight at once, sharing
	// syncs.
	compactCopyers = 8
)

// compactPlan is one compaction: segments up to through go, after the
// messages in copies (live records in them) are copied forward.
type compactPlan struct {
	through uint32
	copies  []string
}

// planKey is what a plan depends on; the manager plans again when it
// changes.
type planKey struct {
	removals uint64
	segSeq   uint32
	scans    uint64
	waiting  bool // the message that cut the last plan short is still being delivered
	short    bool // short of space: nothing is copied
}

// sealedLocked returns the sealed segments whose every record is applied,
// oldest first.
func (s *Store) sealedLocked() []uint32 {
	limit := s.segSeq
	for _, b := range [...]*batch{s.flushing, s.cur} {
		if b != nil && len(b.recs) > 0 {
			limit = min(limit, b.recs[0].seg)
		}
	}
	seqs := make([]uint32, 0, len(s.segBytes))
	for seq := range s.segBytes {
		if seq < limit {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs
}

// prefixes walks the sealed segments up to limit, oldest first, and
// returns the end of the longest prefix holding no live record (free),
// and of the longest whose live records are under a quarter of its bytes
// and few enough to copy in one go (cand, n segments long).
func (s *Store) prefixes(seqs []uint32, limit uint32) (free, cand uint32, n int) {
	maxCopy := compactLiveShare * s.opts.SegmentSize
	var size, live int64
	for i, seq := range seqs {
		if seq > limit {
			break
		}
		size += s.segBytes[seq]
		live += s.idx.liveBytes[seq]
		if live == 0 {
			free = seq
		}
		if live > maxCopy {
			break
		}
		if live*compactLiveShare < size {
			cand, n = seq, i+1
		}
	}
	return free, cand, n
}

// planCompaction picks, under s.mu, the longest prefix of sealed segments
// worth deleting: one with no live record, or at least
// compactMinSegments whose live records are a small share to copy. A
// message being delivered, or a damaged record, cannot be copied: the
// prefix ends before it, and blockedBy names a message being delivered
// that did so. With freeOnly, only a prefix without live records is
// considered.
func (s *Store) planCompaction(freeOnly bool) (p compactPlan, blockedBy string, ok bool) {
	seqs := s.sealedLocked()
	free, cand, n := s.prefixes(seqs, ^uint32(0))
	if freeOnly || n < compactMinSegments || cand <= free {
		return compactPlan{through: free}, "", free != 0
	}
	// The live records of the prefix, in log order: a walk of the whole
	// index (tens of milliseconds at a million messages), which only a
	// compaction about to copy pays, once. Those parked on disk come back
	// into memory to be copied (queue runs leave them there meanwhile).
	for _, seq := range s.parkedSegs() {
		if seq <= cand {
			s.unpark(s.idx.parked[seq])
		}
	}
	copies := s.idx.liveThrough(cand)
	for i, e := range copies {
		_, busy := s.delivering[e.id]
		if !busy && !e.damaged() {
			continue
		}
		if busy {
			blockedBy = e.id
		}
		free, cand, n = s.prefixes(seqs, e.seg-1)
		if n < compactMinSegments || cand <= free {
			return compactPlan{through: free}, blockedBy, free != 0
		}
		copies = slices.DeleteFunc(copies[:i], func(c *entry) bool { return c.seg > cand })
		break
	}
	p = compactPlan{through: cand, copies: make([]string, len(copies))}
	for i, e := range copies {
		p.copies[i] = e.id
	}
	return p, blockedBy, true
}

// compact carries out a plan: the copies, then the deletions. The
// segments before the first live record go first: copies need space, and
// on a full disk deleting is what gives it.
func (s *Store) compact(ctx context.Context, p compactPlan) error {
	if len(p.copies) > 0 {
		if err := s.dropSegments(p.through); err != nil {
			return err
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			slots = make(chan struct{}, compactCopyers)
		)
		for _, id := range p.copies {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				err := s.copyForward(ctx, id, p.through)
				if err == nil {
					s.hook("copy")
					return
				}
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		if first != nil {
			return first
		}
		s.hook("copied")
	}
	return s.dropSegments(p.through)
}

func (s *Store) hook(stage string) {
	if s.compactHook != nil {
		s.compactHook(stage)
	}
}

// copyForward re-appends a live message whose record is in a segment up
// to through as a state record; done when it is durable. A message gone
// or moved meanwhile needs nothing.
func (s *Store) copyForward(ctx context.Context, id string, through uint32) error {
	c, err := s.locate(id)
	if errors.Is(err, ErrNotFound) || err == nil && c.seg > through {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := s.segmentFile(c.seg)
	if err != nil {
		return err
	}
	rec := make([]byte, c.recLen())
	if _, err := f.ReadAt(rec, int64(c.off)); err != nil {
		return fmt.Errorf("queue: %s: read: %w", id, err)
	}
	h, ok := parseHeader(rec, c.seg, int64(c.off))
	if !ok || h.id != id || h.bodyLen != c.bodyLen || !trailerOK(rec) {
		return fmt.Errorf("%w: %s: cannot copy a damaged record", ErrCorrupt, id)
	}
	body := rec[recHeaderSize : len(rec)-recTrailerSize]
	env := body[:c.envLen]
	content := body[c.envLen : len(body)-int(c.tail)]
	return s.submitCopy(ctx, &c, env, content, bodyChecksum(idBytes(rec), env, content))
}

// submitCopy appends the state record copying c's message: envelope and
// content as they are, then the state the message has once every change
// ahead of the copy in the log is applied, taken under the same lock that
// gives the copy its place, so no change falls in between.
func (s *Store) submitCopy(ctx context.Context, c *entry, env, content []byte, crc uint32) error {
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return err
	}
	e := s.idx.m.get(c.id)
	_, busy := s.delivering[c.id]
	if e == nil || e.seg != c.seg || e.off != c.off || busy {
		s.mu.Unlock()
		return nil // gone or moved: nothing to copy; taken: the prefix waits
	}
	st, live := s.stateAhead(e)
	if !live {
		s.mu.Unlock()
		return nil
	}
	trailer := appendStateTrailer(nil, &st)
	bodyLen := len(env) + len(content) + len(trailer)
	head := make([]byte, recHeaderSize, recHeaderSize+len(env))
	fillHeader(head, recState, c.id, bodyLen, len(env))
	head = append(head, env...)
	tail := binary.LittleEndian.AppendUint32(trailer, crc32.Update(crc, castagnoli, trailer))
	ne := &entry{
		id:      e.id,
		nextTry: st.nextTry, rs: st.rs,
		bodyLen: uint32(bodyLen), envLen: uint32(len(env)), tail: uint32(len(trailer)),
		nrcpt: st.nrcpt,
		state: st.state, expired: st.expired, warned: st.warned,
	}
	b, i, err := s.place(&pendingRec{ent: ne}, [][]byte{head, content, tail})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return b.wait(i)
}

// stateAhead returns, under s.mu, the state e's message will have once
// the changes already placed in the log but not yet applied (being
// written, or waiting for the next batch) are applied; live is false if
// they remove it.
func (s *Store) stateAhead(e *entry) (st entry, live bool) {
	st = *e
	for _, b := range [...]*batch{s.flushing, s.cur} {
		if b == nil {
			continue
		}
		for i := range b.recs {
			p := &b.recs[i]
			if p.ent == nil && p.id == e.id && s.idx.change(&st, &p.change) {
				return st, false
			}
		}
	}
	return st, true
}

// dropSegments deletes the sealed segments up to through that hold no
// live record, oldest first, each deletion durable before the next.
func (s *Store) dropSegments(through uint32) error {
	s.mu.Lock()
	var drop []uint32
	for _, seq := range s.sealedLocked() {
		if seq > through || s.idx.liveBySeg[seq] > 0 {
			break
		}
		drop = append(drop, seq)
	}
	s.mu.Unlock()
	for _, seq := range drop {
		s.fmu.Lock()
		if s.files == nil {
			s.fmu.Unlock()
			return ErrClosed
		}
		// A sealed segment may still be the commit loop's open file (an
		// idle one sealed by age): no record goes to it again, and its
		// successor is created at the next write.
		if f := s.files[seq]; f != nil {
			f.Close()
			delete(s.files, seq)
		}
		s.fmu.Unlock()
		if err := os.Remove(segPath(s.logDir, seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("queue: delete segment %d: %w", seq, err)
		}
		// A crash before this leaves an index without its segment, which
		// Open removes.
		if err := os.Remove(idxPath(s.logDir, seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("queue: delete the index file of segment %d: %w", seq, err)
		}
		if err := s.syncDir(); err != nil {
			return fmt.Errorf("queue: delete segment %d: %w", seq, err)
		}
		s.mu.Lock()
		delete(s.segBytes, seq)
		s.mu.Unlock()
		s.hook("deleted")
	}
	return nil
}

// maybeCompact starts a compaction when one is worth it and none runs.
// A plan cut short by a message being delivered is not worked out again
// (copies and all) until that message is back in the queue.
func (m *manager) maybeCompact() {
	if m.compacting {
		return
	}
	s := m.s
	// Short of space (below the line new mail is refused at), nothing is
	// copied forward: only segments with nothing live go.
	_, roomy := s.Space(s.opts.SizeLimit)
	short := !roomy
	s.mu.Lock()
	// Plan again when something changed: a removal, a new segment, a queue
	// run, or the end of the delivery that blocked the last plan.
	_, waiting := s.delivering[m.blockedBy]
	k := planKey{s.idx.removals, s.segSeq, m.scans, waiting, short}
	if k == m.planned {
		s.mu.Unlock()
		return
	}
	m.planned = k
	p, blockedBy, ok := s.planCompaction(waiting || short)
	if !waiting {
		m.blockedBy = blockedBy
	}
	if ok {
		m.compacting, m.compactTo = true, p.through
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	m.wg.Go(func() { m.compactDone <- s.compact(m.ctx, p) })
}

// compacted ends a compaction: what was due meanwhile in the segments it
// worked on is due now.
func (m *manager) compacted(err error) {
	m.compacting = false
	if err != nil && m.ctx.Err() == nil {
		m.logf("qmgr", "warning: queue compaction: %v", err)
		if m.s.failed() {
			m.fail(err)
		}
	}
	s := m.s
	now := m.now().UnixNano()
	s.mu.Lock()
	for _, id := range m.blocked {
		if e := s.idx.m.get(id); e != nil && e.hpos == 0 && (e.state == Active || e.state == Deferred) {
			if _, busy := s.delivering[id]; !busy {
				s.idx.schedule(e, now)
			}
		}
	}
	s.mu.Unlock()
	m.blocked = nil
}
