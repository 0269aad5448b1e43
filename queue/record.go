package queue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// Record framing; doc.go has the picture.
const (
	recHeaderSize  = 56
	recTrailerSize = 4
	recOverhead    = recHeaderSize + recTrailerSize
	recVersion     = 1
	maxIDLen       = 24
	// maxBodyLen bounds what a header may claim, so a damaged-but-checksummed
	// header (or a bug) cannot make the reader allocate gigabytes.
	maxBodyLen = 1 << 30
)

var recMagic = []byte{0x89, 'P', 'G', 'Q'}

type recType uint8

const (
	recMessage recType = 1
	recChange  recType = 2
	recState   recType = 3 // a message record that also carries the message's state
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recHeader is a decoded, verified record header.
type recHeader struct {
	typ     recType
	id      string
	bodyLen uint32
	envLen  uint32
}

// fillHeader writes everything but the position and the header checksum,
// which sealHeader adds once the record's place in the log is known.
func fillHeader(b []byte, typ recType, id string, bodyLen, envLen int) {
	copy(b[0:4], recMagic)
	b[4] = byte(typ)
	b[5] = recVersion
	b[6] = byte(len(id))
	b[7] = 0
	binary.LittleEndian.PutUint32(b[20:24], uint32(bodyLen))
	binary.LittleEndian.PutUint32(b[24:28], uint32(envLen))
	n := copy(b[28:52], id)
	clear(b[28+n : 52])
}

// sealHeader records where the record goes and checksums the header.
func sealHeader(b []byte, seg uint32, off int64) {
	binary.LittleEndian.PutUint32(b[8:12], seg)
	binary.LittleEndian.PutUint64(b[12:20], uint64(off))
	binary.LittleEndian.PutUint32(b[52:56], crc32.Checksum(b[:52], castagnoli))
}

// idBytes is the ID as stored in a filled header.
func idBytes(hdr []byte) []byte { return hdr[28 : 28+int(hdr[6])] }

// bodyChecksum is the trailer value: CRC32C over the ID, then the body
// parts in order.
func bodyChecksum(id []byte, parts ...[]byte) uint32 {
	c := crc32.Update(0, castagnoli, id)
	for _, p := range parts {
		c = crc32.Update(c, castagnoli, p)
	}
	return c
}

// parseHeader verifies the header at b[0:] that claims to sit at (seg, off).
// It checks everything the header alone can vouch for.
func parseHeader(b []byte, seg uint32, off int64) (recHeader, bool) {
	if len(b) < recHeaderSize || !bytes.Equal(b[0:4], recMagic) {
		return recHeader{}, false
	}
	if binary.LittleEndian.Uint32(b[52:56]) != crc32.Checksum(b[:52], castagnoli) {
		return recHeader{}, false
	}
	if b[5] != recVersion || binary.LittleEndian.Uint32(b[8:12]) != seg ||
		binary.LittleEndian.Uint64(b[12:20]) != uint64(off) {
		return recHeader{}, false
	}
	idLen := int(b[6])
	id := b[28 : 28+min(idLen, maxIDLen)]
	if idLen == 0 || idLen > maxIDLen || !validID(id) {
		return recHeader{}, false
	}
	h := recHeader{
		typ:     recType(b[4]),
		bodyLen: binary.LittleEndian.Uint32(b[20:24]),
		envLen:  binary.LittleEndian.Uint32(b[24:28]),
	}
	if h.bodyLen > maxBodyLen || h.envLen > h.bodyLen {
		return recHeader{}, false
	}
	h.id = string(id)
	return h, true
}

// trailerOK checks the body checksum of a complete record in rec.
func trailerOK(rec []byte) bool {
	n := len(rec) - recTrailerSize
	want := binary.LittleEndian.Uint32(rec[n:])
	return bodyChecksum(idBytes(rec), rec[recHeaderSize:n]) == want
}

// validID accepts the queue ID alphabet (Postfix's short and long shapes
// both fit): ASCII letters and digits.
func validID[T string | []byte](id T) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
