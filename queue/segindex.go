package queue

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Per-segment index files: a sealed segment gets DIR/log/NNN.idx holding,
// for each of its records, what replay reads of it (never the content), so
// a restart need not read message bodies.
//
//	0  8  magic "\x89PGIDX\r\n"
//	8  4  format version (1)
//	12 4  segment number
//	16 8  size of the segment it describes
//	24    records, each: type (1), ID length (1), ID, then uvarints
//	      offset, body length, envelope length, length of the kept
//	      bytes, and the kept bytes: a message record's envelope; a
//	      state record's envelope followed by its state trailer; a change
//	      record's whole body; nothing for an unknown type
//	n  4  CRC32C of everything before
//
// Only a segment whose every record verified gets one, so replaying the
// index does what replaying the segment would. It is used only while it
// describes the segment exactly: same size, and written after the segment
// last was (a segment written to since, for instance damaged by hand or
// restored from a backup, is read whole again). Damage that changes
// neither (a flipped bit on the disk) is found where content is read: its
// record checksum fails and the message goes to the corrupt queue.

const (
	idxSuffix     = ".idx"
	idxTmpSuffix  = ".idx.tmp"
	idxHeaderSize = 24
	idxVersion    = 1
)

var idxMagic = []byte("\x89PGIDX\r\n")

func idxPath(logDir string, seq uint32) string {
	return filepath.Join(logDir, seqName(seq, idxSuffix))
}

// segIndexBuilder collects a segment's records as a scan meets them.
type segIndexBuilder struct {
	b  []byte
	ok bool // every record so far verified
}

func newSegIndexBuilder(seq uint32) *segIndexBuilder {
	b := make([]byte, idxHeaderSize, 64<<10)
	copy(b, idxMagic)
	binary.LittleEndian.PutUint32(b[8:], idxVersion)
	binary.LittleEndian.PutUint32(b[12:], seq)
	return &segIndexBuilder{b: b, ok: true}
}

// indexSegmentFile feeds a sealed segment's records to ib one at a time,
// each read into a buffer as large as the largest record, not the segment
// (64 MiB by default): the indexer runs next to the sessions. The segment
// is read in 256 KiB pieces, not two reads per record: a segment of small
// messages would cost tens of thousands of system calls, paid out of the
// same CPU that accepts mail. A segment that is not clean to its end (a
// header or a checksum that does not verify, a cut record) leaves ib not
// ok: such a segment gets no index.
func indexSegmentFile(path string, seq uint32, ib *segIndexBuilder) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 256<<10)
	buf := make([]byte, max(segHeaderSize, recHeaderSize), 64<<10)
	if _, err := io.ReadFull(r, buf[:segHeaderSize]); err != nil || !segHeaderOK(buf[:segHeaderSize], seq) {
		ib.ok = false
		return size, nil
	}
	for pos := int64(segHeaderSize); pos < size && ib.ok; {
		if _, err := io.ReadFull(r, buf[:recHeaderSize]); err != nil {
			ib.ok = false
			break
		}
		h, ok := parseHeader(buf[:recHeaderSize], seq, pos)
		end := pos + recOverhead + int64(h.bodyLen)
		if !ok || end > size {
			ib.ok = false
			break
		}
		n := int(end - pos)
		if cap(buf) < n {
			nb := make([]byte, n)
			copy(nb, buf[:recHeaderSize])
			buf = nb
		}
		rec := buf[:n]
		if _, err := io.ReadFull(r, rec[recHeaderSize:]); err != nil {
			ib.ok = false
			break
		}
		ib.add(&rawRecord{recHeader: h, seg: seq, off: pos, body: rec[recHeaderSize : n-recTrailerSize], ok: trailerOK(rec)})
		pos = end
	}
	return size, nil
}

// add appends the part of r that replay reads.
func (ib *segIndexBuilder) add(r *rawRecord) {
	if !r.ok || r.cut {
		ib.ok = false
		return
	}
	var kept, trailer []byte
	switch r.typ {
	case recMessage:
		kept = r.body[:r.envLen]
	case recState:
		n, ok := stateTrailerLen(r.body, r.envLen)
		if !ok {
			ib.ok = false
			return
		}
		kept, trailer = r.body[:r.envLen], r.body[len(r.body)-int(n):]
	case recChange:
		kept = r.body
	}
	b := append(ib.b, byte(r.typ), byte(len(r.id)))
	b = append(b, r.id...)
	b = binary.AppendUvarint(b, uint64(r.off))
	b = binary.AppendUvarint(b, uint64(r.bodyLen))
	b = binary.AppendUvarint(b, uint64(r.envLen))
	b = binary.AppendUvarint(b, uint64(len(kept)+len(trailer)))
	b = append(b, kept...)
	ib.b = append(b, trailer...)
}

// finish seals the index of a segment of size bytes.
func (ib *segIndexBuilder) finish(size int64) []byte {
	binary.LittleEndian.PutUint64(ib.b[16:], uint64(size))
	return binary.LittleEndian.AppendUint32(ib.b, crc32.Checksum(ib.b, castagnoli))
}

