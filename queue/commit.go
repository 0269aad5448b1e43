package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"time"
)

// Group commit. Appenders encode their record outside the lock, then under
// it take the record's place in the log, write it there and join the open
// batch; one commit loop syncs a whole batch once, applies it to the index
// and releases every appender in it. While it syncs, the next batch fills
// up: the busier the queue, the more records each sync covers.
//
// A record is written when it is placed, not when its batch is synced: a
// record the process wrote survives the process being killed (only a crash
// of the machine loses what was not synced), so a delivery's "done" record
// is in the file microseconds after the remote server's 250, and a kill
// -9 can only rarely come between the two and cost a duplicate delivery.
//
// A "delivered" record does not start a sync of its own: it waits, for at
// most deliveredLinger (2 ms), for another record to start one (under a
// steady inflow, the next message's). Losing it costs a second delivery, never a
// message, and only to a crash of the machine within that time, which
// Postfix's qmgr risks too: it unlinks a delivered message's queue file
// without a sync. A busy gateway so syncs once per arriving message rather
// than about twice (each sync is a tenth of a millisecond of CPU in the
// kernel), and a delivery waits no longer than that.

// batch is the records that share one sync.
type batch struct {
	done chan struct{} // closed when the batch is durable (or failed)
	// Set before done is closed: the first durable records are (records
	// in segments left behind are synced when the log moves on), the
	// others failed with err.
	durable int
	err     error
	recs    []pendingRec
	file    *os.File // the segment of the last record, which the sync covers
	// due: the batch is to be synced now: a record that cannot wait has
	// joined it, or the first one has waited deliveredLinger.
	due bool
}

// deliveredLinger is how long a "delivered" record may wait for another
// record's sync (see the top of this file); lingerRecords of them waiting
// together are synced at once, so that a queue manager draining a backlog
// with nothing arriving (every delivery agent waiting for its record)
// does not wait for the timer.
var deliveredLinger = 2 * time.Millisecond // tests change it

const lingerRecords = 16

// lingers reports whether a record may wait for another record's sync.
func (p *pendingRec) lingers() bool { return p.ent == nil && p.change.Kind == ChangeDelivered }

// wait waits for the batch and returns the outcome of its record i.
func (b *batch) wait(i int) error {
	<-b.done
	if i < b.durable {
		return nil
	}
	return b.err
}

// pendingRec is a record in a batch: where it goes, and what to apply to
// the index once it is durable.
type pendingRec struct {
	seg    uint32
	off    int64
	ent    *entry   // message record
	file   *os.File // a message record's content when it is in a file (AppendFile)
	fsize  int64    // its length
	id     string   // change record
	change Change
	at     int64
}

// Append writes the message record (envelope + content, content already
// CRLF) and returns only after an fsync that covers it has returned.
// Concurrent Appends share one sync. Cancelling ctx aborts the Append only
// until the record has joined a batch; from then on it waits for the sync.
//
// An empty env.ID is filled with NewID(), a zero env.Arrival with the
// current time. content must not change until Append returns.
//
// It fails with ErrNoSpace, writing nothing, while the queue's file system
// is short of space (Options.MinFree), or when the write fails for want of
// space.
func (s *Store) Append(ctx context.Context, env *Envelope, content []byte) error {
	return s.appendMessage(ctx, env, recContent{b: content}, Active, true)
}

// AppendHeld is Append for a message that goes straight to the hold queue
// (an access HOLD action): one record carries the message and its hold, so
// no queue manager ever sees the one without the other.
func (s *Store) AppendHeld(ctx context.Context, env *Envelope, content []byte) error {
	return s.appendMessage(ctx, env, recContent{b: content}, Hold, true)
}

// appendNotice is Append for the queue manager's own notices (bounces,
// delay warnings): like Postfix's bounce daemon they are not held to
// Options.MinFree, which is the SMTP server's line, only to the space
// there is.
func (s *Store) appendNotice(ctx context.Context, env *Envelope, content []byte) error {
	return s.appendMessage(ctx, env, recContent{b: content}, Active, false)
}

