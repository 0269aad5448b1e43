package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"postgate/gateway/command"
	"postgate/queue"
	"postgate/restrictions"
	"postgate/rules"
)

// DATA and BDAT, as Postfix's data_cmd and bdat_cmd, and the message's way
// into the queue: nothing is acknowledged before it is on disk.

// bdatState is a message arriving in BDAT chunks.
type bdatState struct {
	msg     *assembly // nil before a proxy filter (proxyfilter.go)
	proxied int64     // the bytes relayed to the proxy filter
	arrival time.Time
}

func (s *session) data(args []command.Token) bool {
	switch {
	case s.txn.bdat != nil || s.txn.bdatError:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: DATA after BDAT"})
		return false
	case len(s.txn.rcpts) == 0 && !s.txn.active:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: need RCPT command"})
		return false
	case len(s.txn.rcpts) == 0:
		// Not a protocol error: a pipelining client sends DATA before it
		// knows that every recipient was refused.
		s.reply(rules.Reply{Code: 554, DSN: "5.5.1", Text: "Error: no valid recipients"})
		return false
	case len(args) != 1:
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: DATA"})
		return false
	}
	if r := s.checkData(); r != nil {
		s.reply(*r)
		return false
	}
	if s.svc.proxy != nil {
		return s.proxyData()
	}
	s.reply(rules.Reply{Code: 354, Text: "End data with <CR><LF>.<CR><LF>"})
	s.where = "DATA content"
	s.nc.beginRequest(true)
	arrival := time.Now()
	msg := s.newAssembly(arrival)
	defer msg.release()
	tooBig, err := msg.readFrom(s.c.DataReader(), s.svc.messageSizeLimit)
	if err != nil {
		s.contentLost("DATA", msg.raw, err)
		return false
	}
	s.where = "END-OF-MESSAGE"
	if tooBig {
		return s.messageTooBig()
	}
	return s.finishMessage(msg, arrival)
}

// newAssembly starts a message with the access PREPEND headers, the
// Received-SPF: header (where policyd-spf's PREPEND would be) and our
// Received: header, in that order, as Postfix's smtpd writes them.
func (s *session) newAssembly(arrival time.Time) *assembly {
	a := newAssembly(s.svc.budget, s.svc.spoolDir)
	for _, h := range s.txn.prepend {
		a.buf = append(append(a.buf, h...), '\r', '\n')
	}
	a.buf = s.appendReceivedSPF(a.buf)
	a.buf = s.appendReceived(a.buf, arrival)
	a.start = len(a.buf)
	return a
}

// checkData runs smtpd_data_restrictions, then the milters' DATA event
// (before 354, or at the first BDAT); a reply is returned when they
// refuse the message.
func (s *session) checkData() *rules.Reply {
	if s.svc.hasDataRestrictions {
		v := s.check(restrictions.Data, s.onlyRecipient())
		s.logEvents("DATA", s.onlyRecipient(), v)
		if v.Decision == restrictions.Reject {
			r := v.Reply
			return &r
		}
	}
	return s.milterData()
}

