package queue

import "bytes"

// rawRecord is one record found in a segment. body aliases the segment
// buffer: copy what must outlive the scan.
type rawRecord struct {
	recHeader
	seg  uint32
	off  int64
	body []byte // cut short when cut
	ok   bool   // the body checksum verified
	cut  bool   // the segment ends inside the record: its header is all that vouches for it
	torn bool   // ... and it is the newest segment's: most likely a write cut short
}

// scanResult describes how a segment ended.
type scanResult struct {
	headerOK bool
	end      int  // end of the last complete record; a torn tail starts here
	torn     bool // bytes after end hold no complete, verifiable record
	cut      bool // the torn tail starts with a trusted header, passed to rec as cut
	short    int  // with cut: how many bytes of that record are missing
}

// scanSegment walks the records of one segment, calling rec for each
// record whose header verifies (damaged body or not) and frag for bytes
// that are skipped because they could not be trusted. With nameCut, a
// record whose header verifies but which the end of the segment cuts
// short is passed to rec too (marked cut), so it can be named; without
// it (the segment may still be being written) it is only a torn tail.
//
// A header is trusted only if its checksum and its recorded position both
// verify; after an untrusted one the scan resumes at the next magic that
// does, so a damaged length never hides the records after it.
func scanSegment(data []byte, seq uint32, nameCut bool, rec func(*rawRecord), frag func(off, n int)) scanResult {
	res := scanResult{headerOK: segHeaderOK(data, seq)}
	pos := segHeaderSize
	if !res.headerOK {
		pos = findRecord(data, 0, seq)
		if pos < 0 {
			res.torn = len(data) > 0
			return res
		}
		if pos > segHeaderSize {
			frag(segHeaderSize, pos-segHeaderSize)
		}
	}
	for pos < len(data) {
		h, ok := parseHeader(data[pos:], seq, int64(pos))
		if !ok {
			next := findRecord(data, pos+1, seq)
			if next < 0 {
				res.end, res.torn = pos, true
				return res
			}
			frag(pos, next-pos)
			pos = next
			continue
		}
		end := pos + recOverhead + int(h.bodyLen)
		if end > len(data) {
			// A trusted header whose record runs past the end: the write
			// was cut short, or the file was.
			res.end, res.torn = pos, true
			if nameCut {
				res.cut, res.short = true, end-len(data)
				rec(&rawRecord{recHeader: h, seg: seq, off: int64(pos), body: data[pos+recHeaderSize:], cut: true})
			}
			return res
		}
		r := rawRecord{
			recHeader: h,
			seg:       seq,
			off:       int64(pos),
			body:      data[pos+recHeaderSize : end-recTrailerSize],
			ok:        trailerOK(data[pos:end]),
		}
		rec(&r)
		pos = end
	}
	res.end = len(data)
	return res
}

// findRecord returns the offset of the first trusted record header at or
// after from, or -1.
func findRecord(data []byte, from int, seq uint32) int {
	for from < len(data) {
		i := bytes.Index(data[from:], recMagic)
		if i < 0 {
			return -1
		}
		p := from + i
		if _, ok := parseHeader(data[p:], seq, int64(p)); ok {
			return p
		}
		from = p + 1
	}
	return -1
}