// appendMessage appends a message record in state; with minFree it first
// checks the free space as Postfix's smtpd does at MAIL.
func (s *Store) appendMessage(ctx context.Context, env *Envelope, content recContent, state State, minFree bool) error {
	if env.ID == "" {
		env.ID = s.NewID()
	}
	if !validID(env.ID) {
		return fmt.Errorf("queue: invalid queue ID %q", env.ID)
	}
	if len(env.Recipients) == 0 {
		return fmt.Errorf("queue: %s: message has no recipients", env.ID)
	}
	if env.Arrival.IsZero() {
		env.Arrival = time.Now()
	}
	if minFree {
		if err := s.checkSpace(); err != nil {
			return err
		}
	}
	arrival := env.Arrival.UnixNano()
	e := &entry{id: env.ID, nrcpt: int32(len(env.Recipients)), state: state}
	typ := recMessage
	var trailer []byte
	if state != Active {
		typ = recState
		trailer = appendStateTrailer(nil, e)
	}
	el := envelopeLen(env, arrival)
	if int64(el)+content.len()+int64(len(trailer)) > maxBodyLen {
		return fmt.Errorf("queue: %s: message too large (%d bytes)", env.ID, content.len())
	}
	bl := el + int(content.len()) + len(trailer)
	// One allocation holds header, envelope, state trailer and checksum;
	// the content is written from the caller's slice (pwritev), never
	// copied.
	buf := make([]byte, recHeaderSize, recOverhead+el+len(trailer))
	fillHeader(buf, typ, env.ID, bl, el)
	buf = appendEnvelope(buf, env, arrival)
	envBytes := buf[recHeaderSize:]
	headEnd := len(buf)
	buf = append(buf, trailer...)
	sum, err := content.checksum(bodyChecksum(idBytes(buf), envBytes))
	if err != nil {
		return fmt.Errorf("queue: %s: %w", env.ID, err)
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Update(sum, castagnoli, trailer))
	e.bodyLen, e.envLen, e.tail = uint32(bl), uint32(el), uint32(len(trailer))
	if content.f != nil {
		return s.submit(ctx, pendingRec{ent: e, file: content.f, fsize: content.size}, buf[:headEnd], buf[headEnd:])
	}
	return s.submit(ctx, pendingRec{ent: e}, buf[:headEnd], content.b, buf[headEnd:])
}

// Change records a state change for a message, durable like Append. It
// fails with ErrNotFound for a message not (or no longer) queued.
func (s *Store) Change(ctx context.Context, id string, c Change) error {
	if !validID(id) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	at := time.Now().UnixNano()
	cl := changeLen(&c, at)
	buf := make([]byte, recHeaderSize, recOverhead+cl)
	fillHeader(buf, recChange, id, cl, 0)
	buf = appendChange(buf, &c, at)
	buf = binary.LittleEndian.AppendUint32(buf, bodyChecksum(idBytes(buf), buf[recHeaderSize:]))
	return s.submit(ctx, pendingRec{id: id, change: c, at: at}, buf)
}

// submit places and writes a record in the log and the open batch, then
// waits for the batch to be durable. parts[0] starts with the record
// header.
func (s *Store) submit(ctx context.Context, p pendingRec, parts ...[]byte) error {
	s.mu.Lock()
	if err := s.admit(ctx, &p); err != nil {
		s.mu.Unlock()
		return err
	}
	b, i, err := s.place(&p, parts)
	short := err != nil && isNoSpace(err) && !s.short
	if short {
		s.short = true
	}
	if err != nil && p.ent != nil {
		delete(s.pending, p.ent.id)
	}
	s.mu.Unlock()
	if err != nil {
		if short {
			s.opts.Logf("%v: the records of this write are refused; writing resumes when there is space", err)
		}
		return err
	}
	return b.wait(i)
}

// admit checks, under s.mu, that a record may join the log.
func (s *Store) admit(ctx context.Context, p *pendingRec) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.ent == nil {
		s.find(p.id) // a parked message comes back into memory, where changes apply
		return s.idx.checkChange(p.id, &p.change)
	}
	if _, ok := s.peek(p.ent.id); ok {
		return fmt.Errorf("%w: %s", ErrExists, p.ent.id)
	}
	if _, ok := s.pending[p.ent.id]; ok {
		return fmt.Errorf("%w: %s", ErrExists, p.ent.id)
	}
	s.pending[p.ent.id] = struct{}{}
	return nil
}

