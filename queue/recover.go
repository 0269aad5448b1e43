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
// the newest segment, the size of every segment read, and the older
// segments it had to read whole for want of a valid index file (segindex.go).
// The newest is always read whole. Writable is false for read-only
// snapshots, which change nothing on disk and tolerate segments that are
// being written or have just gone.
func recoverLog(logDir string, x *index, writable bool) (last lastSegment, sizes map[uint32]int64, unindexed []uint32, err error) {
	seqs, err := listSegments(logDir)
	if err != nil {
		return lastSegment{}, nil, nil, fmt.Errorf("queue: %w", err)
	}
	if writable {
		seqs, err = dropUnfinished(logDir, seqs, x.logf)
		if err != nil {
			return lastSegment{}, nil, nil, err
		}
		if err = removeStrayIndexes(logDir, seqs); err != nil {
			return lastSegment{}, nil, nil, err
		}
	}
	var buf []byte
	sizes = make(map[uint32]int64, len(seqs))
	for i, seq := range seqs {
		isLast := i == len(seqs)-1
		if !isLast {
			if size, ok := replayIndex(logDir, seq, x); ok {
				sizes[seq] = size
				continue
			}
		}
		path := segPath(logDir, seq)
		buf, err = readSegment(path, buf)
		if err != nil {
			if !writable && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return lastSegment{}, nil, nil, fmt.Errorf("queue: %w", err)
		}
		sizes[seq] = int64(len(buf))
		if !isLast {
			unindexed = append(unindexed, seq)
		}
		// A record cut short is named unless a snapshot meets it at the
		// end of the log, where the daemon may be writing it right now.
		rec, kept := x.replay, false
		if isLast && writable {
			rec = func(r *rawRecord) { kept = x.replayNewest(r) || kept }
		}
		res := scanSegment(buf, seq, writable || !isLast, rec, func(off, n int) {
			x.damage.Bytes += int64(n)
			x.logf("queue: segment %d offset %d: dropped %d damaged bytes holding no identifiable record", seq, off, n)
		})
		if !res.headerOK && len(buf) >= segHeaderSize {
			x.logf("queue: segment %d: segment header damaged", seq)
		}
		switch {
		case res.cut && !isLast:
			// Only the newest segment is written to. An older one that ends
			// inside a record was cut after it was complete, and the
			// records written after that one are lost, unnamed; or it was
			// the newest when the system stopped, and Open kept it for the
			// message it ends in.
			x.logf("queue: segment %d: ends inside the record at offset %d, %d bytes short: if the segment was cut, the records written after it in the segment are lost", seq, res.end, res.short)
		case res.torn && !isLast:
			x.damage.Bytes += int64(len(buf) - res.end)
			x.logf("queue: segment %d offset %d: dropped %d damaged bytes at the end of the segment", seq, res.end, len(buf)-res.end)
		}
		if isLast {
			last = lastSegment{seq: seq, headerOK: res.headerOK, end: res.end, torn: res.torn, cut: kept}
		}
	}
	return last, sizes, unindexed, nil
}

// replayNewest replays a record of the newest segment at Open, where a
// record cut short is most likely a write the system stopped in: never
// synced, so never acknowledged nor relied on. A cut change is dropped
// (the message keeps the state it had, as if the change was never made:
// putting it in the corrupt queue would strand it after every such
// crash), and so is a cut copy (state record) whose original is still
// there; a cut message is put in the corrupt queue like any damaged one,
// since nothing tells a torn write from a file cut after its 250. It
// reports whether the record now stands for a message in the corrupt
// queue, whose bytes must then stay.
func (x *index) replayNewest(r *rawRecord) bool {
	if !r.cut {
		x.replay(r)
		return false
	}
	if r.typ == recChange || r.typ == recState && x.m.get(r.id) != nil {
		kind := "change"
		if r.typ == recState {
			kind = "state"
		}
		x.logf("%s: %s record cut short at the end of segment %d at offset %d: a write the system stopped in, never relied on: dropped", r.id, kind, r.seg, r.off)
		return false
	}
	r.torn = true
	x.replay(r)
	e := x.m.get(r.id)
	return e != nil && e.seg == r.seg && int64(e.off) == r.off
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
