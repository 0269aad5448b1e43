package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Messages whose content is in a file: the gateway spools a message that
// does not fit its memory budget, and the queue takes it from there
// without ever holding it whole.

// copyChunk bounds what is read into memory at a time when content is
// checksummed, or copied where copy_file_range cannot.
const copyChunk = 64 << 10

// AppendFile is Append for content in a file: size bytes from the start of
// f (already CRLF). The content is checksummed a buffer at a time, and the
// commit loop copies it into the log at the record's place
// (copy_file_range, file to file in the kernel). Durable like Append when
// it returns; f must not change until then.
func (s *Store) AppendFile(ctx context.Context, env *Envelope, f *os.File, size int64) error {
	return s.appendMessage(ctx, env, recContent{f: f, size: size}, Active, true)
}

// AppendFileHeld is AppendHeld for content in a file.
func (s *Store) AppendFileHeld(ctx context.Context, env *Envelope, f *os.File, size int64) error {
	return s.appendMessage(ctx, env, recContent{f: f, size: size}, Hold, true)
}

// recContent is a message record's content: b, or size bytes of f.
type recContent struct {
	b    []byte
	f    *os.File
	size int64
}

func (c recContent) len() int64 {
	if c.f != nil {
		return c.size
	}
	return int64(len(c.b))
}

// checksum continues the record checksum crc over the content.
func (c recContent) checksum(crc uint32) (uint32, error) {
	if c.f == nil {
		return crc32.Update(crc, castagnoli, c.b), nil
	}
	buf := make([]byte, min(c.size, copyChunk))
	for off := int64(0); off < c.size; {
		n, err := c.f.ReadAt(buf[:min(int64(len(buf)), c.size-off)], off)
		crc = crc32.Update(crc, castagnoli, buf[:n])
		off += int64(n)
		if err != nil && !(err == io.EOF && off == c.size) {
			return 0, fmt.Errorf("read content file: %w", err)
		}
	}
	return crc, nil
}

// writeRecord writes a record at its place in the active segment: one
// pwritev, except that the content of a record from AppendFile is copied
// from its file between its head and its tail.
func (s *Store) writeRecord(p *pendingRec, parts [][]byte) error {
	if p.file == nil {
		return pwritev(s.active, parts, p.off)
	}
	head, tail := parts[:len(parts)-1], parts[len(parts)-1:]
	contentOff := p.off
	for _, b := range head {
		contentOff += int64(len(b))
	}
	if err := pwritev(s.active, head, p.off); err != nil {
		return err
	}
	if err := copyContent(s.active, contentOff, p.file, p.fsize); err != nil {
		return fmt.Errorf("%s: %w", p.ent.id, err)
	}
	return pwritev(s.active, tail, contentOff+p.fsize)
}

// copyContent copies n bytes from the start of src to dst at off.
func copyContent(dst *os.File, off int64, src *os.File, n int64) error {
	var in int64
	for in < n {
		k, err := unix.CopyFileRange(int(src.Fd()), &in, int(dst.Fd()), &off, int(min(n-in, 1<<30)), 0)
		switch {
		case err == unix.EINTR:
		case err != nil && in == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
			errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)):
			// Not between these files (another file system, an old
			// kernel): read and write a small buffer at a time.
			return copyByRead(dst, off, src, n)
		case err != nil:
			return fmt.Errorf("copy content file: %w", err)
		case k == 0:
			return fmt.Errorf("copy content file: %w at %d of %d bytes", io.ErrUnexpectedEOF, in, n)
		}
	}
	return nil
}

func copyByRead(dst *os.File, off int64, src *os.File, n int64) error {
	buf := make([]byte, min(n, copyChunk))
	for in := int64(0); in < n; {
		k, err := src.ReadAt(buf[:min(int64(len(buf)), n-in)], in)
		if k > 0 {
			if _, werr := dst.WriteAt(buf[:k], off+in); werr != nil {
				return fmt.Errorf("copy content file: %w", werr)
			}
			in += int64(k)
		}
		if err != nil && !(err == io.EOF && in == n) {
			return fmt.Errorf("copy content file: %w", err)
		}
	}
	return nil
}
