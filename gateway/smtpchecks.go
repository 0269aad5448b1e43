package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"

	"postgate/gateway/config"
	"postgate/queue"
	"postgate/rules"
)

// smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks
// and smtp_body_checks (lmtp_* for the lmtp client), as Postfix's smtp
// client applies them to what it sends: the same tables and MIME walk as cleanup's checks (checks.go),
// limited to the actions that only edit the content or log (REPLACE,
// PREPEND, STRIP, IGNORE, WARN, INFO, DUNNO, OK; others are logged as
// unsupported and ignored), with no body_checks_size_limit and no MIME
// nesting error. The stored message is not changed: each delivery scans
// it, then sends it with the edits applied. A lookup error defers the
// delivery (Postfix's "local data error").

// outboundChecks are a transport's content checks; nil when it has none.
type outboundChecks struct {
	checks contentChecks
	prog   string // the transport's log name and parameter prefix: "smtp" or "lmtp"
	log    *MailLog
}

// newOutboundChecks opens <prefix>_header_checks and the like.
func newOutboundChecks(cfg *config.Config, tables *tableCache, prefix string, log *MailLog) (*outboundChecks, error) {
	o := &outboundChecks{prog: prefix, log: log, checks: contentChecks{prefix: prefix + "_"}}
	for _, m := range []struct {
		param string
		dst   *[]rules.Table
	}{{prefix + "_header_checks", &o.checks.header}, {prefix + "_mime_header_checks", &o.checks.mime},
		{prefix + "_nested_header_checks", &o.checks.nested}, {prefix + "_body_checks", &o.checks.body}} {
		var err error
		if *m.dst, err = openMaps(cfg, m.param, tables); err != nil {
			return nil, err
		}
	}
	if o.checks.empty() {
		return nil, nil
	}
	o.checks.limits = mimeLimits{disabled: cfg.Bool("disable_mime_input_processing"),
		nestingLimit: int(cfg.Int("mime_nesting_limit")), boundaryLimit: int(cfg.Int("mime_boundary_length_limit")),
		headerLimit: int(cfg.Int("header_size_limit")), lineLimit: int(cfg.Int("line_length_limit"))}
	return o, nil
}

// outboundScan is one delivery's run of the checks.
type outboundScan struct {
	*outboundChecks
	id           string // the queue ID, for log lines
	lookupFailed bool   // a table could not answer
}

// logAction writes the smtp client's line for an action, as Postfix's
// smtp_hbc_logger: "ID: replace: header Subject: x: X-Subject: y".
func (o *outboundScan) logAction(what, context, content, text string) {
	if len(content) > 60 {
		content = content[:60]
	}
	if text != "" {
		o.log.Logf(o.prog, "%s: %s: %s %s: %s", o.id, what, context, content, text)
		return
	}
	o.log.Logf(o.prog, "%s: %s: %s %s", o.id, what, context, content)
}

// errChecksLookup is a table of the checks that could not answer.
var errChecksLookup = errors.New("local data error")

// apply scans content (size bytes, rewound to its start afterwards) and
// returns what to send: content itself when nothing changes, else a
// reader of it with the edits applied, and its size. With no checks it
// returns content as it is.
func (o *outboundChecks) apply(ctx context.Context, id string, stored io.Reader, size int64) (io.Reader, int64, error) {
	if o == nil {
		return stored, size, nil
	}
	content, ok := stored.(io.ReadSeeker)
	if !ok {
		return nil, 0, errors.New("content cannot be rewound")
	}
	sc := &checkScan{out: &outboundScan{outboundChecks: o, id: id}, ctx: ctx, c: &o.checks}
	res, err := sc.run(content)
	switch {
	case err != nil && sc.out.lookupFailed:
		return nil, 0, fmt.Errorf("%w: %v", errChecksLookup, err)
	case err != nil:
		return nil, 0, err
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	if len(res.edits) == 0 {
		return content, size, nil
	}
	for _, e := range res.edits {
		size += int64(len(e.insert)) - e.n
	}
	return &editedReader{src: content, edits: res.edits}, size, nil
}

// checksFailure is the delivery result when the checks could not run:
// the message waits in the queue.
func checksFailure(err error) queue.Result {
	reason := "queue file read error: " + err.Error()
	if errors.Is(err, errChecksLookup) {
		reason = "local data error while applying the header or body checks of the smtp client"
	}
	return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reason: reason, Relay: "none"}
}

// editedReader streams src with edits applied (in content order). It can
// be rewound to its start, as the smtp client does to send the message to
// the next server.
type editedReader struct {
	src   io.ReadSeeker
	edits []contentEdit
	at    int64 // position in src
	next  int   // the next edit
	ins   []byte
	skip  int64 // bytes of src to drop (the edit's n)
	out   int64 // bytes returned since the start
}

func (r *editedReader) Read(p []byte) (int, error) {
	for {
		if len(r.ins) > 0 {
			n := copy(p, r.ins)
			r.ins = r.ins[n:]
			r.out += int64(n)
			return n, nil
		}
		if r.skip > 0 {
			n, err := io.CopyN(io.Discard, r.src, r.skip)
			r.at += n
			r.skip -= n
			if err != nil {
				return 0, err
			}
			continue
		}
		if r.next < len(r.edits) && r.edits[r.next].off <= r.at {
			e := r.edits[r.next]
			r.next++
			r.ins = e.insert
			// Edits at one offset (a PREPEND and then a REPLACE of the same
			// line) drop the line once.
			r.skip = max(0, e.off+e.n-r.at)
			continue
		}
		limit := p
		if r.next < len(r.edits) {
			limit = p[:min(int64(len(p)), r.edits[r.next].off-r.at)]
		}
		n, err := r.src.Read(limit)
		r.at += int64(n)
		r.out += int64(n)
		return n, err
	}
}

// Seek supports what the smtp client asks: the position, and a rewind to
// the start.
func (r *editedReader) Seek(offset int64, whence int) (int64, error) {
	switch {
	case whence == io.SeekCurrent && offset == 0:
		return r.out, nil
	case whence == io.SeekStart && offset == 0:
		if _, err := r.src.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		r.at, r.next, r.ins, r.skip, r.out = 0, 0, nil, 0, 0
		return 0, nil
	}
	return 0, fmt.Errorf("edited content can only be rewound to its start")
}
