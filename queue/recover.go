package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// lastSegment describes the newest segment after recovery: where Open
// continues appending, or why it cannot.
type lastSegment struct {
	seq      uint32 // 0: there are no segments
	headerOK bool
	end      int // end of the last complete record
	torn     bool
	// cut: the segment ends inside a record whose header names it; the
	// record is in the corrupt queue, so its bytes must stay.
	cut bool
}

// recoverLog replays every segment in logDir into x and returns, besides
// the newest segment, the size of every segment read. Writable is false
// for read-only snapshots, which change nothing on disk and tolerate
// segments that are being written or have just gone.
func recoverLog(logDir string, x *index, writable bool) (lastSegment, map[uint32]int64, error) {
	seqs, err := listSegments(logDir)
	if err != nil {
		return lastSegment{}, nil, fmt.Errorf("queue: %w", err)
	}
	if writable {
		seqs, err = dropUnfinished(logDir, seqs, x.logf)
		if err != nil {
			return lastSegment{}, nil, err
		}
	}
	var (
		buf   []byte
		last  lastSegment
		sizes = make(map[uint32]int64, len(seqs))
	)
	for i, seq := range seqs {
		path := segPath(logDir, seq)
		buf, err = readSegment(path, buf)
		if err != nil {
			if !writable && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return lastSegment{}, nil, fmt.Errorf("queue: %w", err)
		}
		sizes[seq] = int64(len(buf))
		isLast := i == len(seqs)-1
		// A record cut short is named unless a snapshot meets it at the
		// end of the log, where the daemon may be writing it right now.
		res := scanSegment(buf, seq, writable || !isLast, x.replay, func(off, n int) {
			x.damage.Bytes += int64(n)
			x.logf("queue: segment %d offset %d: dropped %d damaged bytes holding no identifiable record", seq, off, n)
		})
		if !res.headerOK && len(buf) >= segHeaderSize {
			x.logf("queue: segment %d: segment header damaged", seq)
		}
		switch {
		case res.cut && !isLast:
			// Only the newest segment is ever written to, so an older one
			// that ends inside a record was cut after it was complete:
			// records written after the cut one are lost, unnamed.
			x.damage.Bytes += int64(res.short)
			x.logf("queue: segment %d: cut inside the record at offset %d, at least %d bytes short: records written after it in the segment are lost", seq, res.end, res.short)
		case res.torn && !isLast:
			x.damage.Bytes += int64(len(buf) - res.end)
			x.logf("queue: segment %d offset %d: dropped %d damaged bytes at the end of the segment", seq, res.end, len(buf)-res.end)
		}
		if isLast {
			last = lastSegment{seq: seq, headerOK: res.headerOK, end: res.end, torn: res.torn, cut: res.cut}
		}
	}
	return last, sizes, nil
}

// Damage returns what Open found damaged in the log.
func (s *Store) Damage() Damage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idx.damage
}

// Damage returns what reading the log found damaged.
func (s *Snapshot) Damage() Damage { return s.idx.damage }

// dropUnfinished removes trailing segments shorter than a segment header:
// they were being created when the system stopped, and no record in them
// was ever acknowledged (a segment's header is synced before its first
// record is written).
func dropUnfinished(logDir string, seqs []uint32, logf func(string, ...any)) ([]uint32, error) {
	for len(seqs) > 0 {
		seq := seqs[len(seqs)-1]
		path := segPath(logDir, seq)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		if fi.Size() >= segHeaderSize {
			break
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		logf("queue: segment %d: removed unfinished segment of %d bytes", seq, fi.Size())
		seqs = seqs[:len(seqs)-1]
	}
	return seqs, nil
}
