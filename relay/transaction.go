package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"postgate/rules"
)

// command is one SMTP command of a transaction.
type command struct {
	st   stage
	line string
	rcpt int // recipient index for RCPT
}

// pipelineWindow bounds the unanswered commands in flight, as Postfix's
// VSTREAM buffer does, so neither side's socket buffer can fill up.
const pipelineWindow = 4096

// exchange sends cmds, in groups when the server offers PIPELINING, and
// passes each reply in order to handle; when handle returns false no
// further commands are sent (those already sent are still answered). It
// returns the stage whose reply was awaited when an I/O error happened.
func (s *session) exchange(cmds []command, handle func(k int, r *reply) bool) (stage, error) {
	more := true
	for sent, recv := 0, 0; recv < len(cmds) && (more || recv < sent); {
		s.c.setDeadline(s.opts.timeout(cmds[recv].st))
		unacked := 0
		for more && sent < len(cmds) {
			n := len(cmds[sent].line) + 2
			if sent > recv && (!s.pipelining || unacked+n > pipelineWindow) {
				break
			}
			s.bw.WriteString(cmds[sent].line)
			s.bw.WriteString("\r\n")
			unacked += n
			sent++
		}
		if err := s.bw.Flush(); err != nil {
			return cmds[recv].st, err
		}
		for ; recv < sent; recv++ {
			s.c.setDeadline(s.opts.timeout(cmds[recv].st))
			r, err := s.readReply()
			if err != nil {
				return cmds[recv].st, err
			}
			r.command = commandName(cmds[recv].line)
			if r.code == 421 {
				s.broken = true
			}
			if !handle(recv, r) {
				more = false
			}
		}
		if !more {
			break
		}
	}
	return 0, nil
}