// checkDerived checks the framing the queue's derived files share (a
// segment's index file, its state file of parked messages): an 8-byte
// magic, the format version and the segment number (little-endian
// uint32s) in a header of size bytes, and a CRC32C of everything before
// it at the end. It returns data without the checksum.
func checkDerived(data, magic []byte, version uint32, size int, seq uint32) ([]byte, error) {
	if len(data) < size+4 || !bytes.Equal(data[:8], magic) {
		return nil, errors.New("wrong magic or too short")
	}
	n := len(data) - 4
	if crc32.Checksum(data[:n], castagnoli) != binary.LittleEndian.Uint32(data[n:]) {
		return nil, errors.New("checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != version {
		return nil, fmt.Errorf("format version %d", v)
	}
	if got := binary.LittleEndian.Uint32(data[12:]); got != seq {
		return nil, fmt.Errorf("describes segment %d", got)
	}
	return data[:n], nil
}

// decodeSegIndex checks an index file of segment seq, size bytes long,
// and calls rec for each of its records (their bodies alias data: the
// kept bytes only). It checks every record before the first call, so a
// damaged file replays nothing.
func decodeSegIndex(data []byte, seq uint32, size int64, rec func(*rawRecord)) error {
	data, err := checkDerived(data, idxMagic, idxVersion, idxHeaderSize, seq)
	if err != nil {
		return fmt.Errorf("not an index file: %w", err)
	}
	n := len(data)
	if got := int64(binary.LittleEndian.Uint64(data[16:])); got != size {
		return fmt.Errorf("describes %d bytes, the segment has %d", got, size)
	}
	if err := walkSegIndex(data[idxHeaderSize:n], seq, size, nil); err != nil {
		return err
	}
	return walkSegIndex(data[idxHeaderSize:n], seq, size, rec)
}

// walkSegIndex decodes the records of an index file, calling rec (if not
// nil) for each.
func walkSegIndex(p []byte, seq uint32, size int64, rec func(*rawRecord)) error {
	uv := func() uint64 {
		v, k := binary.Uvarint(p)
		if k <= 0 {
			p = nil
			return 1 << 63
		}
		p = p[k:]
		return v
	}
	var r rawRecord
	for len(p) > 0 {
		if len(p) < 2 || int(p[1]) > len(p)-2 {
			return errors.New("record truncated")
		}
		idEnd := 2 + int(p[1]) // not byte arithmetic: 2+255 would wrap
		typ, id := recType(p[0]), p[2:idEnd]
		p = p[idEnd:]
		off, bodyLen, envLen, kept := uv(), uv(), uv(), uv()
		if !validID(id) || off >= uint64(size) || bodyLen > maxBodyLen || envLen > bodyLen ||
			kept > uint64(len(p)) || kept > bodyLen || (typ == recMessage || typ == recState) && envLen > kept {
			return fmt.Errorf("%s: bad record entry", id)
		}
		if rec != nil {
			r = rawRecord{recHeader: recHeader{typ: typ, id: string(id), bodyLen: uint32(bodyLen), envLen: uint32(envLen)},
				seg: seq, off: int64(off), body: p[:kept:kept], ok: true}
			rec(&r)
		}
		p = p[kept:]
	}
	return nil
}

// replayIndex replays segment seq from its index file when that
// describes the segment as it is now, and returns the segment's size.
func replayIndex(logDir string, seq uint32, x *index) (int64, bool) {
	data, size, ok := readSegIndex(logDir, seq)
	if !ok {
		return 0, false
	}
	if err := decodeSegIndex(data, seq, size, x.replay); err != nil {
		x.logf("queue: segment %d: index file %s not used (%v): reading the segment", seq, idxPath(logDir, seq), err)
		return 0, false
	}
	return size, true
}

// readSegIndex reads segment seq's index file when it may describe the
// segment as it is now (decodeSegIndex checks the rest), with the
// segment's size.
func readSegIndex(logDir string, seq uint32) ([]byte, int64, bool) {
	seg, err := os.Stat(segPath(logDir, seq))
	if err != nil {
		return nil, 0, false
	}
	ifi, err := os.Stat(idxPath(logDir, seq))
	if err != nil || !ifi.ModTime().After(seg.ModTime()) {
		return nil, 0, false // missing, or the segment was written since
	}
	data, err := os.ReadFile(idxPath(logDir, seq))
	if err != nil {
		return nil, 0, false
	}
	return data, seg.Size(), true
}

// writeSegIndex reads sealed segment seq and writes its index file:
// temporary name, synced, renamed, directory synced. A segment with any
// damage gets none (it is read whole at every start, so its damage is
// named every time).
func (s *Store) writeSegIndex(seq uint32) error {
	ib := newSegIndexBuilder(seq)
	size, err := indexSegmentFile(segPath(s.logDir, seq), seq, ib)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // compacted away meanwhile
		}
		return err
	}
	if !ib.ok {
		return nil
	}
	b := ib.finish(size)
	path := idxPath(s.logDir, seq)
	tmp := strings.TrimSuffix(path, idxSuffix) + idxTmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// Real fsyncs, not Options.Syncer's: that one stands for the log's
	// syncs, which tests count, delay and fail.
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if _, err := os.Stat(segPath(s.logDir, seq)); errors.Is(err, fs.ErrNotExist) {
		os.Remove(path) // compaction deleted the segment while it was indexed
	}
	return s.logDirF.Sync()
}

// removeStrayIndexes deletes, at Open, temporary index files (a crash
// while writing one), index files whose segment is gone (a crash
// between deleting a segment and its index), and every state file of
// parked messages: those hold only for the Store that wrote them
// (park.go), and the log says the same.
func removeStrayIndexes(logDir string, seqs []uint32) error {
	ents, err := os.ReadDir(logDir)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	have := make(map[string]bool, len(seqs))
	for _, seq := range seqs {
		have[filepath.Base(idxPath(logDir, seq))] = true
	}
	for _, e := range ents {
		name := e.Name()
		stray := strings.HasSuffix(name, idxTmpSuffix) || strings.HasSuffix(name, idxSuffix) && !have[name]
		if stray || strings.HasSuffix(name, parkSuffix) || strings.HasSuffix(name, parkTmpSuffix) {
			if err := os.Remove(filepath.Join(logDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("queue: %w", err)
			}
		}
	}
	return nil
}