// place gives a record, under s.mu, its place in the log, writes it there
// and adds it to the open batch, which it returns with the record's index
// in it. A record that would cross the segment size starts a new segment:
// the one before is synced first, then the new one is created (header and
// directory synced), so a crash can only ever tear the last segment. A
// record that cannot be written is cut off again and fails alone, leaving
// nothing behind (for want of space: ErrNoSpace, and the Store goes on).
func (s *Store) place(p *pendingRec, parts [][]byte) (*batch, int, error) {
	n := p.fsize
	for _, b := range parts {
		n += int64(len(b))
	}
	seq, end := s.segSeq, s.segEnd
	if end > segHeaderSize && end+n > s.opts.SegmentSize {
		seq, end = seq+1, segHeaderSize
	}
	if seq != s.activeSeq {
		if err := s.startSegment(seq); err != nil {
			return nil, 0, s.writeFailed(err)
		}
		if s.segSeq != seq { // left for its size, not sealed by age
			s.segBytes[s.segSeq] = s.segEnd
		}
		s.segSeq, s.segEnd = seq, end
	}
	p.seg, p.off = seq, end
	sealHeader(parts[0], p.seg, p.off)
	if err := s.writeRecord(p, parts); err != nil {
		// Cut the record off again, so no torn record stays in the log.
		if terr := s.active.Truncate(p.off); terr != nil {
			s.err = fmt.Errorf("queue: cut segment %d back to offset %d after a failed write: %w", seq, p.off, terr)
			return nil, 0, fmt.Errorf("queue: write segment %d: %w", seq, err)
		}
		return nil, 0, s.writeFailed(fmt.Errorf("queue: write segment %d: %w", seq, err))
	}
	s.segEnd = end + n
	s.submitted++
	b := s.cur
	b.recs = append(b.recs, *p)
	b.file = s.active
	switch {
	case b.due:
	case !p.lingers() || len(b.recs) >= lingerRecords:
		b.due = true
		s.wake.Signal()
	case len(b.recs) == 1:
		s.linger.Reset(deliveredLinger)
	}
	return b, len(b.recs) - 1, nil
}

// writeFailed turns a failed write into the error its record fails with.
// Only want of space leaves the Store usable: anything else fails it until
// it is reopened (recovery cuts what was not synced).
func (s *Store) writeFailed(err error) error {
	if isNoSpace(err) {
		s.space.stale()
		return noSpaceError{err}
	}
	s.err = err
	s.opts.Logf("queue: %v; refusing further appends until the queue is reopened", err)
	return err
}

// startSegment moves the log, under s.mu, to the new segment seq: every
// record of the active one is synced first (it is sealed for good and
// gets its index file), then seq is created.
func (s *Store) startSegment(seq uint32) error {
	if end := s.activeEnd(); s.activeSynced < end {
		if err := s.syncer().Sync(s.active); err != nil {
			return fmt.Errorf("queue: sync segment %d: %w", s.activeSeq, err)
		}
		s.activeSynced = end
	}
	f, err := s.createSegment(seq)
	if err != nil {
		return err
	}
	s.indexer.add(s.activeSeq)
	s.setActive(seq, f)
	return nil
}

// activeEnd is, under s.mu, where the records written to the active
// segment end.
func (s *Store) activeEnd() int64 {
	if s.segSeq == s.activeSeq {
		return s.segEnd
	}
	return s.segBytes[s.activeSeq] // sealed by age, not yet left
}

func (s *Store) usable() error {
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return fmt.Errorf("queue: store failed earlier, reopen it: %w", s.err)
	}
	return nil
}

// lingered makes the open batch due: its first record has waited
// deliveredLinger (or less: the timer may have been set for a batch
// synced since, and then this one is synced a little early).
func (s *Store) lingered() {
	s.mu.Lock()
	if len(s.cur.recs) > 0 && !s.cur.due {
		s.cur.due = true
		s.wake.Signal()
	}
	s.mu.Unlock()
}

func (s *Store) newBatch() *batch {
	b := &batch{done: make(chan struct{}), recs: s.spareRecs}
	s.spareRecs = nil
	return b
}