// transact runs one mail transaction on s for the recipients not done
// (smtp_proto.c smtp_loop). probe sends a cached session's RSET probe
// first, in the same flight as MAIL. final says a soft failure is final.
// It reports whether a reused session failed the probe, failed before the
// server answered MAIL, or answered it with 421, so the delivery may go
// on elsewhere as if s had not been there.
func (d *delivery) transact(s *session, probe, final bool) (retry bool) {
	m := d.m
	var idx []int
	for i := range d.res {
		if !d.done[i] {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return false
	}
	if !d.canSend() {
		d.stop = true // no other server can get the content either
		return false
	}
	reused := s.uses > 0
	relay := s.namaddrport
	d.setup = time.Now()

	if s.sizeLimit > 0 && m.Size > s.sizeLimit {
		d.fail(idx, hardFail("5.3.4", "message size %d exceeds size limit %d of server %s", m.Size, s.sizeLimit, s.namaddr), relay, s.uses, final)
		return false
	}
	utf8 := m.SMTPUTF8 && s.smtputf8
	if m.SMTPUTF8 && !s.smtputf8 && d.needsSMTPUTF8(idx) {
		d.fail(idx, hardFail("5.6.7", "SMTPUTF8 is required, but was not offered by host %s", s.namaddr), relay, s.uses, final)
		return false
	}
	if !safeCommandArg(m.Sender) {
		d.fail(idx, hardFail("5.1.7", "bad sender address syntax: %q", m.Sender), "none", 0, final)
		return false
	}

	s.uses++
	use := s.uses
	cmds := make([]command, 0, len(idx)+3)
	if probe {
		cmds = append(cmds, command{st: stageProbe, line: "RSET"})
	}
	cmds = append(cmds, command{st: stageMail, line: d.mailCommand(s, utf8)})
	for _, i := range idx {
		r := &m.Recipients[i]
		if !safeCommandArg(r.Addr) {
			d.fail([]int{i}, hardFail("5.1.3", "bad recipient address syntax: %q", r.Addr), "none", 0, final)
			continue
		}
		cmds = append(cmds, command{st: stageRcpt, line: rcptCommand(s, r), rcpt: i})
	}
	if cmds[len(cmds)-1].st == stageMail {
		s.uses--
		return false
	}
	if !m.Verify {
		cmds = append(cmds, command{st: stageData, line: "DATA"})
	}

	// open are the recipients sent in RCPT that have no answer of their own
	// yet: an I/O error concerns them.
	open := make(map[int]bool, len(idx))
	for _, c := range cmds {
		if c.st == stageRcpt {
			open[c.rcpt] = true
		}
	}
	openIDs := func() []int {
		var ids []int
		for _, i := range idx {
			if open[i] {
				ids = append(ids, i)
			}
		}
		return ids
	}
	said := func(r *reply, st stage) *failure {
		return replyFailure(r, "host %s said: %s (in reply to %s)", s.namaddr, r.line(), stageRequest[st])
	}
	var (
		mailRejected bool
		accepted     []int
		dataReply    *reply
		mailAnswered bool
	)
	st, err := s.exchange(cmds, func(k int, r *reply) bool {
		if retry {
			return false // the replies of a dropped session's flight
		}
		c := cmds[k]
		switch c.st {
		case stageProbe:
			if r.code/100 != 2 {
				// The cached session is no longer good (smtp_reuse.c):
				// closed at once, the rest of its flight unread.
				retry = true
				s.broken = true
				s.c.Close()
				return false
			}
		case stageMail:
			if r.code == 421 && reused {
				retry = true // the server gave up on the idle session
				return false
			}
			mailAnswered = true
			if r.code/100 != 2 {
				mailRejected = true
				d.fail(openIDs(), said(r, stageMail), relay, use, final)
				clear(open)
				return false
			}
		case stageRcpt:
			if mailRejected || retry {
				return false
			}
			if r.code/100 == 2 && m.Verify {
				d.finish(c.rcpt, Sent, r.dsn, fmt.Sprintf("host %s said: %s (in reply to %s)", s.namaddr, r.line(), stageRequest[stageRcpt]), r.export(), relay, use)
				delete(open, c.rcpt)
			} else if r.code/100 == 2 {
				accepted = append(accepted, c.rcpt)
			} else {
				d.fail([]int{c.rcpt}, said(r, stageRcpt), relay, use, final)
				delete(open, c.rcpt)
			}
			if !m.Verify && k == len(cmds)-2 && len(accepted) == 0 {
				return false // no DATA without recipients
			}
		case stageData:
			dataReply = r
		}
		return true
	})
	if retry || err != nil && reused && !mailAnswered {
		s.broken = true
		s.uses--
		return true
	}
	if err != nil {
		d.fail(openIDs(), s.ioFailure(d.ctx, st, err), relay, use, final)
		return false
	}

	if mailRejected || len(accepted) == 0 || dataReply == nil || dataReply.code/100 != 3 {
		if !mailRejected && len(accepted) > 0 && dataReply != nil {
			d.fail(accepted, said(dataReply, stageData), relay, use, final)
		}
		if dataReply != nil && dataReply.code/100 == 3 {
			// In DATA with no one to deliver to: end it at once (RFC 2920).
			if _, err := s.command(stageDot, "."); err != nil {
				s.broken = true
			}
		}
		s.abort()
		return false
	}

	r, st, err := d.sendContent(s)
	if err != nil {
		f := s.ioFailure(d.ctx, st, err)
		if errors.Is(err, errLocalData) {
			d.stop = true
		}
		d.fail(accepted, f, relay, use, final)
		return false
	}
	if s.opts.LMTP {
		d.lmtpReplies(s, accepted, r, said, relay, use, final)
		return false
	}
	if r.code/100 == 2 {
		remote := r.export() // one reply for all
		for _, i := range accepted {
			d.finish(i, Sent, r.dsn, r.line(), remote, relay, use)
		}
		return false
	}
	d.fail(accepted, said(r, stageDot), relay, use, final)
	return false
}

// lmtpReplies takes LMTP's replies after the content, one per accepted
// recipient in RCPT order (RFC 2033), the first already read: each
// recipient is delivered or failed on its own.
func (d *delivery) lmtpReplies(s *session, accepted []int, first *reply, said func(*reply, stage) *failure, relay string, use int, final bool) {
	r := first
	for k, i := range accepted {
		if k > 0 {
			var err error
			if r, err = s.readReply(); err != nil {
				d.fail(accepted[k:], s.ioFailure(d.ctx, stageDot, err), relay, use, final)
				return
			}
			r.command = commandName(".")
		}
		if r.code/100 == 2 {
			d.finish(i, Sent, r.dsn, r.line(), r.export(), relay, use)
		} else {
			d.fail([]int{i}, said(r, stageDot), relay, use, final)
		}
	}
}

// abort ends a transaction that will not deliver with RSET ("final
// RSET"), so the session can serve again.
func (s *session) abort() {
	if s.broken {
		return
	}
	if r, err := s.command(stageAbort, "RSET"); err != nil || r.code/100 != 2 {
		s.broken = true
	}
}

// copyBufs are the buffers content is read into.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// sendContent sends the message after the 354 reply and reads the reply to
// its end. On a lost connection it still looks for a reply the server may
// have sent before it hung up, as Postfix does.
func (d *delivery) sendContent(s *session) (*reply, stage, error) {
	if err := d.rewind(); err != nil {
		s.broken = true
		return nil, stageBody, errLocalData
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp

	content := d.content
	if d.t.opts.Generic != nil {
		var err error
		if content, err = d.genericHeaders(content); err != nil {
			d.t.logf(d.m.QueueID, "warning: "+err.Error())
			s.broken = true
			s.c.Close()
			return nil, stageBody, errLocalData
		}
	}
	s.c.xfer = s.opts.DataXferTimeout
	dw := newDataWriter(s.bw, s.opts.LineLengthLimit)
	var werr error
	for werr == nil {
		n, rerr := content.Read(buf)
		if n > 0 {
			_, werr = dw.Write(buf[:n])
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil && werr == nil {
			// Never end the data: the server must not take half a message.
			s.broken = true
			s.c.Close()
			return nil, stageBody, errLocalData
		}
	}
	if werr == nil {
		werr = dw.Close()
	}
	if werr == nil {
		werr = s.bw.Flush()
	}
	s.c.xfer = 0
	if werr != nil {
		s.broken = true
		var ne net.Error
		if d.ctx.Err() != nil || errors.As(werr, &ne) && ne.Timeout() {
			return nil, stageBody, werr
		}
		s.c.setDeadline(s.opts.DataDoneTimeout)
		if r, err := s.readReply(); err == nil && r.code >= 400 {
			r.command = commandName(".")
			return r, stageDot, nil
		}
		return nil, stageBody, werr
	}
	s.c.setDeadline(s.opts.DataDoneTimeout)
	r, err := s.readReply()
	if err != nil {
		return nil, stageDot, err
	}
	r.command = commandName(".")
	return r, stageDot, nil
}

// mailCommand is MAIL FROM with the parameters the server offers.
func (d *delivery) mailCommand(s *session, utf8 bool) string {
	m := d.m
	var b strings.Builder
	b.WriteString("MAIL FROM:<")
	b.WriteString(quote821(m.Sender))
	b.WriteString(">")
	if s.size && m.Size > 0 {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(m.Size, 10))
	}
	if s.eightBitMIME {
		b.WriteString(" BODY=8BITMIME")
	}
	if utf8 {
		b.WriteString(" SMTPUTF8")
	}
	if s.dsn {
		if m.EnvID != "" {
			b.WriteString(" ENVID=")
			b.WriteString(rules.Xtext(m.EnvID))
		}
		switch ret := strings.ToUpper(m.RET); ret {
		case "FULL", "HDRS":
			b.WriteString(" RET=")
			b.WriteString(ret)
		}
	}
	return b.String()
}

// rcptCommand is RCPT TO with the DSN parameters when the server offers
// DSN.
func rcptCommand(s *session, r *Recipient) string {
	var b strings.Builder
	b.WriteString("RCPT TO:<")
	b.WriteString(quote821(r.Addr))
	b.WriteString(">")
	if s.dsn {
		if v := orcptParam(r.orcpt(), s.smtputf8); v != "" {
			b.WriteString(" ORCPT=")
			b.WriteString(v)
		}
		if v := notifyParam(r.Notify); v != "" {
			b.WriteString(" NOTIFY=")
			b.WriteString(v)
		}
	}
	return b.String()
}

// needsSMTPUTF8 reports whether the envelope cannot be sent without
// SMTPUTF8: a non-ASCII sender or recipient address.
func (d *delivery) needsSMTPUTF8(idx []int) bool {
	if !isASCII(d.m.Sender) {
		return true
	}
	for _, i := range idx {
		if !isASCII(d.m.Recipients[i].Addr) {
			return true
		}
	}
	return false
}
