package queue

import "encoding/binary"

// State records (type 3) are message records that also carry the
// message's state, so one checksummed record says everything about it:
// copy-forward writes one to move a long-lived message out of an old
// segment, and AppendHeld writes one so a message queued on hold is never
// seen without its hold. The body is the envelope, the content, then the
// state trailer:
//
//	1  trailer version (1)
//	1  state (0 active, 1 deferred, 2 hold, 3 corrupt)
//	1  flags: 1 force-expired, 2 delay warning sent
//	   next try (varint Unix ns, 0 = none)
//	   done recipients: uvarint count, then each index (uvarint)
//	   reasons: uvarint count, then each index (uvarint) and reason (length-prefixed)
//	4  length of the trailer, these 4 bytes included (little-endian)
//
// A later state record of a live ID supersedes the earlier record and
// every change logged before it: it is the state those left.

const stateVersion = 1

const (
	stateExpired = 1 << iota
	stateWarned
)

// minStateTrailer is the shortest valid trailer.
const minStateTrailer = 3 + 1 + 1 + 1 + 4

// appendStateTrailer appends e's state as a state record trailer.
func appendStateTrailer(b []byte, e *entry) []byte {
	start := len(b)
	var flags byte
	if e.expired {
		flags |= stateExpired
	}
	if e.warned {
		flags |= stateWarned
	}
	b = append(b, stateVersion, byte(e.state), flags)
	b = binary.AppendVarint(b, e.nextTry)
	done := e.done()
	ndone := 0
	for _, d := range done {
		if d {
			ndone++
		}
	}
	b = binary.AppendUvarint(b, uint64(ndone))
	for i, d := range done {
		if d {
			b = binary.AppendUvarint(b, uint64(i))
		}
	}
	n := 0
	for _, r := range e.reasons() {
		if r != "" {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i, r := range e.reasons() {
		if r != "" {
			b = appendStr(binary.AppendUvarint(b, uint64(i)), r)
		}
	}
	return binary.LittleEndian.AppendUint32(b, uint32(len(b)-start+4))
}

// stateTrailerLen reads the trailer length at the end of a state record
// body whose envelope is envLen bytes.
func stateTrailerLen(body []byte, envLen uint32) (uint32, bool) {
	if len(body) < minStateTrailer {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(body[len(body)-4:])
	return n, n >= minStateTrailer && uint64(n) <= uint64(len(body))-uint64(envLen)
}

// decodeStateTrailer fills e's state from a trailer (its length field
// excluded). e.nrcpt must be set. Reasons are interned, so they share no
// memory with s.
func (x *index) decodeStateTrailer(s string, e *entry) bool {
	d := decoder{s: s}
	if d.byte() != stateVersion {
		return false
	}
	st := State(d.byte())
	flags := d.byte()
	if st < Active || st > Corrupt {
		return false
	}
	e.state, e.expired, e.warned = st, flags&stateExpired != 0, flags&stateWarned != 0
	e.nextTry = d.varint()
	n := int(e.nrcpt)
	ndone := d.uvarint()
	if d.bad || ndone >= uint64(n) {
		return false // a state record is never written for a message that is done
	}
	var done []bool
	if ndone > 0 {
		done = make([]bool, n)
		for range ndone {
			i := d.uvarint()
			if d.bad || i >= uint64(n) || done[i] {
				return false
			}
			done[i] = true
		}
	}
	nr := d.uvarint()
	if d.bad || nr > uint64(n) {
		return false
	}
	var reasons []string
	if nr > 0 {
		reasons = make([]string, n)
		for range nr {
			i := d.uvarint()
			r := d.str()
			if d.bad || i >= uint64(n) {
				return false
			}
			reasons[i] = x.intern(r)
		}
	}
	if done != nil || reasons != nil {
		e.rs = x.shareRcpts(done, reasons)
	}
	return !d.bad
}

// replayState applies a state record met while reading the log.
func (x *index) replayState(r *rawRecord) {
	e := newEntry(r)
	if r.ok {
		if tail, ok := stateTrailerLen(r.body, r.envLen); ok {
			if n, ok := checkEnvelope(r.body[:r.envLen]); ok {
				e.nrcpt, e.tail = int32(n), tail
				if x.decodeStateTrailer(string(r.body[len(r.body)-int(tail):len(r.body)-4]), e) {
					x.add(e)
					x.keepEnv(r.id, string(r.body[:r.envLen]))
					return
				}
			}
		}
	}
	// A copy whose original is still in the log: the original and its
	// changes say the same, so the message stays as it was.
	kept := x.m.get(r.id) != nil
	outcome := movedToCorrupt
	if kept {
		outcome = "earlier record kept"
	}
	if r.ok {
		x.damage.Records++
		x.logf("%s: unreadable state record in segment %d at offset %d: %s", r.id, r.seg, r.off, outcome)
	} else {
		x.namedDamage(r, "state", outcome)
	}
	if !kept {
		x.addCorrupt(r)
	}
}
