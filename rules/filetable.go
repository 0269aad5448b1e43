package rules

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// reloadInterval is how often a file table looks at its file's mtime/size.
const reloadInterval = time.Second

// fileTable holds what a table file parses into (T) and parses the file
// again when it changes: replaced by rename, or edited in place (size or
// mtime differ). A file that fails to reload leaves the previous contents
// in service, reported once through Warn. Lookups never wait for a reload.
type fileTable[T any] struct {
	path     string
	parse    func(data string) (T, error)
	opts     OpenOptions
	interval time.Duration
	now      func() time.Time

	cur       atomic.Pointer[fileSnapshot[T]]
	nextCheck atomic.Int64 // unix nanoseconds
	reload    sync.Mutex   // one reload at a time
	lastErr   string       // guarded by reload: the last reload problem reported
}

type fileSnapshot[T any] struct {
	v  T
	fi os.FileInfo
}

// openFileTable reads and parses path; an error here is a load error.
func openFileTable[T any](path string, o OpenOptions, parse func(data string) (T, error)) (*fileTable[T], error) {
	t := &fileTable[T]{path: path, parse: parse, opts: o, interval: reloadInterval, now: time.Now}
	snap, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur.Store(snap)
	t.nextCheck.Store(t.now().Add(t.interval).UnixNano())
	return t, nil
}

// get returns the current contents, after a reload when one is due.
func (t *fileTable[T]) get() T {
	t.maybeReload()
	return t.cur.Load().v
}

func (t *fileTable[T]) maybeReload() {
	now := t.now().UnixNano()
	if now < t.nextCheck.Load() || !t.reload.TryLock() {
		return
	}
	defer t.reload.Unlock()
	t.nextCheck.Store(now + int64(t.interval))
	old := t.cur.Load()
	fi, err := os.Stat(t.path)
	if err == nil && os.SameFile(fi, old.fi) && fi.ModTime().Equal(old.fi.ModTime()) && fi.Size() == old.fi.Size() {
		return
	}
	snap, err := t.load()
	if err != nil {
		if msg := err.Error(); msg != t.lastErr {
			t.lastErr = msg
			t.opts.warn("%s; keeping the previous contents of %s", msg, t.path)
		}
		return
	}
	t.lastErr = ""
	t.cur.Store(snap)
}

func (t *fileTable[T]) load() (*fileSnapshot[T], error) {
	f, err := os.Open(t.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	v, err := t.parse(string(data))
	if err != nil {
		return nil, err
	}
	return &fileSnapshot[T]{v: v, fi: fi}, nil
}
