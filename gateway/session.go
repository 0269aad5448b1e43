package gateway

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/queue"
	"postgate/restrictions"
	"postgate/rules"
)

// session is one SMTP session on go-smtp, from the first HELO/EHLO to the
// end of the connection. It runs the restriction stages, assembles the
// message and appends it to the queue before the 250 is sent.
type session struct {
	c      *conn
	svc    *service
	ctx    context.Context
	cancel context.CancelFunc
	helo   string

	// The current transaction, reset by RSET, EHLO and the end of DATA.
	id      string
	sender  string
	hasMail bool
	ret     string
	envID   string
	rcpts   []queue.Recipient
	txn     restrictions.Txn
}

func (s *session) request(rcpt string) *restrictions.Request {
	return &restrictions.Request{
		ClientAddr:     s.c.client.addr,
		ClientName:     s.c.client.name,
		ReverseName:    s.c.client.name,
		Helo:           s.helo,
		Proto:          s.c.proto(),
		Sender:         s.sender,
		Recipient:      rcpt,
		RecipientCount: len(s.rcpts),
	}
}

// Reset discards the current transaction (RSET, a new EHLO, end of DATA).
func (s *session) Reset() {
	s.id, s.sender, s.hasMail, s.ret, s.envID = "", "", false, "", ""
	s.rcpts = s.rcpts[:0]
	s.txn.Reset()
}

// Logout ends the session when the connection closes.
func (s *session) Logout() error {
	s.cancel()
	return nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	s.sender, s.hasMail = from, true
	if opts != nil {
		s.ret = string(opts.Return)
		s.envID = opts.EnvelopeID
	}
	v := s.svc.lists.Check(s.ctx, restrictions.Mail, s.request(""), &s.txn)
	if v.Decision == restrictions.Reject {
		err := s.reject("MAIL", "", v) // logged with from=<...>, as Postfix
		s.sender, s.hasMail = "", false
		return err
	}
	s.logEvents("MAIL", "", v)
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if len(s.rcpts) >= s.svc.recipientLimit {
		return replyError(452, "4.5.3", "Error: too many recipients")
	}
	v := s.svc.lists.Check(s.ctx, restrictions.Rcpt, s.request(to), &s.txn)
	if v.Decision == restrictions.Reject {
		return s.reject("RCPT", to, v)
	}
	s.logEvents("RCPT", to, v)
	if s.id == "" {
		// Postfix assigns the queue ID at the first accepted recipient.
		s.id = s.svc.store.NewID()
		s.svc.log.Logf("smtpd", "%s: client=%s", s.id, s.c.client)
	}
	s.rcpts = append(s.rcpts, dsnRecipient(to, opts))
	return nil
}

