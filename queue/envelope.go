package queue

import (
	"errors"
	"fmt"
	"io"
)

// The index keeps no envelopes (index.go): they are read from the
// segment when the queue manager takes a message, when a listing shows
// it, and for ETRN.

// readEnvelope reads the encoded envelope of c's record from r. A small
// record is read whole, in one pread, and its checksum verified; a larger
// one's header is verified and its envelope bytes are verified with its
// content, when the content is read for delivery (openContent checksums
// the envelope as it reads it then). A damaged record's envelope is
// returned unverified when its header holds and it decodes, so an admin
// sees whose mail it is.
func readEnvelope(r io.ReaderAt, c *entry) (string, error) {
	n := recHeaderSize + int(c.envLen)
	whole := !c.damaged() && c.recLen() <= smallRecord
	if whole {
		n = int(c.recLen())
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, int64(c.off)); err != nil {
		return "", fmt.Errorf("queue: %s: read: %w", c.id, err)
	}
	h, ok := parseHeader(buf, c.seg, int64(c.off))
	if !ok || h.id != c.id || h.bodyLen != c.bodyLen || h.envLen != c.envLen {
		return "", fmt.Errorf("%w: %s: record header does not verify", ErrCorrupt, c.id)
	}
	if whole && !trailerOK(buf) {
		return "", fmt.Errorf("%w: %s: content checksum mismatch", ErrCorrupt, c.id)
	}
	env := buf[recHeaderSize : recHeaderSize+int(c.envLen)]
	if _, ok := checkEnvelope(env); !ok {
		return "", fmt.Errorf("%w: %s: unreadable envelope", ErrCorrupt, c.id)
	}
	return string(env), nil
}

// envelope reads the encoded envelope of c, a copy of an index entry, from
// its segment, following the message if compaction moved it meanwhile.
// A message found damaged here that was not known to be is moved to the
// corrupt queue (contentDamaged).
func (s *Store) envelope(c *entry) (string, error) {
	for try := 0; ; try++ {
		f, err := s.segmentFile(c.seg)
		var env string
		if err == nil {
			env, err = readEnvelope(f, c)
		}
		if err != nil && try == 0 && s.moved(c) {
			if *c, err = s.locate(c.id); err != nil {
				return "", err
			}
			continue
		}
		if err != nil && !c.damaged() && errors.Is(err, ErrCorrupt) {
			err = s.contentDamaged(c, "envelope does not verify when read back")
		}
		return env, err
	}
}

// envelopes returns the encoded envelopes of cs, copies of index entries,
// "" where one cannot be read (as envelopeOrNone). Those in a sealed
// segment with an index file are read from it, one read for all of them,
// not a pread each: ETRN and listings over a backlog of a million
// messages. A damaged message's segment has none.
func (s *Store) envelopes(cs []entry) []string {
	envs := make([]string, len(cs))
	bySeg := make(map[uint32][]int)
	for i := range cs {
		bySeg[cs[i].seg] = append(bySeg[cs[i].seg], i)
	}
	for seq, is := range bySeg {
		if len(is) >= idxReadMin {
			s.envelopesFromIndex(seq, cs, is, envs)
		}
		for _, i := range is {
			if envs[i] == "" {
				envs[i] = s.envelopeOrNone(&cs[i])
			}
		}
	}
	return envs
}

// idxReadMin is how many messages of a segment make reading its index
// file (a few MB for a 64 MiB segment) cheaper than a pread each.
const idxReadMin = 64

// envelopesFromIndex fills envs[i], for i in is (messages of segment
// seq), from the segment's index file, if it has one that holds.
func (s *Store) envelopesFromIndex(seq uint32, cs []entry, is []int, envs []string) {
	data, size, ok := readSegIndex(s.logDir, seq)
	if !ok {
		return
	}
	at := make(map[uint32]int, len(is))
	for _, i := range is {
		at[cs[i].off] = i
	}
	err := decodeSegIndex(data, seq, size, func(r *rawRecord) {
		i, ok := at[uint32(r.off)]
		if !ok || r.typ == recChange || r.id != cs[i].id || r.envLen != cs[i].envLen || r.bodyLen != cs[i].bodyLen {
			return
		}
		env := r.body[:r.envLen]
		if _, ok := checkEnvelope(env); ok {
			envs[i] = string(env)
		}
	})
	if err != nil {
		s.opts.Logf("queue: segment %d: index file %s not used (%v): reading the segment", seq, idxPath(s.logDir, seq), err)
	}
}