func (s *session) bdat(args []command.Token) bool {
	if s.ehloMask&ehloChunking != 0 {
		// The next input would be message content: hang up.
		s.reply(rules.Reply{Code: 521, DSN: "5.5.1", Text: "Error: command not implemented"})
		return false
	}
	var size int64
	var err error
	last := len(args) == 3
	if len(args) >= 2 && rules.AllDigits(args[1].Text) {
		size, err = strconv.ParseInt(args[1].Text, 10, 64)
	}
	if len(args) < 2 || len(args) > 3 || !rules.AllDigits(args[1].Text) || err != nil ||
		(last && !strings.EqualFold(args[2].Text, "LAST")) {
		s.svc.log.Logf("smtpd", "warning: %s: malformed BDAT command syntax from %s: %.100s", s.idOrNoqueue(), s.client, printable(joinArgs(args)))
		s.reply(rules.Reply{Code: 521, DSN: "5.5.4", Text: "Syntax: BDAT count [LAST]"})
		return false
	}
	if size == 0 && !last {
		s.svc.log.Logf("smtpd", "warning: %s: null BDAT request from %s", s.idOrNoqueue(), s.client)
		return s.skipChunk(size, last, rules.Reply{Code: 551, DSN: "5.7.1", Text: "Null BDAT request"})
	}
	if s.txn.bdatError {
		return s.skipChunk(size, last, rules.Reply{Code: 551, DSN: "5.0.0", Text: "Discarded " + strconv.FormatInt(size, 10) + " bytes after earlier error"})
	}
	if s.txn.bdat == nil {
		// The first chunk is the message's DATA command.
		switch {
		case len(s.txn.rcpts) == 0 && !s.txn.active:
			return s.skipChunk(size, last, rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: need RCPT command"})
		case len(s.txn.rcpts) == 0:
			return s.skipChunk(size, last, rules.Reply{Code: 554, DSN: "5.5.1", Text: "Error: no valid recipients"})
		}
		if r := s.checkData(); r != nil {
			return s.skipChunk(size, last, *r)
		}
		if s.svc.proxy != nil {
			if r := s.proxyBegin(); r != nil {
				return s.skipChunk(size, last, *r)
			}
		}
	}
	received := int64(0)
	if s.txn.bdat != nil {
		received = s.txn.bdat.received()
	}
	if limit := s.svc.messageSizeLimit; limit > 0 && received > limit-size {
		s.svc.log.Logf("smtpd", "warning: %s: BDAT request from %s exceeds message size limit", s.idOrNoqueue(), s.client)
		return s.skipChunk(size, last, rules.Reply{Code: 552, DSN: "5.3.4", Text: "Chunk exceeds message size limit"})
	}
	switch {
	case s.txn.bdat == nil && s.svc.proxy != nil:
		s.txn.bdat = &bdatState{arrival: time.Now()}
	case s.txn.bdat == nil:
		arrival := time.Now()
		s.txn.bdat = &bdatState{msg: s.newAssembly(arrival), arrival: arrival}
	}
	if s.svc.proxy != nil {
		return s.proxyChunk(size, last)
	}
	b := s.txn.bdat
	s.where = "BDAT content"
	s.nc.beginRequest(true)
	// The size limit was checked above, against the chunk's announced size.
	if _, err := b.msg.readFrom(s.c.ChunkReader(size), 0); err != nil {
		s.contentLost("BDAT", b.msg.raw, err)
		return false
	}
	if !last {
		s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: "Ok: " + strconv.FormatInt(size, 10) + " bytes"})
		return true
	}
	s.where = "END-OF-MESSAGE"
	return s.finishMessage(b.msg, b.arrival)
}

// skipChunk reads and drops the chunk of a refused BDAT, so the dialogue
// stays in step, and answers. A refused last chunk ends the transaction;
// otherwise further chunks are dropped until BDAT LAST or RSET.
func (s *session) skipChunk(size int64, last bool, r rules.Reply) bool {
	s.nc.beginRequest(true)
	if _, err := io.Copy(io.Discard, s.c.ChunkReader(size)); err != nil {
		s.contentLost("BDAT", 0, err)
		return false
	}
	s.reply(r)
	if last {
		s.resetTransaction()
	} else {
		s.txn.bdatError = true
	}
	return false
}

// contentLost ends a session whose client went away (or timed out) inside
// message content: the transaction is discarded, nothing is queued.
func (s *session) contentLost(cmd string, n int64, err error) {
	what := "lost connection"
	if isTimeout(err) {
		what = "timeout"
	}
	s.svc.log.Logf("smtpd", "%s after %s (%d bytes) from %s", what, cmd, n, s.client)
	if what == "timeout" {
		s.reply(rules.Reply{Code: 421, DSN: "4.4.2", Text: s.svc.hostname + " Error: timeout exceeded"})
	}
	s.resetTransaction()
	s.hangup = true
}

func (s *session) messageTooBig() bool {
	s.svc.log.Logf("smtpd", "warning: %s: queue file size limit exceeded", s.idOrNoqueue())
	s.resetTransaction()
	s.reply(rules.Reply{Code: 552, DSN: "5.3.4", Text: "Error: message file too big"})
	return false
}

