package queue

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Free space. Postfix's smtpd refuses MAIL with 452 4.3.1 while the queue
// file system has no more free blocks than queue_minfree, or fewer than
// 1.5 times message_size_limit (smtpd_check_queue); the Store applies the
// same rule to every new message it is given, so one that arrives while
// the disk fills is refused cleanly at the end of DATA too. What is left
// below that line is for the queue manager's state changes: they are how
// delivered mail gives its space back.

// spaceTTL is how long one statfs answer serves: the check runs at every
// MAIL and every Append, and the free space of a file system does not
// need to be known to the microsecond.
const spaceTTL = 200 * time.Millisecond

// spaceMultiple is Postfix's smtpd_space_multf: free space must exceed
// message_size_limit this many times over.
const spaceMultiple = 1.5

// fsSpace is one reading of the queue file system.
type fsSpace struct {
	at     int64 // when read, Unix ns
	bsize  int64 // block size
	bavail int64 // blocks available to the queue (f_bavail, as Postfix)
	err    error
}

// free is the free space in bytes.
func (r *fsSpace) free() int64 { return r.bsize * r.bavail }

// enough is Postfix's smtpd_check_queue rule, in blocks as Postfix counts.
func (r *fsSpace) enough(minFree, sizeLimit int64) bool {
	if r.err != nil || r.bsize <= 0 {
		return true // cannot tell: the writes will
	}
	return minFree/r.bsize < r.bavail && float64(sizeLimit/r.bsize) < float64(r.bavail)/spaceMultiple
}

// spaceGauge caches statfs of the queue directory.
type spaceGauge struct {
	dir    string
	mu     sync.Mutex // one statfs at a time
	last   atomic.Pointer[fsSpace]
	statfs func(dir string) (bsize, bavail int64, err error) // tests replace it
	logf   func(format string, args ...any)
}

func newSpaceGauge(dir string, logf func(string, ...any)) *spaceGauge {
	return &spaceGauge{dir: dir, statfs: statfs, logf: logf}
}

func statfs(dir string) (bsize, bavail int64, err error) {
	var st unix.Statfs_t
	for {
		err = unix.Statfs(dir, &st)
		if err != unix.EINTR {
			break
		}
	}
	return st.Bsize, int64(st.Bavail), err
}

// read returns a reading at most spaceTTL old.
func (g *spaceGauge) read() *fsSpace {
	now := time.Now().UnixNano()
	r := g.last.Load()
	if r != nil && now-r.at < int64(spaceTTL) {
		return r
	}
	if r != nil && !g.mu.TryLock() {
		return r // being read again right now
	}
	if r == nil {
		g.mu.Lock()
	}
	defer g.mu.Unlock()
	if r2 := g.last.Load(); r2 != r {
		return r2
	}
	bsize, bavail, err := g.statfs(g.dir)
	n := &fsSpace{at: now, bsize: bsize, bavail: bavail}
	if err != nil {
		n.err = fmt.Errorf("queue: statfs %s: %w", g.dir, err)
		if r == nil || r.err == nil || r.err.Error() != n.err.Error() {
			g.logf("%v; the free space check passes until it works", n.err)
		}
	}
	g.last.Store(n)
	return n
}

// stale makes the next read call statfs: a write just failed for lack of
// space, and the next MAIL should know.
func (g *spaceGauge) stale() {
	if r := g.last.Load(); r != nil {
		c := *r
		c.at = 0
		g.last.Store(&c)
	}
}

// Space returns the free bytes of the queue's file system (read at most
// every 200 ms) and whether a new message may be taken, by Postfix's rule,
// under Options.MinFree (queue_minfree) and an SMTP server's
// message_size_limit (0: no limit). When statfs fails it says yes, and the
// error goes to Options.Logf once.
func (s *Store) Space(sizeLimit int64) (free int64, ok bool) {
	r := s.space.read()
	return r.free(), r.enough(s.opts.MinFree, sizeLimit)
}

// checkSpace refuses a new message when the queue is too short of space
// under Options.MinFree and Options.SizeLimit.
func (s *Store) checkSpace() error {
	free, ok := s.Space(s.opts.SizeLimit)
	if ok {
		return nil
	}
	return fmt.Errorf("%w: %d bytes free in %s", ErrNoSpace, free, s.dir)
}

// isNoSpace reports whether a write failed only for want of space (or
// quota), which more space cures, as opposed to an I/O error.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// noSpaceError is a write failure for want of space: it reads as the
// system call's error and matches ErrNoSpace.
type noSpaceError struct{ err error }

func (e noSpaceError) Error() string        { return e.err.Error() }
func (e noSpaceError) Unwrap() error        { return e.err }
func (e noSpaceError) Is(target error) bool { return target == ErrNoSpace }
