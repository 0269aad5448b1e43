package queue

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Store is the queue owned by one daemon: an exclusive lock on its
// directory, the log it appends to, and the index of live messages.
// Its methods are safe for concurrent use.
type Store struct {
	dir, logDir string
	opts        Options
	lock        *os.File // flock'd DIR/lock
	logDirF     *os.File // synced after creating a segment

	mu         sync.Mutex
	wake       sync.Cond   // the commit loop waits on it for work
	linger     *time.Timer // makes a batch of lingering records due (see deliveredLinger)
	idx        *index
	pending    map[string]struct{} // IDs appended but not yet durable
	ids        idGen
	now        func() time.Time // the clock for IDs; tests pin it
	cur        *batch           // records waiting for the next write+sync
	segSeq     uint32           // segment the next record goes to
	segEnd     int64            // offset the next record goes to
	submitted  int64            // records accepted since Open; tests watch it
	closed     bool
	err        error               // sticky write/sync failure (not for want of space: see rewind)
	space      *spaceGauge         // free space of the queue's file system
	flushing   *batch              // the batch being synced, applied when durable
	segBytes   map[uint32]int64    // size of each sealed segment
	mgr        *manager            // the running queue manager, nil if none
	delivering map[string]struct{} // messages the manager has taken: Postfix's active queue
	// compactHook, when set by a test, is called at each step of a
	// compaction ("copy", "copied", "deleted").
	compactHook func(stage string)

	// Owned by the commit loop (and by Open before it starts).
	active    *os.File
	activeSeq uint32
	// activeSynced is how much of the active segment a completed sync
	// covers (under mu): moving on to a new segment syncs the rest first.
	activeSynced int64
	spareRecs    []pendingRec
	short        bool // the last batch failed for want of space (logged once)

	fmu   sync.RWMutex
	files map[uint32]*os.File // open segments, for Content; nil once closed

	indexer *segIndexer // writes sealed segments' index files

	loopDone chan struct{}
}