// finishMessage takes the whole message through the end-of-data stage
// into the queue, and answers.
func (s *session) finishMessage(msg *assembly, arrival time.Time) bool {
	defer s.resetTransaction()
	if msg.normalizeLF() {
		switch {
		case s.svc.bareLF == bareLFReject && !s.svc.bareLFExcluded(s.ctx, s.client.addr):
			text := s.svc.hostname + " Error: bare <LF> received"
			s.logAction("reject", s.where, strconv.Itoa(s.svc.bareLFCode)+" 5.5.2 "+text, s.onlyRecipient())
			s.reply(rules.Reply{Code: s.svc.bareLFCode, DSN: "5.5.2", Text: text})
			return false
		case s.svc.bareLF == bareLFNote:
			s.bareLF = true
		}
	}
	s.txn.received = msg.contentLen()
	if s.svc.hasEndOfDataRestrictions && !s.local && !s.passes("END-OF-MESSAGE", s.onlyRecipient(), s.check(restrictions.EndOfData, s.onlyRecipient())) {
		return false
	}
	if s.checks.Discarded() {
		// An access DISCARD: accepted with 250, never queued (logged when it fired).
		s.accepted(msg)
		return true
	}
	received := msg // what the client sent, for the reply
	held := s.checks.Held() || s.txn.milterHold
	var checked checkResult
	if !s.svc.checks.empty() && msg.spoolErr == nil {
		content, size := msg.content()
		res, err := s.runContentChecks(content, size)
		switch {
		case err != nil:
			s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
			return false
		case res.reject != nil:
			s.reply(*res.reject)
			return false
		case res.discard:
			s.accepted(received)
			return true
		}
		if len(res.edits) > 0 {
			msg = s.reassemble(msg, res.edits)
			defer msg.release()
		}
		held = held || res.hold
		checked = res
	}
	domain, err := s.headerContext()
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: %s: local_header_rewrite_clients: %v", s.txn.id, err)
		s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Temporary lookup error"})
		return false
	}
	if msg.spoolErr == nil {
		// Before the rewriting, as the From: made from the envelope
		// sender is then written as the canonical sender.
		content, size := msg.content()
		seen, end, edits := cleanupHeaders(content, size, s.svc.canonical.dropHeaders)
		if domain != "" || s.svc.canonical.alwaysAddHeaders {
			if add := s.missingHeaders(seen, arrival, s.txn.fullName); len(add) > 0 {
				edits = append(edits, contentEdit{off: end, insert: add})
			}
		}
		if len(edits) > 0 {
			msg = s.reassemble(msg, edits)
			defer msg.release()
		}
	}
	if domain != "" && msg.spoolErr == nil {
		content, size := msg.content()
		edits, err := s.rewriteHeaders(content, size, domain)
		if err != nil {
			s.svc.log.Logf("cleanup", "warning: %s: %v -- message not accepted, try again later", s.txn.id, err)
			s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
			return false
		}
		if len(edits) > 0 {
			msg = s.reassemble(msg, edits)
			defer msg.release()
		}
	}
	edited, outcome := s.milterMessage(msg, arrival, &held)
	switch outcome {
	case milterRefused:
		return false
	case milterDiscard:
		s.accepted(received)
		return true
	}
	if edited != nil {
		msg = edited
		defer msg.release()
	}
	authed, authHold, ok := s.authenticate(msg)
	if !ok {
		return false
	}
	if authed != msg {
		msg = authed
		defer msg.release()
	}
	held = held || authHold
	env := &queue.Envelope{
		ID:         s.txn.id,
		Sender:     s.txn.sender,
		Recipients: s.txn.rcpts,
		RET:        s.txn.ret,
		EnvID:      s.txn.envID,
		Arrival:    arrival,
		ClientName: s.client.name,
		ClientAddr: s.client.address(),
		Helo:       s.helo,
		Proto:      s.proto,
		Filter:     cmp.Or(checked.filter, s.txn.filter, s.svc.contentFilter),
	}
	if x := s.txn.xforward; x.set {
		env.ClientName, env.ClientAddr, env.Helo = orDefault(x.name, env.ClientName), orDefault(x.addr, env.ClientAddr), orDefault(x.helo, env.Helo)
		env.Proto = orDefault(x.proto, env.Proto)
	}
	redirectAndBCC(env, s.txn.redirect, s.txn.bcc)
	redirectAndBCC(env, checked.redirect, checked.bcc)
	if !s.rewriteEnvelope(env) {
		return false
	}
	if err := s.appendMessage(env, msg, held); err != nil {
		s.svc.log.Logf("smtpd", "warning: %s: queue file write error: %v", s.txn.id, err)
		if errors.Is(err, queue.ErrNoSpace) {
			s.reply(insufficientStorage)
			return false
		}
		s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
		return false
	}
	s.svc.log.Logf("cleanup", "%s: message-id=<%s>", s.txn.id, messageID(msg.header()))
	s.accepted(received)
	return true
}

