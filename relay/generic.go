package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"postgate/rules/addrheader"
)

// smtp_generic_maps, as Postfix's smtp applies it on the way out
// (smtp_map11.c, smtp_proto.c): the envelope sender and each recipient in
// MAIL FROM and RCPT TO, and the addresses of the sender and recipient
// headers (From:, Reply-To:, To:, Cc:, ...) of the message's primary
// header block. Options.Generic does the lookup. The queue, the log and
// the DSN ORCPT keep the addresses as they were.

// genericEnvelope returns m with its sender and recipients rewritten, or
// m itself when nothing changed.
func (d *delivery) genericEnvelope(m *Message) (*Message, *failure) {
	g := d.t.opts.Generic
	out := *m
	changed := false
	if m.Sender != "" {
		a, err := g(d.ctx, m.Sender)
		if err != nil {
			return nil, d.genericProblem(m.Sender, err)
		}
		changed = a != m.Sender
		out.Sender = a
	}
	out.Recipients = make([]Recipient, len(m.Recipients))
	for i, r := range m.Recipients {
		a, err := g(d.ctx, r.Addr)
		if err != nil {
			return nil, d.genericProblem(r.Addr, err)
		}
		changed = changed || a != r.Addr
		r.Addr = a
		out.Recipients[i] = r
	}
	if !changed {
		return m, nil
	}
	return &out, nil
}

// genericProblem is a failed lookup: Postfix's smtp exits with "map
// lookup problem"; here the message is deferred with that text.
func (d *delivery) genericProblem(addr string, err error) *failure {
	d.t.logf(d.m.QueueID, fmt.Sprintf("warning: smtp_generic_maps map lookup problem for %s: %v", addr, err))
	return softFail("4.3.0", "smtp_generic_maps map lookup problem for %s", addr)
}

// maxGenericHeader bounds the header block read for rewriting (Postfix's
// header_size_limit is 100 KiB per header); past it the rest goes out as
// it is.
const maxGenericHeader = 1 << 20

// genericHeaders reads content's header block, rewrites the addresses of
// its address headers and returns a reader of the whole message. An
// error is a failed lookup or a failure to read the content.
func (d *delivery) genericHeaders(content io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(content, 32<<10)
	var out bytes.Buffer
	var header []byte // the logical header being read, its lines as they came
	var lookupErr error
	flush := func() {
		if len(header) == 0 {
			return
		}
		out.Write(d.rewriteHeader(header, &lookupErr))
		header = header[:0]
	}
	for out.Len()+len(header) < maxGenericHeader && lookupErr == nil {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line this long is no header the rewriting could use.
			flush()
			out.Write(line)
			break
		}
		if len(line) > 0 && len(header) > 0 && (line[0] == ' ' || line[0] == '\t') {
			header = append(header, line...)
		} else {
			flush()
			if addrheader.NameLen(line) == 0 {
				out.Write(line) // the empty line, or the body
				break
			}
			header = append(header, line...)
		}
		if err == io.EOF {
			flush()
			break
		}
		if err != nil {
			return nil, err
		}
	}
	flush()
	if lookupErr != nil {
		return nil, lookupErr
	}
	return io.MultiReader(&out, br), nil
}

// rewriteHeader returns one logical header, rewritten when it is an
// address header and the table changed one of its addresses; a lookup
// error goes to *errp.
func (d *delivery) rewriteHeader(raw []byte, errp *error) []byte {
	text := strings.ReplaceAll(strings.TrimRight(string(raw), "\r\n"), "\r\n", "\n")
	name, value, ok := addrheader.SplitHeader(text)
	if !ok || addrheader.ClassOf(name) == addrheader.NotAddress {
		return raw
	}
	mapped := false
	line, changed, _ := addrheader.Rewrite(name, value, addrheader.DefaultTokenLimit, func(addr, _ string) string {
		a, err := d.t.opts.Generic(d.ctx, addr)
		if err != nil {
			if *errp == nil {
				*errp = fmt.Errorf("smtp_generic_maps map lookup problem for %s: %w", addr, err)
			}
			return addr
		}
		mapped = mapped || a != addr
		return a
	})
	// As smtp_proto.c, the header is made again only when the table
	// changed an address, not when the parser reads it otherwise.
	if !changed || !mapped {
		return raw
	}
	return []byte(strings.ReplaceAll(line, "\n", "\r\n") + "\r\n")
}
