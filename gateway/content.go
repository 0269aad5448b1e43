package gateway

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// A message is assembled before it is appended to the queue: our
// Received: header, then the client's content. It is held in memory while
// postgate_memory_limit allows; beyond that it moves to a spool file
// (spool.go) and goes on there.

const (
	// poolMax is the largest buffer kept for reuse: common messages fit,
	// and a pool of big buffers would hold memory long after a burst of
	// big messages.
	poolMax = 256 << 10
	// minRoom is the free room below which the in-memory copy grows.
	minRoom = 4 << 10
	// ioSize is the read buffer of a message in a spool file. It is not
	// taken from the budget (a session must make progress when the
	// budget is spent); at most one per session receiving content.
	ioSize = 64 << 10
	// headerPrefix is how much of a spooled message messageID reads: the
	// header, up to Postfix's header_size_limit default.
	headerPrefix = 102400
)

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// getBuffer returns an empty pooled buffer (the pointer goes back with
// putBuffer).
func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

// putBuffer returns b (the buffer of bp) to the pool unless it is big.
func putBuffer(bp *[]byte, b []byte) {
	if cap(b) > poolMax {
		return
	}
	*bp = b[:0]
	bufferPool.Put(bp)
}

// assembly is a message being received.
type assembly struct {
	budget *memBudget
	dir    string // where spool files go

	// In memory: buf is the message so far; held bytes of the budget cover
	// cap(buf). bp is the pool's pointer while buf came from the pool.
	buf  []byte
	bp   *[]byte
	held int64

	start int   // where the client's content begins (after our Received:)
	raw   int64 // the client's bytes as they came (what size limits count)

	// In a spool file: size bytes written, with bare LFs made CRLF as they
	// were written; cr: the last byte written was a CR; last: the last
	// byte written; io: the read buffer, fill bytes of it not written yet.
	file     *os.File
	size     int64
	cr       bool
	last     byte
	io, fix  []byte
	iobp     *[]byte
	fill     int
	bareLF   bool  // a bare LF went to the spool file
	spoolErr error // the spool file failed: the content is dropped
	dropped  bool  // the content is not kept (too big, or spoolErr)
}

// newAssembly starts a message in a pooled buffer; the caller appends our
// Received: header to buf and sets start.
func newAssembly(budget *memBudget, dir string) *assembly {
	a := &assembly{budget: budget, dir: dir, bp: getBuffer()}
	a.buf = *a.bp
	return a
}

