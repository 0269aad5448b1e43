package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"postgate/queue"
	"postgate/rules"
)

// header_checks and body_checks, as Postfix's cleanup applies them to a
// message received by smtpd. The MIME parser (mime.go) finds the logical
// headers and the body lines; each header is looked up in one table
// list, chosen as Postfix's cleanup does: MIME headers (Content-Type and
// the like, wherever they are) and all headers of multipart body parts in
// mime_header_checks, other headers of an attached message in
// nested_header_checks, other headers of the message in header_checks.
// Each non-empty body record (a line, or a piece of line_length_limit
// bytes of a longer one; boundary lines and part bodies included) is
// looked up in body_checks while its offset in its body segment is under
// body_checks_size_limit. The first table that has a value decides, and
// its action (cleanup_act) rejects, holds, discards, redirects, or edits
// the content.

// contentChecks are one service's header and body check tables.
type contentChecks struct {
	header, mime, nested, body []rules.Table
	bodySizeLimit              int64 // 0: no limit
	limits                     mimeLimits
	prefix                     string // of the parameters' names: "smtp_" for the smtp client's
}

func (c *contentChecks) empty() bool {
	return len(c.header) == 0 && len(c.mime) == 0 && len(c.nested) == 0 && len(c.body) == 0
}

// checkResult is what the checks decided.
type checkResult struct {
	reject   *rules.Reply // REJECT: the reply at end of data
	discard  bool
	hold     bool
	redirect string
	bcc      []string
	filter   string        // FILTER transport:destination (the last wins)
	edits    []contentEdit // in content order
}

// contentEdit replaces n bytes at off of the client's content with insert.
type contentEdit struct {
	off, n int64
	insert []byte
}

// checkScan is one run of the checks over a message; it is the MIME
// parser's handler. It runs for a session receiving the message (s:
// cleanup's checks), or for a delivery sending it (out: the smtp client's
// smtp_header_checks and the like).
type checkScan struct {
	s       *session
	out     *outboundScan
	ctx     context.Context
	c       *contentChecks
	res     checkResult
	stopped bool // REJECT, DISCARD, PASS, REDIRECT end the checks (CLEANUP_FLAG_FILTER_ALL)
	// reportNesting: Postfix reports a MIME nesting error only when header
	// checks are in use (MIME_OPT_REPORT_NESTING).
	reportNesting bool
}

// runContentChecks reads the client's content (size bytes) and returns
// what the checks decided; an error is a lookup failure.
func (s *session) runContentChecks(content io.ReaderAt, size int64) (checkResult, error) {
	c := &s.svc.checks
	sc := &checkScan{s: s, ctx: s.ctx, c: c, reportNesting: len(c.header)+len(c.mime)+len(c.nested) > 0}
	return sc.run(io.NewSectionReader(content, 0, size))
}

// run reads the content and returns what the checks decided; an error is
// a lookup failure, or the content's own read error.
func (sc *checkScan) run(content io.Reader) (checkResult, error) {
	p := newMIMEParser(sc.c.limits, sc)
	r := bufio.NewReaderSize(content, 64<<10)
	var off int64
	var long []byte // a line longer than the reader's buffer, whole
	// After a decision the parse goes on only to find a nesting error,
	// which rejects the message even when it was to be discarded.
	for sc.res.reject == nil && !(sc.stopped && !sc.reportNesting) {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return sc.res, err
		}
		if len(line) == 0 {
			break
		}
		if perr := p.line(line, off); perr != nil {
			return sc.res, perr
		}
		off += int64(len(line))
		if err != nil {
			break
		}
	}
	if sc.res.reject == nil {
		if err := p.end(); err != nil {
			return sc.res, err
		}
	}
	return sc.res, nil
}

func (sc *checkScan) mimeHeader(block mimeBlock, key string, raw []byte, off int64) error {
	tables, param := sc.c.header, sc.c.prefix+"header_checks"
	switch {
	case block == mimeMultipart || isMIMEHeader(key):
		tables, param = sc.c.mime, sc.c.prefix+"mime_header_checks"
	case block == mimeNested:
		tables, param = sc.c.nested, sc.c.prefix+"nested_header_checks"
	}
	return sc.lookup(tables, param, "header", key, raw, off)
}