// Open opens (creating if needed) the queue directory, takes an exclusive
// lock (flock on DIR/lock) so two daemons cannot share it, and recovers:
// it scans the segments, cuts a torn tail off the last one, moves damaged
// records found in the middle to corrupt (identified by ID when the record
// header is intact; an unidentifiable fragment is dropped and logged), and
// keeps every later record.
func Open(dir string, opts Options) (*Store, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.SegmentSize > maxSegmentSize {
		return nil, fmt.Errorf("queue: segment size (postgate_queue_segment_size) %d is over the 4 GiB a segment may hold", opts.SegmentSize)
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	logDir := filepath.Join(dir, "log")
	if err := makeDirs(dir, logDir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir: dir, logDir: logDir, opts: opts, lock: lock,
		idx:        newIndex(opts.Logf),
		pending:    make(map[string]struct{}),
		delivering: make(map[string]struct{}),
		ids:        newIDGen(opts.LongIDs),
		now:        time.Now,
		files:      make(map[uint32]*os.File),
		loopDone:   make(chan struct{}),
		space:      newSpaceGauge(dir, opts.Logf),
		indexer:    newSegIndexer(),
	}
	s.wake.L = &s.mu
	unindexed, err := s.open()
	if err != nil {
		s.closeFiles()
		lock.Close()
		return nil, err
	}
	s.cur = s.newBatch()
	s.linger = time.AfterFunc(time.Hour, s.lingered)
	s.linger.Stop()
	go s.commitLoop()
	go s.runIndexer(s.indexer)
	s.indexer.add(unindexed...)
	return s, nil
}

// open recovers the log and readies the segment appends go to. It
// returns the sealed segments that have no valid index file.
func (s *Store) open() (unindexed []uint32, err error) {
	if s.logDirF, err = os.Open(s.logDir); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	last, sizes, unindexed, err := recoverLog(s.logDir, s.idx, true)
	if err != nil {
		return nil, err
	}
	s.segBytes = sizes // the sealed ones: all but the one appends go to
	if last.seq == 0 || !last.headerOK || last.cut {
		// No log yet, or the newest segment's header is damaged, or it
		// ends in a record recovery put in the corrupt queue: start a
		// fresh segment rather than append behind damage.
		f, err := s.createSegment(last.seq + 1)
		if err != nil {
			return nil, err
		}
		s.setActive(last.seq+1, f)
		s.segSeq, s.segEnd = last.seq+1, segHeaderSize
		return unindexed, nil
	}
	f, err := os.OpenFile(segPath(s.logDir, last.seq), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	s.setActive(last.seq, f)
	delete(s.segBytes, last.seq)
	// Appends go to it again: an index file it may have from when it was
	// sealed (its successor since removed unfinished) no longer holds.
	if err := os.Remove(idxPath(s.logDir, last.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if last.torn {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		// Never acknowledged: only a synced record is, and the sync covers
		// everything before it.
		s.opts.Logf("queue: segment %d: cut torn tail of %d bytes at offset %d", last.seq, fi.Size()-int64(last.end), last.end)
		if err := f.Truncate(int64(last.end)); err != nil {
			return nil, fmt.Errorf("queue: truncate torn tail: %w", err)
		}
	}
	s.segSeq, s.segEnd = last.seq, int64(last.end)
	return unindexed, nil
}

func makeDirs(dir, logDir string) error {
	if _, err := os.Stat(logDir); err == nil {
		return nil
	}
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	// Make the new directories themselves durable.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if f, err := os.Open(d); err == nil {
			f.Sync()
			f.Close()
		}
	}
	return nil
}

func (s *Store) setActive(seq uint32, f *os.File) {
	s.active, s.activeSeq, s.activeSynced = f, seq, segHeaderSize
	s.fmu.Lock()
	s.files[seq] = f
	s.fmu.Unlock()
}

// createSegment creates segment seq with its header, durable together with
// its directory entry before any record in it can be acknowledged.
func (s *Store) createSegment(seq uint32) (*os.File, error) {
	path := segPath(s.logDir, seq)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: create segment: %w", err)
	}
	if _, err = f.WriteAt(segHeader(seq, time.Now()), 0); err == nil {
		if err = s.syncer().Sync(f); err == nil {
			err = s.syncDir()
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("queue: create segment %d: %w", seq, err)
	}
	return f, nil
}

func (s *Store) syncer() Syncer {
	if s.opts.Syncer != nil {
		return s.opts.Syncer
	}
	return fdatasyncer{}
}

func (s *Store) syncDir() error {
	if s.opts.Syncer != nil {
		return s.opts.Syncer.Sync(s.logDirF)
	}
	return s.logDirF.Sync() // fsync: a directory's entries are its metadata
}

// Close waits for appends already accepted to be written and synced, then
// releases the directory. Later calls fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.linger.Stop()
	s.wake.Broadcast()
	s.mu.Unlock()
	<-s.loopDone
	s.indexer.stop()
	err := s.closeFiles()
	if cerr := s.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("queue: %w", cerr)
	}
	return err
}

func (s *Store) closeFiles() error {
	var err error
	s.fmu.Lock()
	for _, f := range s.files {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("queue: %w", cerr)
		}
	}
	s.files = nil
	s.fmu.Unlock()
	if s.logDirF != nil {
		s.logDirF.Close()
	}
	return err
}

// Get returns a message's envelope and state from the index (no content).
func (s *Store) Get(id string) (Message, bool) {
	s.mu.Lock()
	c, ok := s.peek(id)
	if ok {
		c = s.shown(&c)
	}
	s.mu.Unlock()
	if !ok {
		return Message{}, false
	}
	return c.message(s.envelopeOrNone(&c)), true
}

// List returns every live message, in arrival (log) order, corrupt ones
// included.
func (s *Store) List() []Message {
	s.mu.Lock()
	es := append(s.idx.snapshot(), s.allParked()...)
	for i := range es {
		es[i] = s.shown(&es[i])
	}
	s.mu.Unlock()
	slices.SortFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	return messages(es, s.envelopes(es))
}