// headerContext is the domain that qualifies header addresses: that of
// the local or the remote rewriting context (local_header_rewrite_clients),
// always the local one for mail from the maildrop, as Postfix rewrites
// the headers of sendmail mail.
func (s *session) headerContext() (string, error) {
	switch {
	case s.local || s.txn.xforward.source == "LOCAL":
		return s.svc.canonical.myorigin, nil
	case s.txn.xforward.source == "REMOTE":
		return s.svc.canonical.remoteDomain, nil
	}
	return s.svc.canonical.rewriteContext(s.ctx, s.client.addr, s.peer)
}

// reassemble returns a new message (for the caller to release): msg's
// prefix as it is, and its content with edits applied (in content order).
func (s *session) reassemble(msg *assembly, edits []contentEdit) *assembly {
	content, size := msg.content()
	edited := newAssembly(s.svc.budget, s.svc.spoolDir)
	prefix, err := msg.prefix()
	edited.buf = append(edited.buf, prefix...)
	edited.start = len(edited.buf)
	if err == nil {
		_, err = edited.readFrom(editedContent(content, size, edits), 0)
	}
	if err != nil {
		edited.fail(err)
	}
	return edited
}

// appendMessage appends the message to the queue: from memory, or
// straight from its spool file (or fails with the spool file's error). An
// access HOLD sends it to the hold queue in the same record, so no
// delivery can start in between.
func (s *session) appendMessage(env *queue.Envelope, msg *assembly, held bool) error {
	switch {
	case msg.spoolErr != nil:
		return msg.spoolErr
	case msg.file != nil && held:
		return s.svc.store.AppendFileHeld(s.ctx, env, msg.file, msg.size)
	case msg.file != nil:
		return s.svc.store.AppendFile(s.ctx, env, msg.file, msg.size)
	case held:
		return s.svc.store.AppendHeld(s.ctx, env, msg.buf)
	}
	return s.svc.store.Append(s.ctx, env, msg.buf)
}

// accepted answers a message taken: a delivered message forgives the
// client's earlier errors and junk commands, as Postfix does. After BDAT
// the reply gives the size Postfix counts: the content with CRLF line ends,
// a last line without one counted as if it had it.
func (s *session) accepted(msg *assembly) {
	s.errors, s.junk = 0, 0
	s.svc.metrics.Messages.WithLabelValues(s.svc.name).Inc()
	s.svc.metrics.MessageBytes.WithLabelValues(s.svc.name).Add(float64(msg.contentLen()))
	text := "Ok: queued as " + s.txn.id
	if s.txn.bdat != nil {
		text = "Ok: " + strconv.FormatInt(msg.contentLen(), 10) + " bytes queued as " + s.txn.id
	}
	s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: text})
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// onlyRecipient is the recipient Postfix names at DATA: the only one, if one.
func (s *session) onlyRecipient() string {
	if len(s.txn.rcpts) == 1 {
		return s.txn.rcpts[0].Addr
	}
	return ""
}