func (sc *checkScan) mimeBody(text, raw []byte, off, bodyOff int64) error {
	if len(text) == 0 || len(sc.c.body) == 0 || sc.c.bodySizeLimit > 0 && bodyOff >= sc.c.bodySizeLimit {
		return nil
	}
	return sc.lookup(sc.c.body, sc.c.prefix+"body_checks", "body", string(text), raw, off)
}

// mimeNesting rejects the message, as Postfix's cleanup does for a MIME
// error, and logs it when it is found.
func (sc *checkScan) mimeNesting(header string) {
	if !sc.reportNesting || sc.s == nil {
		return
	}
	s := sc.s
	if len(header) > 100 {
		header = header[:100]
	}
	to := "unknown"
	if n := len(s.txn.rcpts); n > 0 {
		to = s.txn.rcpts[n-1].Addr
	}
	s.svc.log.Logf("cleanup", "%s: reject: mime-error MIME nesting exceeds safety limit: %s from %s; from=<%s> to=<%s>",
		s.txn.id, printable(header), s.client, s.txn.sender, to)
	if sc.res.reject == nil {
		sc.res.reject = &rules.Reply{Code: 550, DSN: "5.6.0", Text: "MIME nesting exceeds safety limit"}
	}
}

// lookup finds the first table that has key and acts on its value; param
// names the tables in warnings, context ("header", "body") the content in
// the log.
func (sc *checkScan) lookup(tables []rules.Table, param, context, key string, raw []byte, off int64) error {
	if sc.stopped {
		return nil
	}
	for _, t := range tables {
		v, found, err := t.Lookup(sc.ctx, key)
		switch {
		case err != nil && sc.out != nil:
			sc.out.lookupFailed = true
			sc.warnf("%s: %s %s checks lookup error: %v", sc.out.id, sc.out.prog, context, err)
			return err
		case err != nil:
			sc.warnf("%s: %s map lookup problem -- message not accepted, try again later: %v", sc.s.txn.id, param, err)
			return err
		}
		if found {
			sc.act(param, context, key, v, raw, off)
			return nil
		}
	}
	return nil
}

// act is Postfix's cleanup_act for one matching header or body line.
func (sc *checkScan) act(param, context, key, value string, raw []byte, off int64) {
	cmd, text := value, ""
	if i := strings.IndexAny(value, " \t"); i >= 0 {
		cmd, text = value[:i], strings.TrimLeft(value[i:], " \t")
	}
	if sc.out != nil && !deliverySafe[strings.ToUpper(cmd)] {
		// The smtp client can only edit what it sends (Postfix's
		// header_body_checks without call-backs for other actions).
		sc.warnf("unsupported command in %s map: %s", param, value)
		return
	}
	log := func(what, text string) { sc.logAction(what, context, key, text) }
	drop := contentEdit{off: off, n: int64(len(raw))}
	res := &sc.res
	switch strings.ToUpper(cmd) {
	case "REJECT":
		reason := "5.7.1 message content rejected"
		if text != "" {
			reason = text
			if dsn, _ := rules.SplitDSN(text); dsn == "" {
				reason = "5.7.1 " + text
			} else if dsn[0] != '4' && dsn[0] != '5' {
				sc.warnf("bad DSN action in %s -- need 4.x.x or 5.x.x", text)
				reason = "4" + reason[1:]
			}
		}
		dsn, rest := rules.SplitDSN(reason)
		code := 550
		if dsn[0] == '4' {
			code = 451
		}
		res.reject = &rules.Reply{Code: code, DSN: dsn, Text: rest}
		sc.stopped = true
		log("reject", reason)
	case "WARN":
		log("warning", text)
	case "INFO":
		log("info", text)
	case "FILTER":
		if !strings.Contains(text, ":") {
			sc.warnf("bad FILTER command %s in %s -- need transport:destination", text, param)
			return
		}
		log("filter", text)
		res.filter = text
	case "PASS":
		log("pass", text)
		sc.stopped = true
	case "DISCARD":
		log("discard", text)
		res.discard, sc.stopped = true, true
	case "HOLD":
		if !res.hold && !res.discard {
			log("hold", text)
			res.hold = true
		}
	case "PREPEND":
		switch {
		case text == "":
			sc.warnf("PREPEND action without text in %s map", param)
		case context == "header" && headerNameLen([]byte(text)) == 0:
			sc.warnf("bad PREPEND header text \"%s\" in %s map -- need \"headername: headervalue\"", text, param)
		default:
			log("prepend", text)
			res.edits = append(res.edits, contentEdit{off: off, insert: []byte(text + "\r\n")})
		}
	case "REPLACE":
		switch {
		case text == "":
			sc.warnf("REPLACE action without text in %s map", param)
		case context == "header" && headerNameLen([]byte(text)) == 0:
			sc.warnf("bad REPLACE header text \"%s\" in %s map -- need \"headername: headervalue\"", text, param)
		default:
			log("replace", text)
			drop.insert = []byte(text + "\r\n")
			res.edits = append(res.edits, drop)
		}
	case "REDIRECT":
		if !strings.Contains(text, "@") {
			sc.warnf("bad REDIRECT target \"%s\" in %s map -- need user@domain", text, param)
			return
		}
		log("redirect", text)
		res.redirect, sc.stopped = text, true
	case "BCC":
		if !strings.Contains(text, "@") {
			sc.warnf("bad BCC address \"%s\" in %s map -- need user@domain", text, param)
			return
		}
		log("bcc", text)
		res.bcc = append(res.bcc, text)
	case "STRIP":
		log("strip", text)
		res.edits = append(res.edits, drop)
	case "IGNORE":
		res.edits = append(res.edits, drop)
	case "DUNNO", "OK":
	default:
		sc.warnf("unknown command in %s map: %s", param, value)
	}
}

