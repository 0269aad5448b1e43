package queue

import (
	"math/rand/v2"
	"time"
)

// Queue IDs keep Postfix's shapes, so log parsers (pflogsumm and admins'
// greps) keep working:
//
//   - short: %05X of the microseconds, then the inode number in hex. We have
//     no inode per message; a counter kept to 5 hex digits stands in, so an
//     ID is always 10 characters, e.g. "8045F2AB23".
//   - long (enable_long_queue_ids): base-52 seconds (6+ characters),
//     base-52 microseconds (4), 'z', then the counter in base 51.
//
// The counter alone makes IDs distinct for ~983,000 consecutive IDs; NewID
// also skips any ID still queued, or that may be parked on disk.

const base52 = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"

const (
	shortCounterMin   = 0x10000
	shortCounterRange = 0xF0000 // up to 0xFFFFF: 5 hex digits
)

type idGen struct {
	long bool
	n    uint32
}

func newIDGen(long bool) idGen {
	// A random start keeps IDs from repeating soon after a restart.
	return idGen{long: long, n: rand.Uint32()}
}

func (g *idGen) next(now time.Time) string {
	g.n++
	usec := uint64(now.Nanosecond() / 1000)
	if !g.long {
		var b [10]byte
		putHex(b[:5], usec)
		putHex(b[5:], uint64(shortCounterMin+g.n%shortCounterRange))
		return string(b[:])
	}
	b := make([]byte, 0, 20)
	b = appendBase(b, uint64(now.Unix()), 52, 6)
	b = appendBase(b, usec, 52, 4)
	b = append(b, 'z')
	b = appendBase(b, uint64(g.n), 51, 1)
	return string(b)
}

// putHex writes v as uppercase hex filling b.
func putHex(b []byte, v uint64) {
	const digits = "0123456789ABCDEF"
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&0xF]
		v >>= 4
	}
}

// appendBase appends v in the given base (52 or 51, Postfix's alphabet),
// most significant digit first, padded with '0' to at least width digits.
func appendBase(b []byte, v uint64, base uint64, width int) []byte {
	var tmp [16]byte
	i := len(tmp)
	for v > 0 || len(tmp)-i < width {
		i--
		tmp[i] = base52[v%base]
		v /= base
	}
	return append(b, tmp[i:]...)
}

// NewID returns a new queue ID, in Postfix's short shape (or the long one
// with Options.LongIDs), distinct from every message in the queue and from
// every Append in flight.
func (s *Store) NewID() string {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		id := s.ids.next(now)
		// An ID the filters cannot rule out is skipped, not looked up.
		queued := s.idx.m.get(id) != nil || s.idx.mayBeParked(id)
		_, pending := s.pending[id]
		if !queued && !pending {
			return id
		}
	}
}
