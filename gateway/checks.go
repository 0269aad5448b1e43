package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"postgate/queue"
	"postgate/rules"
)

// header_checks and body_checks, as Postfix's cleanup applies them to a
// message received by smtpd: each logical header of the message's own
// header looked up in header_checks (MIME headers in mime_header_checks),
// each non-empty body line in body_checks up to body_checks_size_limit;
// the first table that has a value decides, and its action (cleanup_act)
// rejects, holds, discards, redirects, or edits the content.
//
// Not yet: the MIME structure. Headers of MIME parts and of attached
// messages are body lines here (Postfix gives them to mime_header_checks
// and nested_header_checks).

// contentChecks are one service's header and body check tables.
type contentChecks struct {
	header, mime, body []rules.Table
	headerSizeLimit    int
	bodySizeLimit      int64
}

func (c *contentChecks) empty() bool {
	return len(c.header) == 0 && len(c.mime) == 0 && len(c.body) == 0
}

// checkResult is what the checks decided.
type checkResult struct {
	reject   *rules.Reply // REJECT: the reply at end of data
	discard  bool
	hold     bool
	redirect string
	bcc      []string
	edits    []contentEdit // in content order
}

// contentEdit replaces n bytes at off of the client's content with insert.
type contentEdit struct {
	off, n int64
	insert []byte
}

// checkScan is one run of the checks over a message.
type checkScan struct {
	s       *session
	c       *contentChecks
	res     checkResult
	stopped bool // REJECT, DISCARD, PASS, REDIRECT end the checks (CLEANUP_FLAG_FILTER_ALL)
}

// runContentChecks reads the client's content (size bytes) and returns
// what the checks decided; an error is a lookup failure.
func (s *session) runContentChecks(content io.ReaderAt, size int64) (checkResult, error) {
	sc := &checkScan{s: s, c: &s.svc.checks}
	r := bufio.NewReaderSize(io.NewSectionReader(content, 0, size), 64<<10)
	var off int64
	// The header: logical headers, until an empty line or a line that is
	// not a header.
	var hdr []byte // the logical header so far, CRLFs kept
	var hdrOff int64
	flush := func() error {
		if hdr == nil {
			return nil
		}
		err := sc.header(hdr, hdrOff)
		hdr = nil
		return err
	}
	inHeader := true
	bodySeen := int64(0)
	for !sc.stopped {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: checked by its start.
			more := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				more = append(more, line...)
			}
			line = more
		}
		if len(line) == 0 {
			break
		}
		lineOff := off
		off += int64(len(line))
		if inHeader {
			switch {
			case hdr != nil && (line[0] == ' ' || line[0] == '\t'):
				hdr = append(hdr, line...)
				continue
			case isHeaderLine(line):
				if err := flush(); err != nil {
					return sc.res, err
				}
				hdr, hdrOff = append([]byte(nil), line...), lineOff
				continue
			}
			if err := flush(); err != nil {
				return sc.res, err
			}
			inHeader = false
			if len(trimEOL(line)) == 0 {
				continue // the empty line that ends the header
			}
		}
		if bodySeen < sc.c.bodySizeLimit {
			bodySeen += int64(len(line))
			if err := sc.body(line, lineOff); err != nil {
				return sc.res, err
			}
		}
		if err != nil {
			break
		}
	}
	if inHeader && !sc.stopped {
		if err := flush(); err != nil {
			return sc.res, err
		}
	}
	return sc.res, nil
}

func (sc *checkScan) header(h []byte, off int64) error {
	tables := sc.c.header
	if isMIMEHeader(h) {
		tables = sc.c.mime
	}
	// As Postfix's MIME processor: a physical line joins the header while
	// what it holds is still under header_size_limit; the rest is dropped.
	var key strings.Builder
	for i, line := range strings.SplitAfter(string(trimEOL(h)), "\r\n") {
		if i > 0 && key.Len() >= sc.c.headerSizeLimit {
			break
		}
		if i > 0 {
			key.WriteByte('\n')
		}
		key.WriteString(strings.TrimSuffix(line, "\r\n"))
	}
	return sc.lookup(tables, "header", key.String(), h, off)
}