// deliverySafe are the actions the smtp client's checks take (Postfix's
// hbc_action): those that only edit the content or log.
var deliverySafe = map[string]bool{"WARN": true, "INFO": true, "REPLACE": true, "PREPEND": true,
	"STRIP": true, "IGNORE": true, "DUNNO": true, "OK": true}

// warnf logs a warning of the checks: cleanup's, or the smtp client's.
func (sc *checkScan) warnf(format string, args ...any) {
	if sc.out != nil {
		sc.out.log.Logf(sc.out.prog, "warning: "+format, args...)
		return
	}
	sc.s.svc.log.Logf("cleanup", "warning: "+format, args...)
}

// logAction writes cleanup's line for an action:
// "ID: reject: header Subject: x from name[addr]; from=<> to=<> proto=ESMTP helo=<h>: text".
func (sc *checkScan) logAction(what, context, content, text string) {
	if sc.out != nil {
		sc.out.logAction(what, context, content, text)
		return
	}
	s := sc.s
	if len(content) > 200 {
		content = content[:200]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s %s from %s; from=<%s>", s.txn.id, what, context, printable(content), s.client, s.txn.sender)
	if n := len(s.txn.rcpts); n > 0 {
		fmt.Fprintf(&b, " to=<%s>", s.txn.rcpts[n-1].Addr)
	}
	fmt.Fprintf(&b, " proto=%s helo=<%s>", s.proto, s.helo)
	if text != "" {
		b.WriteString(": " + text)
	}
	s.svc.log.Logf("cleanup", "%s", b.String())
}

// editedContent is the content with the edits applied, as a reader.
func editedContent(content io.ReaderAt, size int64, edits []contentEdit) io.Reader {
	var parts []io.Reader
	var at int64
	for _, e := range edits {
		if e.off > at {
			parts = append(parts, io.NewSectionReader(content, at, e.off-at))
		}
		parts = append(parts, bytes.NewReader(e.insert))
		at = max(at, e.off+e.n)
	}
	parts = append(parts, io.NewSectionReader(content, at, size-at))
	return io.MultiReader(parts...)
}

// redirectAndBCC makes REDIRECT and BCC take effect (from access tables
// or from the checks): REDIRECT sends the message to its address instead
// of all recipients; BCC adds recipients that get no delivery notices.
func redirectAndBCC(env *queue.Envelope, redirect string, bcc []string) {
	if redirect != "" {
		env.Recipients = []queue.Recipient{{Addr: redirect}}
	}
	for _, a := range bcc {
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: a, Notify: "NEVER"})
	}
}

// isMIMEHeader: the headers Postfix knows as MIME headers (HDR_OPT_MIME in
// its header_opts), which go to mime_header_checks wherever they are.
func isMIMEHeader(key string) bool {
	name, _, _ := strings.Cut(key, ":")
	switch strings.ToLower(name) {
	case "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
		"content-description", "content-id":
		return true
	}
	return false
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}
