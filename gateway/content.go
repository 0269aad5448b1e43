package gateway

import (
	"bytes"
	"io"
	"sync"
)

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

// putBuffer returns a buffer to the pool unless a huge message grew it.
func putBuffer(b *bytes.Buffer) {
	if b.Cap() > 4<<20 {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// readLimited appends what r yields to buf, keeping at most limit bytes
// (0: no limit) and reading on to the end past it, so the dialogue stays in
// step; tooBig reports that content was dropped.
func readLimited(buf *bytes.Buffer, r io.Reader, limit int64) (tooBig bool, err error) {
	if limit <= 0 {
		_, err = buf.ReadFrom(r)
		return false, err
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit))
	if err != nil || n < limit {
		return false, err
	}
	extra, err := io.Copy(io.Discard, r)
	return extra > 0, err
}

// normalizeLF ends every line of buf[start:] with CRLF: a bare LF becomes
// CRLF (smtpd_forbid_bare_newline = normalize), so the stored copy, and
// everything relayed from it, has canonical line ends and a smuggled
// "<LF>.<LF>" can never end a message downstream. It reports whether any
// bare LF was seen. The common case, no bare LF, costs one scan.
func normalizeLF(buf *bytes.Buffer, start int) (bareLF bool) {
	data := buf.Bytes()[start:]
	if !hasBareLF(data) {
		return false
	}
	fixed := make([]byte, 0, len(data)+len(data)/16)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			fixed = append(fixed, data...)
			break
		}
		if i > 0 && data[i-1] == '\r' {
			fixed = append(fixed, data[:i+1]...)
		} else {
			fixed = append(append(fixed, data[:i]...), '\r', '\n')
		}
		data = data[i+1:]
	}
	buf.Truncate(start)
	buf.Write(fixed)
	return true
}

func hasBareLF(data []byte) bool {
	for off := 0; ; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return false
		}
		if off+i == 0 || data[off+i-1] != '\r' {
			return true
		}
		off += i + 1
	}
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