// Counts are the number of messages and their content bytes in each
// queue (indexed by State), as List would show them, without copying the
// index: for metrics, read at every scrape.
func (s *Store) Counts() (msgs [Corrupt + 1]int, bytes [Corrupt + 1]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := range s.idx.m.all() {
		st := e.state
		if _, ok := s.delivering[e.id]; ok && st == Deferred {
			st = Active
		}
		if st >= Active && st <= Corrupt {
			msgs[st]++
			bytes[st] += e.contentLen()
		}
	}
	for _, g := range s.idx.parked {
		for st := range g.msgs {
			msgs[st] += g.msgs[st]
			bytes[st] += g.bytes[st]
		}
	}
	return msgs, bytes
}

// envelopeOrNone is c's encoded envelope for a listing, "" when it cannot
// be read (a damaged record's, or the message deleted meanwhile).
func (s *Store) envelopeOrNone(c *entry) string {
	env, _ := s.envelope(c)
	return env
}

// shown copies e as admins see it: a deferred message the queue manager
// has taken for delivery is in the active queue, as in Postfix.
func (s *Store) shown(e *entry) entry {
	c := *e
	if _, ok := s.delivering[e.id]; ok && c.state == Deferred {
		c.state = Active
	}
	return c
}

// Content reads a message's content back from its segment and verifies
// it. For a corrupt message whose own record is damaged it returns the raw
// record body along with an error wrapping ErrCorrupt, so it stays
// inspectable.
func (s *Store) Content(id string) ([]byte, error) {
	for try := 0; ; try++ {
		c, err := s.locate(id)
		if err != nil {
			return nil, err
		}
		f, err := s.segmentFile(c.seg)
		var content []byte
		if err == nil {
			content, err = readContent(f, &c)
		}
		if errors.Is(err, ErrCorrupt) && !c.damaged() && !s.moved(&c) {
			err = s.contentDamaged(&c, "record does not verify when read back")
		}
		if err != nil && try == 0 && s.moved(&c) {
			continue // copied forward, its old segment deleted meanwhile
		}
		return content, err
	}
}

// locate copies the index entry of a live message.
func (s *Store) locate(id string) (entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.peek(id)
	if !ok {
		return entry{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return c, nil
}

// moved reports whether c's message now has its record elsewhere.
func (s *Store) moved(c *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.idx.m.get(c.id)
	return e != nil && (e.seg != c.seg || e.off != c.off)
}

// SegmentCount returns the number of segment files in the log.
func (s *Store) SegmentCount() int {
	seqs, _ := listSegments(s.logDir)
	return len(seqs)
}

// segmentFile returns segment seq open for reading, opening it once.
func (s *Store) segmentFile(seq uint32) (*os.File, error) {
	s.fmu.RLock()
	f, files := s.files[seq], s.files
	s.fmu.RUnlock()
	if f != nil {
		return f, nil
	}
	if files == nil {
		return nil, ErrClosed
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.files == nil {
		return nil, ErrClosed
	}
	if f = s.files[seq]; f != nil {
		return f, nil
	}
	f, err := os.Open(segPath(s.logDir, seq))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	s.files[seq] = f
	return f, nil
}

// readContent reads e's record from r and returns its verified content.
func readContent(r io.ReaderAt, e *entry) ([]byte, error) {
	n := recOverhead + int(e.bodyLen)
	buf := make([]byte, n)
	got, err := r.ReadAt(buf, int64(e.off))
	if err != nil && !(e.damage == recordCut && err == io.EOF && got >= recHeaderSize) {
		return nil, fmt.Errorf("queue: %s: read: %w", e.id, err)
	}
	h, ok := parseHeader(buf, e.seg, int64(e.off))
	if !ok || h.id != e.id || h.bodyLen != e.bodyLen {
		return nil, fmt.Errorf("%w: %s: record header does not verify", ErrCorrupt, e.id)
	}
	body := buf[recHeaderSize : min(got, n-recTrailerSize) : n-recTrailerSize] // a cut record: what is left
	if e.damaged() {
		return body, fmt.Errorf("%w: %s: raw record body returned", ErrCorrupt, e.id)
	}
	if !trailerOK(buf) {
		return nil, fmt.Errorf("%w: %s: content checksum mismatch", ErrCorrupt, e.id)
	}
	return body[e.envLen : len(body)-int(e.tail)], nil
}

// failed reports whether the store can no longer take records.
func (s *Store) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usable() != nil
}