func (sc *checkScan) body(line []byte, off int64) error {
	key := string(trimEOL(line))
	if key == "" {
		return nil
	}
	return sc.lookup(sc.c.body, "body", key, line, off)
}

// lookup finds the first table that has key and acts on its value.
func (sc *checkScan) lookup(tables []rules.Table, context, key string, raw []byte, off int64) error {
	for _, t := range tables {
		v, found, err := t.Lookup(sc.s.ctx, key)
		if err != nil {
			sc.s.svc.log.Logf("cleanup", "warning: %s: %s_checks map lookup problem -- message not accepted, try again later: %v", sc.s.txn.id, context, err)
			return err
		}
		if found {
			sc.act(context, key, v, raw, off)
			return nil
		}
	}
	return nil
}

// act is Postfix's cleanup_act for one matching header or body line.
func (sc *checkScan) act(context, key, value string, raw []byte, off int64) {
	cmd, text := value, ""
	if i := strings.IndexAny(value, " \t"); i >= 0 {
		cmd, text = value[:i], strings.TrimLeft(value[i:], " \t")
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
				sc.s.svc.log.Logf("cleanup", "warning: bad DSN action in %s -- need 4.x.x or 5.x.x", text)
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
			sc.s.svc.log.Logf("cleanup", "warning: bad FILTER command %s in %s_checks -- need transport:destination", text, context)
			return
		}
		log("filter", text)
		sc.s.svc.log.Logf("cleanup", "warning: %s: FILTER %s ignored: postgate does not run content filters yet", sc.s.txn.id, text)
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
			sc.s.svc.log.Logf("cleanup", "warning: PREPEND action without text in %s_checks map", context)
		case context == "header" && !isHeaderLine([]byte(text)):
			sc.s.svc.log.Logf("cleanup", "warning: bad PREPEND header text \"%s\" in %s_checks map -- need \"headername: headervalue\"", text, context)
		default:
			log("prepend", text)
			res.edits = append(res.edits, contentEdit{off: off, insert: []byte(text + "\r\n")})
		}
	case "REPLACE":
		switch {
		case text == "":
			sc.s.svc.log.Logf("cleanup", "warning: REPLACE action without text in %s_checks map", context)
		case context == "header" && !isHeaderLine([]byte(text)):
			sc.s.svc.log.Logf("cleanup", "warning: bad REPLACE header text \"%s\" in %s_checks map -- need \"headername: headervalue\"", text, context)
		default:
			log("replace", text)
			drop.insert = []byte(text + "\r\n")
			res.edits = append(res.edits, drop)
		}
	case "REDIRECT":
		if !strings.Contains(text, "@") {
			sc.s.svc.log.Logf("cleanup", "warning: bad REDIRECT target \"%s\" in %s_checks map -- need user@domain", text, context)
			return
		}
		log("redirect", text)
		res.redirect, sc.stopped = text, true
	case "BCC":
		if !strings.Contains(text, "@") {
			sc.s.svc.log.Logf("cleanup", "warning: bad BCC address \"%s\" in %s_checks map -- need user@domain", text, context)
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
		sc.s.svc.log.Logf("cleanup", "warning: unknown command in %s_checks map: %s", context, value)
	}
}

// logAction writes cleanup's line for an action:
// "ID: reject: header Subject: x from name[addr]; from=<> to=<> proto=ESMTP helo=<h>: text".
func (sc *checkScan) logAction(what, context, content, text string) {
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

// isHeaderLine reports a "name:" line: a field name of printable ASCII
// other than ':', then a colon (Postfix's is_header).
func isHeaderLine(line []byte) bool {
	for i, c := range line {
		switch {
		case c == ':':
			return i > 0
		case c <= ' ' || c >= 0x7f:
			return false
		}
	}
	return false
}

// isMIMEHeader: the headers Postfix gives to mime_header_checks.
func isMIMEHeader(h []byte) bool {
	name, _, _ := bytes.Cut(h, []byte{':'})
	return bytes.EqualFold(name, []byte("MIME-Version")) ||
		len(name) > 8 && bytes.EqualFold(name[:8], []byte("Content-"))
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}
