package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
)

// openContent returns a reader of a message's content straight from its
// segment (pread, nothing held in memory), verifying the record checksum
// as it goes: a reader that reaches the end of a damaged record fails with
// an error wrapping ErrCorrupt instead of io.EOF, so a transport never
// completes a delivery of damaged content.
//
// The queue manager reads only messages it has taken for delivery, and
// compaction never moves those, so the segment stays while it reads.
func (s *Store) openContent(id string) (io.ReadCloser, error) {
	c, err := s.locate(id)
	if err != nil {
		return nil, err
	}
	if c.damaged() {
		return nil, fmt.Errorf("%w: %s: message record damaged", ErrCorrupt, id)
	}
	f, err := s.segmentFile(c.seg)
	if err != nil {
		return nil, err
	}
	n := c.contentLen()
	headLen := recHeaderSize + int(c.envLen)
	if small := int64(headLen) + n + int64(c.tail) + recTrailerSize; small <= smallRecord {
		// Most messages are small: one pread for the whole record, the
		// checksum verified before a byte is handed out.
		return s.readSmall(id, c, f, int(small))
	}
	head := make([]byte, headLen)
	if _, err := f.ReadAt(head, int64(c.off)); err != nil {
		return nil, fmt.Errorf("queue: %s: read: %w", id, err)
	}
	h, ok := parseHeader(head, c.seg, int64(c.off))
	if !ok || h.id != id || h.bodyLen != c.bodyLen || h.envLen != c.envLen {
		return nil, s.contentDamaged(&c, "record header does not verify")
	}
	start := int64(c.off) + int64(len(head))
	r := &contentReader{
		id:      id,
		damaged: func(why string) error { return s.contentDamaged(&c, why) },
		sr:      io.NewSectionReader(f, start, n),
		f:       f,
		crc0:    bodyChecksum(idBytes(head), head[recHeaderSize:]),
		tailOff: start + n,
		tailLen: int(c.tail) + recTrailerSize,
	}
	r.crc = r.crc0
	return r, nil
}

// smallRecord is the record size up to which content is read in one go.
const smallRecord = 64 << 10

// readSmall reads a whole record with one pread and verifies it.
func (s *Store) readSmall(id string, c entry, f io.ReaderAt, size int) (io.ReadCloser, error) {
	rec := make([]byte, size)
	if _, err := f.ReadAt(rec, int64(c.off)); err != nil {
		return nil, fmt.Errorf("queue: %s: read: %w", id, err)
	}
	headLen := recHeaderSize + int(c.envLen)
	h, ok := parseHeader(rec[:headLen], c.seg, int64(c.off))
	if !ok || h.id != id || h.bodyLen != c.bodyLen || h.envLen != c.envLen {
		return nil, s.contentDamaged(&c, "record header does not verify")
	}
	k := size - recTrailerSize
	if bodyChecksum(idBytes(rec), rec[recHeaderSize:k]) != binary.LittleEndian.Uint32(rec[k:]) {
		return nil, s.contentDamaged(&c, "content checksum mismatch")
	}
	return nopCloser{bytes.NewReader(rec[headLen : headLen+int(c.contentLen())])}, nil
}

// nopCloser is a verified in-memory content reader (a Seeker, for a
// transport that sends it again).
type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// contentReader reads content and checks the record checksum at its end.
type contentReader struct {
	id      string
	damaged func(why string) error // Store.contentDamaged for this record
	sr      *io.SectionReader
	f       io.ReaderAt
	crc     uint32
	crc0    uint32 // the checksum state at the start of the content
	tailOff int64  // state trailer (if any) and checksum
	tailLen int
	err     error // sticky: io.EOF once verified
}

func (r *contentReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.sr.Read(p)
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	switch {
	case err == io.EOF:
		r.err = r.verify()
	case err != nil:
		r.err = fmt.Errorf("queue: %s: read: %w", r.id, err)
	}
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

func (r *contentReader) verify() error {
	tail := make([]byte, r.tailLen)
	if _, err := r.f.ReadAt(tail, r.tailOff); err != nil {
		return fmt.Errorf("queue: %s: read: %w", r.id, err)
	}
	k := len(tail) - recTrailerSize
	if crc32.Update(r.crc, castagnoli, tail[:k]) != binary.LittleEndian.Uint32(tail[k:]) {
		return r.damaged("content checksum mismatch")
	}
	return io.EOF
}

// Seek lets a transport send the content again (to the next MX host). Only
// the current position and a rewind to the start are supported, so the
// checksum is always verified over the whole content.
func (r *contentReader) Seek(offset int64, whence int) (int64, error) {
	switch {
	case whence == io.SeekCurrent && offset == 0:
		return r.sr.Seek(0, io.SeekCurrent)
	case whence == io.SeekStart && offset == 0:
		r.crc, r.err = r.crc0, nil
		return r.sr.Seek(0, io.SeekStart)
	}
	return 0, fmt.Errorf("queue: %s: content can only be rewound to its start", r.id)
}

// Close releases nothing: the segment file belongs to the Store.
func (r *contentReader) Close() error { return nil }

// contentDamaged handles a message record found damaged when its content
// is read, damage that Open did not see because it replayed the segment
// from its index file (segindex.go), or that happened since: the message
// is named and moved to the corrupt queue, never delivered, and the
// segment's index file is removed so the next start reads the segment
// whole and names it again. It returns the error for the reader.
func (s *Store) contentDamaged(c *entry, why string) error {
	err := fmt.Errorf("%w: %s: %s", ErrCorrupt, c.id, why)
	s.mu.Lock()
	e := s.idx.m.get(c.id)
	if e == nil || e.seg != c.seg || e.off != c.off || e.state == Corrupt {
		s.mu.Unlock()
		return err
	}
	e.state, e.damage = Corrupt, recordDamaged
	s.idx.unschedule(e)
	s.idx.damage.Records++
	s.mu.Unlock()
	s.opts.Logf("%s: damaged message record in segment %d at offset %d (%s): %s", c.id, c.seg, c.off, why, movedToCorrupt)
	if rerr := os.Remove(idxPath(s.logDir, c.seg)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		s.opts.Logf("queue: segment %d: cannot remove its index file: %v", c.seg, rerr)
	}
	return err
}

// corrupt reports whether a message is in the corrupt queue.
func (s *Store) corrupt(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.idx.m.get(id)
	return e != nil && e.state == Corrupt
}