// readFrom appends what r yields. With a limit (> 0), content past it
// makes the message too big: the message is dropped at once and r read on
// to its end holding nothing, so the dialogue stays in step.
func (a *assembly) readFrom(r io.Reader, limit int64) (tooBig bool, err error) {
	for {
		if limit > 0 && a.raw == limit {
			return a.pastLimit(r)
		}
		p := a.space()
		if limit > 0 && int64(len(p)) > limit-a.raw {
			p = p[:limit-a.raw]
		}
		n, err := r.Read(p)
		a.raw += int64(n)
		a.wrote(n)
		if err == io.EOF {
			a.flush()
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// pastLimit reads on after limit bytes: more content makes the message
// too big.
func (a *assembly) pastLimit(r io.Reader) (bool, error) {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n == 0 {
		if err == io.EOF {
			a.flush()
			err = nil
		}
		return false, err
	}
	a.drop()
	_, err = io.Copy(io.Discard, r)
	return true, err
}

// space is where the next read goes: the in-memory buffer's free room
// while the budget allows, else the spool file's read buffer.
func (a *assembly) space() []byte {
	if !a.dropped && a.file == nil && !a.room() {
		if err := a.spill(); err != nil {
			a.fail(err)
		}
	}
	if a.file == nil && !a.dropped {
		return a.buf[len(a.buf):cap(a.buf)]
	}
	if a.io == nil {
		a.iobp = getBuffer()
		if cap(*a.iobp) < ioSize {
			*a.iobp = make([]byte, 0, ioSize)
		}
		a.io = (*a.iobp)[:ioSize]
	}
	if a.dropped {
		return a.io
	}
	return a.io[a.fill:]
}

// wrote takes in n bytes just read into space().
func (a *assembly) wrote(n int) {
	switch {
	case a.dropped:
	case a.file == nil:
		a.buf = a.buf[:len(a.buf)+n]
	default:
		if a.fill += n; a.fill == len(a.io) {
			a.flush()
		}
	}
}

// room makes sure the in-memory buffer has room for a read, taking what it
// needs from the budget; false when the budget cannot give it.
func (a *assembly) room() bool {
	if have := int64(cap(a.buf)); a.held < have {
		if !a.budget.take(have - a.held) {
			return false
		}
		a.held = have
	}
	if cap(a.buf)-len(a.buf) >= minRoom {
		return true
	}
	return a.grow(max(2*cap(a.buf), 2*minRoom))
}

// grow moves the in-memory message to a buffer of capacity n, if the
// budget has room for it while the old one is still held.
func (a *assembly) grow(n int) bool {
	if !a.budget.take(int64(n)) {
		return false
	}
	b := make([]byte, len(a.buf), n)
	copy(b, a.buf)
	a.freeBuffer()
	a.buf, a.held = b, int64(n)
	return true
}

// freeBuffer gives the in-memory buffer back: to the budget, and to the
// pool if it is small.
func (a *assembly) freeBuffer() {
	a.budget.give(a.held)
	a.held = 0
	if a.bp == nil {
		a.bp = new([]byte)
	}
	putBuffer(a.bp, a.buf)
	a.buf, a.bp = nil, nil
}

// spill moves the message to a spool file: what is in memory now, and from
// then on all that follows. The memory goes back to the budget.
func (a *assembly) spill() error {
	f, err := createSpool(a.dir)
	if err != nil {
		return err
	}
	a.file = f
	err = a.write(a.buf)
	a.freeBuffer()
	return err
}

// flush writes the read buffer to the spool file.
func (a *assembly) flush() {
	if a.file == nil || a.dropped || a.fill == 0 {
		return
	}
	if err := a.write(a.io[:a.fill]); err != nil {
		a.fail(err)
	}
	a.fill = 0
}

// write appends p to the spool file with every bare LF made CRLF, the
// streaming form of normalizeLF: whether the byte before p was a CR
// carries over from the previous write, so a CRLF split between two reads
// stays one line end. Content with bare LFs is fixed a read buffer's size
// at a time, so fixing never holds more than that.
func (a *assembly) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if !hasBareLF(p, a.cr) {
		return a.writeOut(p, p)
	}
	a.bareLF = true
	for len(p) > 0 {
		k := min(len(p), ioSize)
		a.fix = appendCRLF(a.fix[:0], p[:k], a.cr)
		if err := a.writeOut(p[:k], a.fix); err != nil {
			return err
		}
		p = p[k:]
	}
	return nil
}

// writeOut writes out, the stored form of in.
func (a *assembly) writeOut(in, out []byte) error {
	a.cr = in[len(in)-1] == '\r'
	a.last = out[len(out)-1]
	n, err := a.file.Write(out)
	a.size += int64(n)
	if err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	return nil
}

// fail drops the content after the spool file failed; the error is
// reported when the message ends.
func (a *assembly) fail(err error) {
	if a.spoolErr == nil {
		a.spoolErr = err
	}
	a.drop()
}

// drop lets go of the content (memory, spool file) and keeps only a read
// buffer for what the client still sends.
func (a *assembly) drop() {
	a.dropped = true
	if a.buf != nil {
		a.freeBuffer()
	}
	if a.file != nil {
		a.file.Close()
		a.file = nil
	}
	a.fix = nil
}

// release gives everything back when the message is done or refused.
func (a *assembly) release() {
	a.drop()
	if a.io != nil {
		putBuffer(a.iobp, a.io)
		a.iobp, a.io = nil, nil
	}
}

// normalizeLF ends every line of the client's content with CRLF: a bare LF
// becomes CRLF (smtpd_forbid_bare_newline = normalize), so the stored
// copy, and everything relayed from it, has canonical line ends and a
// smuggled "<LF>.<LF>" can never end a message downstream. It reports
// whether any bare LF was seen. In memory the common case, no bare LF,
// costs one scan; a spooled message was normalized as it was written.
func (a *assembly) normalizeLF() (bareLF bool) {
	if a.file != nil || a.dropped {
		return a.bareLF
	}
	data := a.buf[a.start:]
	if !hasBareLF(data, false) {
		return false
	}
	n := len(a.buf) + bytes.Count(data, []byte{'\n'}) - bytes.Count(data, []byte("\r\n"))
	if n > cap(a.buf) && !a.grow(n) {
		// No room for the longer copy in memory: the spool file has.
		if err := a.spill(); err != nil {
			a.fail(err)
		}
		return true
	}
	// Widen in place from the end; the bytes a line end is judged by are
	// read before anything is written over them.
	old := len(a.buf)
	a.buf = a.buf[:n]
	for r, w := old-1, n-1; r >= a.start; r-- {
		c := a.buf[r]
		a.buf[w] = c
		w--
		if c == '\n' && (r == a.start || a.buf[r-1] != '\r') {
			a.buf[w] = '\r'
			w--
		}
	}
	return true
}

// appendCRLF appends p to dst with every bare LF made CRLF; cr says whether
// the byte before p was a CR.
func appendCRLF(dst, p []byte, cr bool) []byte {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return append(dst, p...)
		}
		if (i == 0 && !cr) || (i > 0 && p[i-1] != '\r') {
			dst = append(append(dst, p[:i]...), '\r', '\n')
		} else {
			dst = append(dst, p[:i+1]...)
		}
		p, cr = p[i+1:], false
	}
	return dst
}

