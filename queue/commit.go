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
// it take the record's place in the log and join the open batch; one
// commit loop writes a whole batch with one pwritev per segment, syncs once,
// applies the batch to the index and releases every appender in it. While
// it syncs, the next batch fills up: the busier the queue, the more records
// each sync covers.

// batch is the records that share one write and one sync.
type batch struct {
	done chan struct{} // closed when the batch is durable (or failed)
	// Set before done is closed: the first durable records are (a batch
	// that crosses into a new segment is synced one segment at a time),
	// the others failed with err.
	durable int
	err     error
	recs    []pendingRec
	iov     [][]byte // the records' bytes, in log order
}

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
	iovEnd int      // end of this record's parts in batch.iov
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

// submit places a record in the log and the open batch, then waits for the
// batch to be durable. parts[0] starts with the record header.
func (s *Store) submit(ctx context.Context, p pendingRec, parts ...[]byte) error {
	s.mu.Lock()
	if err := s.admit(ctx, &p); err != nil {
		s.mu.Unlock()
		return err
	}
	b, i := s.place(&p, parts)
	s.mu.Unlock()
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
		return s.idx.checkChange(p.id, &p.change)
	}
	if _, ok := s.idx.m[p.ent.id]; ok {
		return fmt.Errorf("%w: %s", ErrExists, p.ent.id)
	}
	if _, ok := s.pending[p.ent.id]; ok {
		return fmt.Errorf("%w: %s", ErrExists, p.ent.id)
	}
	s.pending[p.ent.id] = struct{}{}
	return nil
}

// place gives a record, under s.mu, its place in the log and in the open
// batch, which it returns with the record's index in it.
func (s *Store) place(p *pendingRec, parts [][]byte) (*batch, int) {
	n := p.fsize
	for _, b := range parts {
		n += int64(len(b))
	}
	if s.segEnd > segHeaderSize && s.segEnd+n > s.opts.SegmentSize {
		s.segBytes[s.segSeq] = s.segEnd // sealed
		s.segSeq++
		s.segEnd = segHeaderSize
	}
	p.seg, p.off = s.segSeq, s.segEnd
	sealHeader(parts[0], p.seg, p.off)
	s.segEnd += n
	s.submitted++
	b := s.cur
	b.iov = append(b.iov, parts...)
	p.iovEnd = len(b.iov)
	b.recs = append(b.recs, *p)
	if len(b.recs) == 1 {
		s.wake.Signal()
	}
	return b, len(b.recs) - 1
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

func (s *Store) newBatch() *batch {
	b := &batch{done: make(chan struct{}), recs: s.spareRecs, iov: s.spareIOV}
	s.spareRecs, s.spareIOV = nil, nil
	return b
}

// commitLoop writes and syncs batches until the Store is closed and
// nothing is left to write.
func (s *Store) commitLoop() {
	defer close(s.loopDone)
	for {
		s.mu.Lock()
		for len(s.cur.recs) == 0 && !s.closed {
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
		s.mu.Unlock()

		n := 0
		if err == nil {
			n, err = s.flush(b)
		}

		s.mu.Lock()
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
		if short {
			s.opts.Logf("%v: the records of this write are refused; writing resumes when there is space", err)
		}
		if roomy {
			s.opts.Logf("queue: writing again after running out of space")
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
// record of a batch that failed for want of space: every record placed
// after it (the open batch) is failed too, since its header names a place
// that depends on the failed ones; the segment is cut back to at, its
// last durable offset, so no torn record or gap is left; and the next
// record takes at's place. A segment sealed before at stays sealed, so
// compaction never sees a segment it may delete written again. It returns
// the failed open batch, for the commit loop to release; an error means
// the segment could not be cut back, and the Store must stop.
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
		return later, nil // its segment was never created (createSegment cleans up)
	}
	// Sync the cut so that a crash cannot bring back records that were
	// refused. If that sync too fails for want of space, the next record's
	// sync makes the new length durable: until then a crash may bring them
	// back, like any record written but not yet synced.
	if err := s.active.Truncate(at.off); err != nil {
		return later, fmt.Errorf("queue: cut segment %d back to offset %d after a failed write: %w", at.seg, at.off, err)
	}
	if err := s.syncer().Sync(s.active); err != nil && !isNoSpace(err) {
		return later, fmt.Errorf("queue: sync segment %d cut back to offset %d: %w", at.seg, at.off, err)
	}
	return later, nil
}

func (s *Store) applyPending(p *pendingRec) {
	if p.ent != nil {
		p.ent.seg, p.ent.off = p.seg, p.off
		s.idx.add(p.ent)
	} else {
		s.idx.apply(p.id, &p.change, p.at)
	}
	if s.mgr != nil {
		s.mgr.applied(p)
	}
}

// recycle keeps a finished batch's slices for a later batch; the waiters
// only read b.err.
func (s *Store) recycle(b *batch) {
	clear(b.iov) // drop references to message content
	clear(b.recs)
	s.mu.Lock()
	s.spareRecs, s.spareIOV = b.recs[:0], b.iov[:0]
	s.mu.Unlock()
}

// flush writes a batch and syncs it: per segment one pwritev and one sync.
// When a batch crosses into a new segment the old one is synced first, then
// the new one is created (header and directory synced), so a crash can only
// ever tear the last segment. It returns how many of the batch's first
// records are durable: all of them, unless it fails.
func (s *Store) flush(b *batch) (int, error) {
	start := 0
	for i := 0; i < len(b.recs); {
		seg := b.recs[i].seg
		j := i + 1
		for j < len(b.recs) && b.recs[j].seg == seg {
			j++
		}
		if seg != s.activeSeq {
			f, err := s.createSegment(seg)
			if err != nil {
				return i, err
			}
			// Every record of the segment before is synced: it is sealed
			// for good, and gets its index file.
			s.indexer.add(s.activeSeq)
			s.setActive(seg, f)
		}
		end := b.recs[j-1].iovEnd
		if err := s.writeRecs(b.recs[i:j], b.iov[start:end], start); err != nil {
			return i, fmt.Errorf("queue: write segment %d: %w", seg, err)
		}
		if err := s.syncer().Sync(s.active); err != nil {
			return i, fmt.Errorf("queue: sync segment %d: %w", seg, err)
		}
		start, i = end, j
	}
	return len(b.recs), nil
}
