package queue

import "sync"

// segIndexer writes the index files of sealed segments in the background,
// off the append path: the commit loop hands it a segment once the
// segment's last record is synced and the next segment created, and Open
// the sealed segments it had to read whole.
type segIndexer struct {
	mu      sync.Mutex
	queue   []uint32
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

func newSegIndexer() *segIndexer {
	return &segIndexer{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// add queues segments for indexing.
func (q *segIndexer) add(seqs ...uint32) {
	q.mu.Lock()
	q.queue = append(q.queue, seqs...)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// stop lets the indexer finish what is queued, and waits for it.
func (q *segIndexer) stop() {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	q.add()
	<-q.done
}

// runIndexer indexes queued segments until stopped with nothing left to do.
func (s *Store) runIndexer(q *segIndexer) {
	defer close(q.done)
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			stopped := q.stopped
			q.mu.Unlock()
			if stopped {
				return
			}
			<-q.wake
			continue
		}
		seq := q.queue[0]
		q.queue = q.queue[1:]
		q.mu.Unlock()
		if err := s.writeSegIndex(seq); err != nil {
			s.opts.Logf("queue: segment %d: cannot write its index file (the next start reads the segment whole): %v", seq, err)
		}
	}
}
