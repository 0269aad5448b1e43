package queue

import (
	"fmt"
	"os"
	"path/filepath"
)

// Snapshot is a read-only view of a queue directory for `postgate queue
// list/show` while the daemon runs: it reads the log without locking or
// changing anything, and ignores a last record that is still being written.
type Snapshot struct {
	logDir string
	idx    *index
}

// OpenReadOnly reads the queue log in dir as it is now.
func OpenReadOnly(dir string) (*Snapshot, error) {
	logDir := filepath.Join(dir, "log")
	if _, err := os.Stat(logDir); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	x := newIndex(nil)
	x.keepEnvelopes()
	if _, _, _, err := recoverLog(logDir, x, false); err != nil {
		return nil, err
	}
	return &Snapshot{logDir: logDir, idx: x}, nil
}

// List returns every live message, in arrival (log) order.
func (s *Snapshot) List() []Message {
	es := s.idx.snapshot()
	envs := make([]string, len(es))
	for i := range es {
		envs[i] = s.idx.envs[es[i].id]
	}
	return messages(es, envs)
}

// Get returns one message's envelope and state.
func (s *Snapshot) Get(id string) (Message, bool) {
	e := s.idx.m.get(id)
	if e == nil {
		return Message{}, false
	}
	return e.message(s.idx.envs[id]), true
}

// Content reads a message's content back, like Store.Content.
func (s *Snapshot) Content(id string) ([]byte, error) {
	e := s.idx.m.get(id)
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	f, err := os.Open(segPath(s.logDir, e.seg))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	defer f.Close()
	return readContent(f, e)
}