// commitLoop syncs batches until the Store is closed and nothing is left
// to sync.
func (s *Store) commitLoop() {
	defer close(s.loopDone)
	for {
		s.mu.Lock()
		for (len(s.cur.recs) == 0 || !s.cur.due) && !s.closed {
			s.wake.Wait()
		}
		if len(s.cur.recs) == 0 {
			s.mu.Unlock()
			return
		}
		b := s.cur
		s.cur = s.newBatch()
		s.flushing = b
		err := s.err
		syncSeq, syncEnd := s.activeSeq, s.activeEnd() // what the sync covers when b.file is the active segment
		s.mu.Unlock()

		// Records in segments the log has left were synced when it left
		// them; the sync covers the rest.
		n := 0
		if err == nil {
			if err = s.syncer().Sync(b.file); err != nil {
				err = fmt.Errorf("queue: sync segment %d: %w", b.recs[len(b.recs)-1].seg, err)
				for n < len(b.recs) && b.recs[n].seg < b.recs[len(b.recs)-1].seg {
					n++
				}
			} else {
				n = len(b.recs)
			}
		}

		s.mu.Lock()
		if n == len(b.recs) && b.recs[n-1].seg == syncSeq && s.activeSeq == syncSeq {
			s.activeSynced = max(s.activeSynced, syncEnd)
		}
		for i := range b.recs {
			p := &b.recs[i]
			if p.ent != nil {
				delete(s.pending, p.ent.id)
			}
			if i < n {
				s.applyPending(p)
			}
		}
		s.flushing = nil
		var later *batch // placed after the failed records: fails with them
		var sticky, short, roomy bool
		if err != nil && s.err == nil {
			if isNoSpace(err) {
				err = noSpaceError{err}
				var rerr error
				if later, rerr = s.rewind(&b.recs[n]); rerr != nil {
					s.err, sticky = rerr, true
				}
				short = !s.short
				s.short = true
			} else {
				// Later records were given offsets after these, so nothing
				// can be written any more: fail until reopened (recovery
				// cuts what was not synced).
				s.err, sticky = err, true
			}
		} else if err == nil {
			roomy = s.short
			s.short = false
		}
		serr := s.err
		s.mu.Unlock()
		if roomy {
			s.opts.Logf("queue: writing again after running out of space")
		}
		if short {
			s.opts.Logf("%v: the records of this write are refused; writing resumes when there is space", err)
		}
		if sticky {
			s.opts.Logf("queue: %v; refusing further appends until the queue is reopened", serr)
		}
		b.durable, b.err = n, err
		close(b.done)
		if later != nil {
			later.err = err
			close(later.done)
		}
		s.recycle(b)
	}
}

// rewind takes the log back, under s.mu, to the place of at, the first
// record of a batch whose sync failed for want of space: every record
// placed after it (the open batch, already written) is failed too; the
// segment is cut back to at, its last durable offset, so no torn record
// or gap is left; and the next record takes at's place. A segment sealed
// before at stays sealed, so compaction never sees a segment it may delete
// written again. It returns the failed open batch, for the commit loop to
// release; an error means the segment could not be cut back, and the
// Store must stop.
func (s *Store) rewind(at *pendingRec) (later *batch, err error) {
	later = s.cur
	s.cur = s.newBatch()
	for i := range later.recs {
		if p := &later.recs[i]; p.ent != nil {
			delete(s.pending, p.ent.id)
		}
	}
	s.segSeq, s.segEnd = at.seg, at.off
	for seq := range s.segBytes {
		if seq >= at.seg {
			delete(s.segBytes, seq) // sealed by a failed record: open again
		}
	}
	s.space.stale()
	if at.seg != s.activeSeq {
		// The log moved on to a new segment, whose start synced this one
		// after the failed sync: what that sync covered cannot be told.
		return later, fmt.Errorf("queue: sync of segment %d failed for want of space after the log moved on to segment %d", at.seg, s.activeSeq)
	}
	// Sync the cut so that a crash cannot bring back records that were
	// refused. If that sync too fails for want of space, the next record's
	// sync makes the new length durable: until then a crash may bring them
	// back, like any record written but not yet synced.
	if err := s.active.Truncate(at.off); err != nil {
		return later, fmt.Errorf("queue: cut segment %d back to offset %d after a failed write: %w", at.seg, at.off, err)
	}
	s.activeSynced = min(s.activeSynced, at.off)
	if err := s.syncer().Sync(s.active); err != nil && !isNoSpace(err) {
		return later, fmt.Errorf("queue: sync segment %d cut back to offset %d: %w", at.seg, at.off, err)
	}
	return later, nil
}

func (s *Store) applyPending(p *pendingRec) {
	if p.ent != nil {
		p.ent.seg, p.ent.off = p.seg, uint32(p.off)
		s.idx.add(p.ent)
	} else {
		s.idx.apply(p.id, &p.change, p.at)
	}
	if s.mgr != nil {
		s.mgr.applied(p)
	}
}

// recycle keeps a finished batch's slice for a later batch; the waiters
// only read b.err.
func (s *Store) recycle(b *batch) {
	clear(b.recs)
	s.mu.Lock()
	s.spareRecs = b.recs[:0]
	s.mu.Unlock()
}