// dsnRecipient keeps the DSN parameters with the envelope, so bounces can
// honour them.
func dsnRecipient(to string, opts *smtp.RcptOptions) queue.Recipient {
	r := queue.Recipient{Addr: to}
	if opts == nil {
		return r
	}
	if opts.OriginalRecipient != "" {
		r.ORCPT = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	if len(opts.Notify) > 0 {
		n := make([]string, len(opts.Notify))
		for i, v := range opts.Notify {
			n[i] = string(v)
		}
		r.Notify = strings.Join(n, ",")
	}
	return r
}

// reject logs a refused command as Postfix does (the verdict carries its
// own reject line) and returns its reply.
func (s *session) reject(stage, rcpt string, v restrictions.Verdict) error {
	s.logEvents(stage, rcpt, v)
	if v.Disconnect {
		s.c.hangUpAfterReply()
	}
	return verdictError(v)
}

// logContext is the "from=<..> to=<..> proto=.. helo=<..>" tail of a log line.
func (s *session) logContext(rcpt string) string {
	var b strings.Builder
	if s.hasMail {
		b.WriteString(" from=<" + s.sender + ">")
	}
	if rcpt != "" {
		b.WriteString(" to=<" + rcpt + ">")
	}
	b.WriteString(" proto=" + s.c.proto())
	if s.helo != "" {
		b.WriteString(" helo=<" + s.helo + ">")
	}
	return b.String()
}

// logEvents writes the action and warning lines a verdict carries, and a
// warning for each access action the message stage cannot apply yet
// (FILTER, REDIRECT, BCC, PREPEND come with the access-language issue), so
// none is ignored silently.
func (s *session) logEvents(stage, rcpt string, v restrictions.Verdict) {
	for _, e := range v.Effects {
		switch e.Action {
		case rules.ActionFilter, rules.ActionRedirect, rules.ActionBCC, rules.ActionPrepend:
			s.svc.log.Logf("smtpd", "warning: %s: access action %s %s is not implemented yet: ignored", s.idOrNoqueue(), e.Action, e.Arg)
		}
	}
	for _, e := range v.Log {
		switch e.Kind {
		case restrictions.LogAction:
			s.svc.log.Logf("smtpd", "%s: %s: %s from %s: %s;%s", s.idOrNoqueue(), e.What, stage, s.c.client, e.Text, s.logContext(rcpt))
		case restrictions.LogWarning:
			s.svc.log.Logf("smtpd", "warning: %s", e.Text)
		default:
			s.svc.log.Logf("smtpd", "%s", e.Text)
		}
	}
}

func (s *session) Data(r io.Reader) error {
	if s.svc.hasDataRestrictions {
		// go-smtp has already sent 354: the data stage decides at the end.
		if v := s.svc.lists.Check(s.ctx, restrictions.Data, s.request(s.onlyRecipient()), &s.txn); v.Decision == restrictions.Reject {
			io.Copy(io.Discard, r)
			return s.reject("DATA", s.onlyRecipient(), v)
		}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	arrival := time.Now()
	s.writeReceived(buf, arrival)
	bare, err := readContent(buf, r)
	if err != nil {
		return dataReadError(err)
	}
	if bare {
		switch {
		case s.svc.bareLF == bareLFReject && !s.svc.bareLFExcluded(s.ctx, s.c.client.addr):
			s.svc.log.Logf("smtpd", "%s: reject: DATA from %s: %d 5.5.2 %s Error: bare <LF> received;%s",
				s.idOrNoqueue(), s.c.client, s.svc.bareLFCode, s.svc.hostname, s.logContext(s.onlyRecipient()))
			if s.svc.bareLFCode == 521 {
				s.c.hangUpAfterReply()
			}
			return replyError(s.svc.bareLFCode, "5.5.2", s.svc.hostname+" Error: bare <LF> received")
		case s.svc.bareLF == bareLFNote:
			s.c.noteBareLF()
		}
	}
	content := buf.Bytes()
	if s.txn.Discarded() {
		// An access DISCARD: accepted with 250, never queued (logged when it fired).
		return replyError(250, "2.0.0", "Ok: queued as "+s.id)
	}
	env := &queue.Envelope{
		ID:         s.id,
		Sender:     s.sender,
		Recipients: s.rcpts,
		RET:        s.ret,
		EnvID:      s.envID,
		Arrival:    arrival,
		ClientName: s.c.client.name,
		ClientAddr: s.c.client.addr.String(),
		Helo:       s.helo,
		Proto:      s.c.proto(),
	}
	// An access HOLD sends the message straight to the hold queue: one
	// record, so no delivery can start in between.
	appendFn := s.svc.store.Append
	if s.txn.Held() {
		appendFn = s.svc.store.AppendHeld
	}
	if err := appendFn(s.ctx, env, content); err != nil {
		s.svc.log.Logf("smtpd", "warning: %s: queue file write error: %v", s.id, err)
		return replyError(451, "4.3.0", "Error: queue file write error")
	}
	s.svc.log.Logf("cleanup", "%s: message-id=<%s>", s.id, messageID(content))
	return replyError(250, "2.0.0", "Ok: queued as "+s.id)
}

func (s *session) idOrNoqueue() string {
	if s.id == "" {
		return "NOQUEUE"
	}
	return s.id
}

// onlyRecipient is the recipient Postfix names at DATA: the only one, if one.
func (s *session) onlyRecipient() string {
	if len(s.rcpts) == 1 {
		return s.rcpts[0].Addr
	}
	return ""
}

// writeReceived prepends Postfix's Received: header.
func (s *session) writeReceived(buf *bytes.Buffer, now time.Time) {
	helo := s.helo
	buf.WriteString("Received: from ")
	buf.WriteString(helo)
	buf.WriteString(" (")
	buf.WriteString(s.c.client.name)
	buf.WriteString(" [")
	buf.WriteString(s.c.client.addr.String())
	buf.WriteString("])\r\n\tby ")
	buf.WriteString(s.svc.hostname)
	buf.WriteString(" (")
	buf.WriteString(s.svc.mailName)
	buf.WriteString(") with ")
	buf.WriteString(s.c.proto())
	buf.WriteString(" id ")
	buf.WriteString(s.id)
	if len(s.rcpts) == 1 {
		buf.WriteString("\r\n\tfor <")
		buf.WriteString(s.rcpts[0].Addr)
		buf.WriteString(">")
	}
	buf.WriteString("; ")
	buf.WriteString(mailDate(now))
	buf.WriteString("\r\n")
}

// mailDate formats a date as Postfix's mail_date: day of month space-padded.
func mailDate(t time.Time) string {
	return t.Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)")
}

// dataReadError maps a failure while reading the content to its reply; an
// error go-smtp made (size limit) is sent as it is.
func dataReadError(err error) error {
	if se, ok := err.(*smtp.SMTPError); ok {
		return se
	}
	// The client went away or timed out; the reply is never seen.
	return replyError(421, "4.4.2", "Error: "+strconv.Quote(err.Error()))
}
