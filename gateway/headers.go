package gateway

import (
	"bufio"
	"io"
	"strings"
	"sync"

	"postgate/rules/addrheader"
)

// Header address rewriting, as Postfix's cleanup does in a header
// rewriting context (local_header_rewrite_clients, or
// remote_header_rewrite_domain for the others): in the message's own
// header block, each address of a sender header (From:, Sender:,
// Reply-To:, ...) and of a recipient header (To:, Cc:, ...) is qualified
// as trivial-rewrite does and goes through the canonical maps of its
// class (header_sender, header_recipient); a header in which one changed
// is written again as cleanup writes it (rules/addrheader). It runs after
// the header checks, on what they left.

// rewriteHeaders returns the edits that rewrite the address headers of
// content's header block, with domain for unqualified addresses. An error
// is a table lookup failure: the message is not accepted.
func (s *session) rewriteHeaders(content io.ReaderAt, size int64, domain string) ([]contentEdit, error) {
	c := s.svc.canonical
	warn := func(format string, args ...any) {
		s.svc.log.Logf("cleanup", "warning: %s: "+format, append([]any{s.txn.id}, args...)...)
	}
	var edits []contentEdit
	var lookupErr error
	rewrite := func(raw []byte, off int64) {
		text := strings.ReplaceAll(strings.TrimRight(string(raw), "\r\n"), "\r\n", "\n")
		name, value, ok := addrheader.SplitHeader(text)
		class := addrheader.ClassOf(name)
		if !ok || class == addrheader.NotAddress {
			return
		}
		cl, maps := headerRecipient, []*canonMaps{&c.recipient, &c.common}
		if class == addrheader.Sender {
			cl, maps = headerSender, []*canonMaps{&c.sender, &c.common}
		}
		line, changed, warns := addrheader.Rewrite(name, value, addrheader.DefaultTokenLimit, func(addr, external string) string {
			a, err := c.rewrite(s.ctx, addrheader.Qualify(addr, external, domain), cl, warn, maps...)
			if err != nil {
				lookupErr = err
				return addr
			}
			return a
		})
		for _, w := range warns {
			s.svc.log.Logf("cleanup", "warning: %s", w)
		}
		if changed {
			edits = append(edits, contentEdit{off: off, n: int64(len(raw)), insert: []byte(strings.ReplaceAll(line, "\n", "\r\n") + "\r\n")})
		}
	}

	eachHeader(content, size, func(raw []byte, off int64) bool {
		rewrite(raw, off)
		return lookupErr == nil
	})
	return edits, lookupErr
}

// eachHeader calls fn with each logical header of content's header block
// (its lines as they came, in a buffer reused for the next) and its
// offset, until fn returns false.
func eachHeader(content io.ReaderAt, size int64, fn func(raw []byte, off int64) bool) {
	r := headerReaders.Get().(*bufio.Reader)
	r.Reset(io.NewSectionReader(content, 0, size))
	defer func() {
		r.Reset(nil)
		headerReaders.Put(r)
	}()
	var header []byte // the logical header being read, its lines as they came
	var long []byte   // a line longer than r's buffer, assembled
	var start, off int64
	for {
		// ReadSlice, not ReadBytes: a line is used only until the next
		// read (copied into header), so it need not be allocated.
		line, err := r.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			long = append(long, line...)
			line, err = r.ReadSlice('\n')
		}
		if len(long) > 0 {
			line, long = append(long, line...), long[:0]
		}
		if len(line) > 0 && len(header) > 0 && (line[0] == ' ' || line[0] == '\t') {
			header = append(header, line...)
		} else {
			if len(header) > 0 && !fn(header, start) {
				return
			}
			if headerNameLen(line) == 0 {
				return // the end of the header block
			}
			header, start = append(header[:0], line...), off
		}
		off += int64(len(line))
		if err != nil {
			if len(header) > 0 {
				fn(header, start)
			}
			return
		}
	}
}

// headerReaders keeps eachHeader's buffers from one message to the next:
// per message they were most of the bytes the receive path allocated.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