// appendReceived appends Postfix's Received: header. With XFORWARD it
// names the original client, as Postfix does.
func (s *session) appendReceived(b []byte, now time.Time) []byte {
	helo, name, addr, proto := s.helo, s.client.name, s.client.address(), s.proto
	if x := s.txn.xforward; x.set {
		helo, name, addr, proto = orDefault(x.helo, helo), orDefault(x.name, name), orDefault(x.addr, addr), orDefault(x.proto, proto)
	}
	b = append(b, "Received: from "...)
	b = append(b, helo...)
	b = append(b, " ("...)
	b = append(b, name...)
	b = append(b, " ["...)
	b = append(b, addr...)
	b = append(b, "])"...)
	b = s.appendTLSReceived(b)
	b = append(b, "\r\n\tby "...)
	b = append(b, s.svc.hostname...)
	b = append(b, " ("...)
	b = append(b, s.svc.mailName...)
	b = append(b, ") with "...)
	b = append(b, s.receivedProto(proto)...)
	if s.txn.id != "" { // none before a proxy filter, as Postfix
		b = append(b, " id "...)
		b = append(b, s.txn.id...)
	}
	if len(s.txn.rcpts) == 1 {
		b = append(b, "\r\n\tfor <"...)
		b = append(b, s.txn.rcpts[0].Addr...)
		b = append(b, ">"...)
	}
	b = append(b, "; "...)
	b = now.AppendFormat(b, mailDateLayout)
	return append(b, "\r\n"...)
}

// mailDateLayout is Postfix's mail_date: day of month space-padded.
const mailDateLayout = "Mon, _2 Jan 2006 15:04:05 -0700 (MST)"

// rewriteEnvelope rewrites the envelope as Postfix's cleanup does:
// canonical maps, then virtual aliases, then (postgate) local aliases. On
// failure the client has its reply and the message is not accepted.
func (s *session) rewriteEnvelope(env *queue.Envelope) bool {
	warn := func(format string, args ...any) {
		s.svc.log.Logf("cleanup", "warning: %s: %s", s.txn.id, fmt.Sprintf(format, args...))
	}
	// Each recipient remembers the address it was received as (pickup's
	// before it was qualified); expansion copies it to every address an
	// alias gives.
	for i := range env.Recipients {
		if r := &env.Recipients[i]; r.Orig == "" {
			r.Orig = r.Addr
		}
	}
	defer func() {
		for i := range env.Recipients {
			if r := &env.Recipients[i]; strings.EqualFold(r.Orig, r.Addr) {
				r.Orig = ""
			}
		}
	}()
	err := s.canonicalEnvelope(env, warn)
	if err == nil {
		err = s.addAutoBCC(env, warn)
	}
	if err != nil {
		warn("%v -- message not accepted, try again later", err)
		s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
		return false
	}
	for _, step := range []struct {
		param  string
		expand func(context.Context, []queue.Recipient) ([]queue.Recipient, error)
	}{
		{"virtual_alias_maps", s.svc.virtual.expand},
		{"alias_maps", func(ctx context.Context, r []queue.Recipient) ([]queue.Recipient, error) {
			return s.svc.virtual.expandLocal(ctx, r, warn)
		}},
	} {
		rcpts, err := step.expand(s.ctx, env.Recipients)
		switch {
		case errors.Is(err, errAliasExpansion):
			warn("unreasonable %s map expansion -- message not accepted, try again later", step.param)
			s.reply(rules.Reply{Code: 451, DSN: "4.6.0", Text: "Alias expansion error"})
			return false
		case err != nil:
			warn("%s map lookup problem -- message not accepted, try again later: %v", step.param, err)
			s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
			return false
		}
		env.Recipients = rcpts
	}
	return true
}

// canonicalEnvelope rewrites the envelope's sender and recipients with the
// canonical maps, as Postfix's cleanup does before virtual aliasing.
func (s *session) canonicalEnvelope(env *queue.Envelope, warn func(string, ...any)) error {
	c := s.svc.canonical
	var err error
	if env.Sender, err = c.rewriteSender(s.ctx, env.Sender, warn); err != nil {
		return err
	}
	for i := range env.Recipients {
		if env.Recipients[i].Addr, err = c.rewriteRecipient(s.ctx, env.Recipients[i].Addr, warn); err != nil {
			return err
		}
	}
	return nil
}
