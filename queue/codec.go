package queue

import (
	"encoding/binary"
	"errors"
	"time"
	"unsafe"
)

// Body encodings of message envelopes and changes; doc.go describes them.

const envVersion = 1

var errMalformed = errors.New("queue: malformed record body")

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

func strLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// nanos and fromNanos store times as Unix nanoseconds, the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// envelopeLen is the exact encoded size of env, so the record buffer is
// allocated once.
func envelopeLen(env *Envelope, arrival int64) int {
	n := 1 + varintLen(arrival) + strLen(env.Sender) + strLen(env.RET) + strLen(env.EnvID) +
		strLen(env.ClientName) + strLen(env.ClientAddr) + strLen(env.Helo) + strLen(env.Proto) +
		uvarintLen(uint64(len(env.Recipients)))
	for i := range env.Recipients {
		r := &env.Recipients[i]
		n += strLen(r.Addr) + strLen(r.ORCPT) + strLen(r.Notify)
	}
	if hasOrig(env) {
		n += strLen(env.Filter)
		for i := range env.Recipients {
			n += strLen(env.Recipients[i].Orig)
		}
	} else if env.Filter != "" {
		n += strLen(env.Filter)
	}
	return n
}

// hasOrig reports whether a recipient of env has an original address.
func hasOrig(env *Envelope) bool {
	for i := range env.Recipients {
		if env.Recipients[i].Orig != "" {
			return true
		}
	}
	return false
}

func appendEnvelope(b []byte, env *Envelope, arrival int64) []byte {
	b = append(b, envVersion)
	b = binary.AppendVarint(b, arrival)
	for _, s := range [...]string{env.Sender, env.RET, env.EnvID, env.ClientName, env.ClientAddr, env.Helo, env.Proto} {
		b = appendStr(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(env.Recipients)))
	for i := range env.Recipients {
		r := &env.Recipients[i]
		b = appendStr(appendStr(appendStr(b, r.Addr), r.ORCPT), r.Notify)
	}
	// Fields after the recipients are optional, each present when it or
	// one after it is set: older envelopes end here.
	orig := hasOrig(env)
	if env.Filter != "" || orig {
		b = appendStr(b, env.Filter)
	}
	if orig {
		for i := range env.Recipients {
			b = appendStr(b, env.Recipients[i].Orig)
		}
	}
	return b
}

// decoder reads the encodings from a string, so decoded strings are
// substrings sharing its memory: one allocation holds a whole envelope.
type decoder struct {
	s   string
	i   int
	bad bool
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.i >= len(d.s) {
			break
		}
		c := d.s[d.i]
		d.i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	d.bad = true
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) byte() byte {
	if d.i >= len(d.s) {
		d.bad = true
		return 0
	}
	d.i++
	return d.s[d.i-1]
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.s)-d.i) {
		d.bad = true
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// decodeEnvelope decodes an encoded envelope (without its ID, which lives
// in the record header).
func decodeEnvelope(s string) (Envelope, error) {
	d := decoder{s: s}
	var env Envelope
	if d.byte() != envVersion {
		return env, errMalformed
	}
	env.Arrival = fromNanos(d.varint())
	env.Sender, env.RET, env.EnvID = d.str(), d.str(), d.str()
	env.ClientName, env.ClientAddr, env.Helo, env.Proto = d.str(), d.str(), d.str(), d.str()
	n := d.uvarint()
	// Each recipient takes at least 3 bytes: bound n before allocating.
	if d.bad || n == 0 || n > uint64(len(s)-d.i)/3 {
		return env, errMalformed
	}
	env.Recipients = make([]Recipient, n)
	for i := range env.Recipients {
		env.Recipients[i] = Recipient{Addr: d.str(), ORCPT: d.str(), Notify: d.str()}
	}
	if d.i < len(s) {
		env.Filter = d.str()
	}
	if d.i < len(s) {
		for i := range env.Recipients {
			env.Recipients[i].Orig = d.str()
		}
	}
	if d.bad {
		return env, errMalformed
	}
	return env, nil
}

// checkEnvelope validates an encoded envelope (bytes read from a segment)
// without allocating and returns its recipient count.
func checkEnvelope(b []byte) (nrcpt int, ok bool) {
	// The decoder reads strings; this one views b and is gone on return.
	s := unsafe.String(unsafe.SliceData(b), len(b))
	d := decoder{s: s}
	if d.byte() != envVersion {
		return 0, false
	}
	d.varint()
	for range 7 {
		d.str()
	}
	n := d.uvarint()
	if d.bad || n == 0 || n > uint64(len(s)-d.i)/3 {
		return 0, false
	}
	for range 3 * n {
		d.str()
	}
	if d.i < len(s) {
		d.str() // the content filter
	}
	if d.i < len(s) {
		for range n {
			d.str() // original recipients
		}
	}
	return int(n), !d.bad
}

func changeLen(c *Change, at int64) int {
	n := 1 + varintLen(at) + varintLen(nanos(c.Until)) + strLen(c.Reason)
	if c.Rcpts == nil {
		return n + 1
	}
	n += uvarintLen(uint64(len(c.Rcpts)) + 1)
	for _, r := range c.Rcpts {
		n += uvarintLen(uint64(r))
	}
	return n
}

func appendChange(b []byte, c *Change, at int64) []byte {
	b = append(b, byte(c.Kind))
	b = binary.AppendVarint(b, at)
	b = binary.AppendVarint(b, nanos(c.Until))
	b = appendStr(b, c.Reason)
	if c.Rcpts == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Rcpts))+1)
	for _, r := range c.Rcpts {
		b = binary.AppendUvarint(b, uint64(r))
	}
	return b
}

// decodeChange decodes a change body; at is when it was made.
func decodeChange(s string) (c Change, at int64, err error) {
	d := decoder{s: s}
	c.Kind = ChangeKind(d.byte())
	at = d.varint()
	c.Until = fromNanos(d.varint())
	c.Reason = d.str()
	n := d.uvarint()
	if d.bad || n > uint64(len(s)-d.i)+1 {
		return c, 0, errMalformed
	}
	if n > 0 {
		c.Rcpts = make([]int, n-1)
		for i := range c.Rcpts {
			r := d.uvarint()
			if r > 1<<31 {
				d.bad = true
			}
			c.Rcpts[i] = int(r)
		}
	}
	if d.bad {
		return c, 0, errMalformed
	}
	return c, at, nil
}