// hasBareLF reports an LF in data not preceded by a CR; cr says whether
// the byte before data was one.
func hasBareLF(data []byte, cr bool) bool {
	for off := 0; ; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return false
		}
		if off+i == 0 && !cr || off+i > 0 && data[off+i-1] != '\r' {
			return true
		}
		off += i + 1
	}
}

// contentLen is the length of the client's content as stored, counted as
// Postfix counts it for BDAT: a last line without a line end is counted
// as if it had one.
func (a *assembly) contentLen() int64 {
	n, last := int64(len(a.buf)-a.start), byte(0)
	if a.file != nil {
		n, last = a.size-int64(a.start), a.last
	} else if n > 0 {
		last = a.buf[len(a.buf)-1]
	}
	if n > 0 && last != '\n' {
		n += 2
	}
	return n
}

// prefix is what the message has before the client's content: PREPEND
// headers, Received-SPF: and our Received: (pickup's Received: by ... for
// local mail).
func (a *assembly) prefix() ([]byte, error) {
	if a.file == nil {
		return a.buf[:a.start], nil
	}
	b := make([]byte, a.start)
	_, err := a.file.ReadAt(b, 0)
	return b, err
}

// content is the client's content as stored, for header and body checks.
func (a *assembly) content() (io.ReaderAt, int64) {
	if a.file != nil {
		n := a.size - int64(a.start)
		return io.NewSectionReader(a.file, int64(a.start), n), n
	}
	return bytes.NewReader(a.buf[a.start:]), int64(len(a.buf) - a.start)
}

// header returns at least the message's header (for messageID): the
// in-memory copy, or the start of the spool file.
func (a *assembly) header() []byte {
	if a.file == nil {
		return a.buf
	}
	b := make([]byte, min(a.size, headerPrefix))
	n, _ := a.file.ReadAt(b, 0)
	return b[:n]
}

// messageID returns the Message-ID of the content's header, without <>, or
// "" when it has none (logged as message-id=<>).
func messageID(content []byte) string {
	for len(content) > 0 {
		end := bytes.Index(content, []byte("\r\n"))
		if end <= 0 { // end of header
			return ""
		}
		line := content[:end]
		content = content[end+2:]
		if len(line) < 11 || !bytes.EqualFold(line[:11], []byte("message-id:")) {
			continue
		}
		v := line[11:]
		// Unfold continuation lines.
		for len(content) > 0 && (content[0] == ' ' || content[0] == '\t') {
			e := bytes.Index(content, []byte("\r\n"))
			if e < 0 {
				break
			}
			v = append(append([]byte{}, v...), content[:e]...)
			content = content[e+2:]
		}
		v = bytes.TrimSpace(v)
		v = bytes.TrimPrefix(v, []byte("<"))
		v = bytes.TrimSuffix(v, []byte(">"))
		return string(v)
	}
	return ""
}
