package queue

import "time"

// Segments end by size (place) and by age. A segment that records still go
// to is never deleted, so without an age limit a queue whose traffic fits
// in one segment would never give back the space of mail long delivered:
// on a full disk, the space that deliveries are meant to free.

// segmentMaxAge is how long a segment takes records, from when the queue
// manager first sees it holding one, before the next record starts a new
// segment. Compaction then deletes it once nothing in it is live.
const segmentMaxAge = 5 * time.Minute

// activeSegment returns the segment records go to and whether it holds
// any.
func (s *Store) activeSegment() (seq uint32, used bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.segSeq, s.segEnd > segHeaderSize
}

// seal ends segment seq if records still go to it and it holds some: the
// next record starts a new segment. The new file is created when that
// record is written; seq itself is never written again (rewind does not
// go back past a sealed segment), so compaction may delete it even before.
func (s *Store) seal(seq uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.segSeq != seq || s.segEnd <= segHeaderSize {
		return
	}
	s.segBytes[s.segSeq] = s.segEnd
	s.segSeq++
	s.segEnd = segHeaderSize
}

// sealOld seals the active segment once it is segmentMaxAge old, and
// returns when it will be (zero: it holds nothing yet).
func (m *manager) sealOld(now time.Time) time.Time {
	seq, used := m.s.activeSegment()
	if !used {
		m.segSeen = 0
		return time.Time{}
	}
	if seq != m.segSeen {
		m.segSeen, m.segSince = seq, now
	}
	due := m.segSince.Add(segmentMaxAge)
	if now.Before(due) {
		return due
	}
	m.s.seal(seq)
	m.segSeen = 0
	return time.Time{}
}
