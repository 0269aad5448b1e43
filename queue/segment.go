package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Segment files: naming, header, listing.

const (
	segHeaderSize = 32
	segVersion    = 1
	segSuffix     = ".seg"
)

var segMagic = []byte("\x89PGSEG\r\n")

func segName(seq uint32) string { return seqName(seq, segSuffix) }

// seqName is the name of segment seq's file with suffix: the segment, its
// index file, its state file.
func seqName(seq uint32, suffix string) string { return fmt.Sprintf("%012d%s", seq, suffix) }

func segPath(logDir string, seq uint32) string { return filepath.Join(logDir, segName(seq)) }

func parseSegName(name string) (uint32, bool) {
	num, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(num) != 12 {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	return uint32(n), err == nil && n > 0
}

// listSegments returns the segment numbers in logDir, in order.
func listSegments(logDir string) ([]uint32, error) {
	ents, err := os.ReadDir(logDir)
	if err != nil {
		return nil, err
	}
	var seqs []uint32
	for _, e := range ents {
		if seq, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func segHeader(seq uint32, created time.Time) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint32(b[8:], segVersion)
	binary.LittleEndian.PutUint32(b[12:], seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(created.UnixNano()))
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

func segHeaderOK(b []byte, seq uint32) bool {
	return len(b) >= segHeaderSize && bytes.Equal(b[:8], segMagic) &&
		binary.LittleEndian.Uint32(b[28:]) == crc32.Checksum(b[:28], castagnoli) &&
		binary.LittleEndian.Uint32(b[8:]) == segVersion &&
		binary.LittleEndian.Uint32(b[12:]) == seq
}

// readSegment reads a whole segment into buf (reused across segments).
// A segment being appended to may grow meanwhile: what was there at Stat
// time is read, and a shorter read is fine.
func readSegment(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	size := int(fi.Size())
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	n, err := io.ReadFull(f, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return buf[:n], err
}
