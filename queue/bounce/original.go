package bounce

import (
	"bytes"
	"strings"

	"postgate/rules/addrheader"
)

// contentLines splits stored message content into lines without their line
// ends (CRLF or a bare LF). A final line without a line end is kept.
func contentLines(content []byte) [][]byte {
	if len(content) == 0 {
		return nil
	}
	lines := bytes.Split(content, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return lines
}

// headerLines returns the leading lines of the message that belong to its
// header: header fields and their continuation lines, up to the first line
// that is neither (normally the empty line before the body). Content without
// a header/body separator is all header.
func headerLines(lines [][]byte) [][]byte {
	for i, l := range lines {
		if !isHeaderLine(l) {
			return lines[:i]
		}
	}
	return lines
}

// isHeaderLine is Postfix's IS_HEADER: a continuation line (leading space
// or tab) or the start of a header field.
func isHeaderLine(l []byte) bool {
	if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
		return true
	}
	return addrheader.NameLen(l) > 0
}

// messageID returns the original's Message-ID ("<...>") for the References
// and In-Reply-To headers: the first Message-ID field whose value is one
// "<...>", or "" when there is none. A folded field is unfolded first.
func messageID(hdr [][]byte) string {
	for i := 0; i < len(hdr); i++ {
		n := addrheader.NameLen(hdr[i])
		if n == 0 || !strings.EqualFold(string(hdr[i][:n]), "Message-ID") {
			continue
		}
		v := string(hdr[i][bytes.IndexByte(hdr[i], ':')+1:])
		for i+1 < len(hdr) && len(hdr[i+1]) > 0 && (hdr[i+1][0] == ' ' || hdr[i+1][0] == '\t') {
			i++
			v += string(hdr[i])
		}
		v = strings.TrimSpace(v)
		if len(v) > 2 && v[0] == '<' && v[len(v)-1] == '>' && !strings.ContainsAny(v, "\r\n") {
			return v
		}
	}
	return ""
}

// messageSize is the size Postfix compares with bounce_size_limit: the
// content with one byte per line end, as the queue file holds it.
func messageSize(content []byte) int {
	return len(content) - bytes.Count(content, []byte("\r\n"))
}

// has8bit reports whether b holds a byte outside US-ASCII.
func has8bit[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if b[i] >= 0x80 {
			return true
		}
	}
	return false
}
