package milter

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// Action is what a milter event amounts to for the SMTP session.
type Action int

const (
	Continue Action = iota
	// Reject: the command (or message) gets Result.Reply, a 4xx or 5xx
	// SMTP reply ("550 5.7.1 Command rejected"; lines separated by CRLF).
	Reject
	// Discard: the message is accepted and thrown away.
	Discard
	// Hold: the message goes to the hold queue; the dialogue goes on.
	Hold
)

// Result is the outcome of an event over the milters in order: the first
// milter that does more than continue decides it.
type Result struct {
	Action Action
	Reply  string // Reject: the SMTP reply
}

// Macros returns the value of a macro ("j", "{client_addr}") now; ok is
// false when the MTA has none, and then it is not sent (unless
// milter_macro_defaults gives one).
type Macros func(name string) (value string, ok bool)

// Logf writes a warning line to the mail log ("warning: " is added by the
// caller's format).
type Logf func(format string, args ...any)

// Session is the milter side of one SMTP connection: one milter session
// per milter, connected at the connect event.
type Session struct {
	conns  []*conn
	macros Macros
	warn   Logf
}

// milter states, as Postfix's milter8 keeps them.
type state int

const (
	stateClosed    state = iota // not connected yet
	stateEnvelope               // connected, events flow
	stateAcceptCon              // accepted the connection: no more events
	stateAcceptMsg              // accepted the message: no more events until its end
	stateRejectCon              // rejected the connection: every event gets defReply
	stateError                  // failed: every event gets defReply
)

// conn is one milter's session.
type conn struct {
	m     *Milter
	s     *gomilter.ClientSession
	state state
	// defReply is Postfix's persistent reply: "" (continue), "H" (hold)
	// or an SMTP reply (a 421 hangs up), given to every event once the
	// milter rejected the connection or failed.
	defReply string
	// quarantine is the reason of a quarantine request in this message.
	quarantine string
}

// NewSession prepares the milters for one SMTP connection; nothing is
// dialled before Connect.
func NewSession(milters []*Milter, macros Macros, warn Logf) *Session {
	s := &Session{macros: macros, warn: warn}
	for _, m := range milters {
		s.conns = append(s.conns, &conn{m: m})
	}
	return s
}

// The offered masks: every modification postgate applies, and every event
// and no-reply flag a milter may choose. Not offered: SMFIP_SKIP,
// SMFIP_RCPT_REJ, SMFIP_HDR_LEADSPC and add-recipient-with-parameters,
// which go-milter v0.5.0 cannot carry.
const (
	offerActions = gomilter.OptAddHeader | gomilter.OptChangeBody | gomilter.OptAddRcpt |
		gomilter.OptRemoveRcpt | gomilter.OptChangeHeader | gomilter.OptQuarantine |
		gomilter.OptChangeFrom | gomilter.OptSetSymList
	offerEvents = gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom |
		gomilter.OptNoRcptTo | gomilter.OptNoBody | gomilter.OptNoHeaders | gomilter.OptNoEOH |
		gomilter.OptNoHeaderReply | gomilter.OptNoUnknown | gomilter.OptNoData |
		gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
		gomilter.OptNoRcptReply | gomilter.OptNoDataReply | gomilter.OptNoUnknownReply |
		gomilter.OptNoEOHReply | gomilter.OptNoBodyReply
)

// connect opens the milter's session (milter_connect_timeout covers the
// dial and the negotiation); a failure takes the default action.
func (c *conn) connect(ctx context.Context, warn Logf) {
	o := c.m.opts
	events := offerEvents
	if o.Protocol > 0 && o.Protocol < 6 {
		// The flags an older protocol version knows.
		events &= 0x7f
	}
	dialer := &ctxDialer{ctx: ctx, d: net.Dialer{Timeout: o.ConnectTimeout}}
	client := gomilter.NewClientWithOptions(c.m.network, c.m.address, gomilter.ClientOptions{
		Dialer:       dialer,
		ReadTimeout:  o.ConnectTimeout,
		WriteTimeout: o.ConnectTimeout,
		ActionMask:   offerActions,
		ProtocolMask: events,
	})
	s, err := client.Session()
	if err != nil {
		if dialer.failed {
			warn("connect to Milter service %s: %s", c.m.Name, errText(err))
		} else {
			warn("milter %s: can't read SMFIC_OPTNEG reply packet header: %s", c.m.Name, errText(err))
		}
		if dialer.conn != nil {
			dialer.conn.Close()
		}
		c.fail(false)
		return
	}
	s.SetReadTimeout(o.CommandTimeout)
	s.SetWriteTimeout(o.CommandTimeout)
	c.s, c.state = s, stateEnvelope
}

// ctxDialer dials with the session's context, and remembers whether the
// dial itself failed (for the warning) and the connection (to close it
// when the negotiation fails: go-milter leaves it open then).
type ctxDialer struct {
	ctx    context.Context
	d      net.Dialer
	failed bool
	conn   net.Conn
}

func (d *ctxDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := d.d.DialContext(d.ctx, network, addr)
	d.failed, d.conn = err != nil, c
	return c, err
}

// errText is an error as Postfix's %m words it.
func errText(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "Connection timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "Connection refused"
	case errors.Is(err, syscall.ENOENT):
		return "No such file or directory"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "Connection reset by peer"
	}
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Timeout() {
		return "Connection timed out"
	}
	return err.Error()
}

// fail ends the milter's session after an error: from now on every event
// gets the default action's reply (Postfix 3.11's, which knows shutdown).
// A configuration error (a malformed reply) gets Postfix's "Server
// configuration problem" instead of the reject and tempfail replies.
func (c *conn) fail(configError bool) {
	if c.s != nil {
		c.s.Close()
		c.s = nil
	}
	c.state = stateError
	switch a := c.m.opts.DefaultAction; {
	case a == ActionAccept:
		c.defReply = ""
	case a == ActionQuarantine:
		c.defReply = "H"
	case a == ActionShutdown && configError:
		c.defReply = "421 4.3.5 Server configuration problem - try again later"
	case a == ActionShutdown:
		c.defReply = "421 4.7.1 Service unavailable - try again later"
	case configError:
		c.defReply = "451 4.3.5 Server configuration problem - try again later"
	case a == ActionReject:
		c.defReply = "550 5.5.0 Service unavailable"
	default:
		c.defReply = "451 4.7.1 Service unavailable - try again later"
	}
}

// sendMacros sends the macros of stage: those the milter asked for in
// negotiation, else the configured list; only those with a value.
func (s *Session) sendMacros(c *conn, stage Stage) error {
	return s.sendMacrosCode(c, stage, macroCode[stage])
}

// sendMacrosCode sends stage's macros for the command code.
func (s *Session) sendMacrosCode(c *conn, stage Stage, code gomilter.Code) error {
	names := c.m.opts.Macros[stage]
	if stage != StageUnknown {
		if asked, ok := c.s.RequestedMacros(protoStage[stage]); ok {
			names = asked
		}
	}
	var kv []string
	for _, name := range names {
		v, ok := s.macros(name)
		if !ok {
			v, ok = c.m.opts.MacroDefaults[name]
		}
		if ok {
			kv = append(kv, name, v)
		}
	}
	if len(kv) == 0 {
		return nil
	}
	return c.s.Macros(code, kv...)
}

// event runs one SMTP event over the milters in order, skipping those in
// a state that takes no events (skip), until one decides.
func (s *Session) event(stage Stage, skip func(state) bool, send func(*gomilter.ClientSession) (*gomilter.Action, error)) Result {
	for _, c := range s.conns {
		var reply string
		switch {
		case c.state == stateError || c.state == stateRejectCon || c.state == stateAcceptCon || skip(c.state):
			reply = c.defReply
		default:
			reply = s.call(c, stage, send)
		}
		if r := result(c, reply); r.Action != Continue {
			return r
		}
	}
	return Result{}
}

// call sends one event to a milter and turns its answer into Postfix's
// reply string.
func (s *Session) call(c *conn, stage Stage, send func(*gomilter.ClientSession) (*gomilter.Action, error)) string {
	if err := s.sendMacros(c, stage); err != nil {
		s.warn("milter %s: can't send SMFIC_MACRO: %s", c.m.Name, errText(err))
		c.fail(false)
		return c.defReply
	}
	act, err := send(c.s)
	if err != nil {
		s.warn("milter %s: %s", c.m.Name, describe(eventNames[macroCode[stage]], err))
		c.fail(isProtocolError(err))
		return c.defReply
	}
	return s.reply(c, stage, act)
}

// reply is Postfix's handling of a milter's decision for an event.
func (s *Session) reply(c *conn, stage Stage, act *gomilter.Action) string {
	connStage := stage == StageConnect || stage == StageHelo
	switch act.Code {
	case gomilter.ActContinue:
		return c.defReply
	case gomilter.ActAccept:
		if connStage {
			c.state = stateAcceptCon
		} else {
			c.state = stateAcceptMsg
		}
		return c.defReply
	case gomilter.ActDiscard:
		if connStage {
			s.warn("milter %s: DISCARD action is not allowed for connect or helo", c.m.Name)
			return c.defReply
		}
		c.state = stateAcceptMsg
		return "D"
	case gomilter.ActReject:
		return c.rejectWith(connStage, "550 5.7.1 Command rejected")
	case gomilter.ActTempFail:
		return c.rejectWith(connStage, "451 4.7.1 Service unavailable - try again later")
	case gomilter.ActReplyCode:
		text, ok := replyText(act.SMTPCode, act.SMTPText, c.m.opts.SoftBounce)
		if !ok {
			s.warn("milter %s: malformed reply: %d %s", c.m.Name, act.SMTPCode, act.SMTPText)
			c.fail(true)
			return c.defReply
		}
		return c.rejectWith(connStage, text)
	}
	s.warn("milter %s: unexpected reply code %q", c.m.Name, rune(act.Code))
	c.fail(true)
	return c.defReply
}

// rejectWith rejects the command; at connect or HELO the reply stays for
// the rest of the connection, as in Sendmail.
func (c *conn) rejectWith(connStage bool, reply string) string {
	if connStage {
		c.state, c.defReply = stateRejectCon, reply
	}
	return reply
}

// replyText checks and rewrites a SMFIR_REPLYCODE reply as Postfix does: a
// 4xx or 5xx code, an enhanced code of the same class if any; "%%" is
// "%", a lone "%" goes; soft_bounce makes 5xx 4xx. Multi-line replies
// (lines separated by CRLF) are kept.
func replyText(code int, text string, softBounce bool) (string, bool) {
	if code < 400 || code > 599 {
		return "", false
	}
	reply := strconv.Itoa(code) + " " + text
	if text != "" && text[0] >= '0' && text[0] <= '9' && text[0] != reply[0] {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(reply); i++ {
		if reply[i] == '%' {
			i++
			if i == len(reply) {
				break
			}
		}
		b.WriteByte(reply[i])
	}
	reply = b.String()
	if softBounce {
		lines := strings.Split(reply, "\r\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "5") {
				l = "4" + l[1:]
				if len(l) > 4 && l[4] == '5' {
					l = l[:4] + "4" + l[5:]
				}
				lines[i] = l
			}
		}
		reply = strings.Join(lines, "\r\n")
	}
	return reply, true
}

// result turns Postfix's reply string into a Result.
func result(c *conn, reply string) Result {
	switch {
	case reply == "":
		return Result{}
	case reply == "H":
		return Result{Action: Hold}
	case reply == "D":
		return Result{Action: Discard}
	}
	return Result{Action: Reject, Reply: reply}
}

// eventNames are the protocol's names of the events, for warnings.
var eventNames = map[gomilter.Code]string{
	gomilter.CodeConn: "SMFIC_CONNECT", gomilter.CodeHelo: "SMFIC_HELO", gomilter.CodeMail: "SMFIC_MAIL",
	gomilter.CodeRcpt: "SMFIC_RCPT", gomilter.CodeData: "SMFIC_DATA", gomilter.CodeUnknown: "SMFIC_UNKNOWN",
	gomilter.CodeHeader: "SMFIC_HEADER", gomilter.CodeEOH: "SMFIC_EOH", gomilter.CodeBody: "SMFIC_BODY",
	gomilter.CodeEOB: "SMFIC_BODYEOB",
}

// describe words an event's error for the warning line, as Postfix's
// milter8 does ("can't read SMFIC_BODYEOB reply packet header: Connection
// timed out").
func describe(event string, err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) || isTimeoutErr(err) {
		return "can't read " + event + " reply packet header: Connection timed out"
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || isEOF(err) {
		return "can't read " + event + " reply packet header: " + errText(err)
	}
	return event + ": " + err.Error()
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isProtocolError: the milter answered, but with something that is not a
// valid reply (a configuration problem, as Postfix sees it), rather than
// failing to answer.
func isProtocolError(err error) bool {
	var ne net.Error
	return !errors.As(err, &ne) && !isEOF(err) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE)
}

// Connect is the connect event: the milters are dialled and negotiated
// with, in order, then told of the client (name "unknown" is sent as
// "[addr]", as Postfix does). A 5xx result makes the greeting "554
// <myhostname> ESMTP not accepting connections"; Postfix's session answers.
func (s *Session) Connect(ctx context.Context, name string, addr netip.Addr, port int) Result {
	for _, c := range s.conns {
		if c.state == stateClosed {
			c.connect(ctx, s.warn)
		}
	}
	host := name
	if name == "unknown" && addr.IsValid() {
		host = "[" + addr.String() + "]"
	}
	family, a := gomilter.FamilyUnknown, ""
	if addr.IsValid() {
		family, a = gomilter.FamilyInet, addr.String()
		if addr.Is6() && !addr.Is4In6() {
			family = gomilter.FamilyInet6
		}
	}
	return s.event(StageConnect, never, func(cs *gomilter.ClientSession) (*gomilter.Action, error) {
		return cs.Conn(host, family, uint16(port), a)
	})
}

func never(state) bool { return false }

// Helo is the HELO/EHLO event.
func (s *Session) Helo(helo string) Result {
	return s.event(StageHelo, never, func(cs *gomilter.ClientSession) (*gomilter.Action, error) {
		return cs.Helo(helo)
	})
}

// Mail is the MAIL event: the sender without <> and the ESMTP parameters.
func (s *Session) Mail(sender string, args []string) Result {
	for _, c := range s.conns {
		if c.state == stateAcceptMsg {
			c.state = stateEnvelope
		}
	}
	return s.event(StageMail, never, func(cs *gomilter.ClientSession) (*gomilter.Action, error) {
		return cs.Mail(sender, args)
	})
}

func acceptedMsg(st state) bool { return st == stateAcceptMsg }

// Rcpt is the RCPT event for an accepted recipient.
func (s *Session) Rcpt(rcpt string, args []string) Result {
	return s.event(StageRcpt, acceptedMsg, func(cs *gomilter.ClientSession) (*gomilter.Action, error) {
		return cs.Rcpt(rcpt, args)
	})
}

// Data is the DATA event (milter_data_macros), before the 354 reply.
func (s *Session) Data() Result {
	return s.event(StageData, acceptedMsg, func(cs *gomilter.ClientSession) (*gomilter.Action, error) {
		return cs.Data()
	})
}

// Unknown is an unknown command's event, with the command line.
func (s *Session) Unknown(line string) Result {
	return s.event(StageUnknown, acceptedMsg, func(cs *gomilter.ClientSession) (*gomilter.Action, error) {
		return cs.Unknown(line)
	})
}

// Abort ends the mail transaction for the milters (RSET, a new HELO, the
// end of a message that was not sent to them).
func (s *Session) Abort() {
	for _, c := range s.conns {
		if c.state == stateEnvelope || c.state == stateAcceptMsg {
			if err := c.s.Abort(); err != nil {
				s.warn("milter %s: can't send SMFIC_ABORT: %s", c.m.Name, errText(err))
				c.fail(false)
				continue
			}
			c.state = stateEnvelope
		}
		c.quarantine = ""
	}
}

// Close ends the milter sessions when the SMTP connection ends.
func (s *Session) Close() {
	for _, c := range s.conns {
		if c.s != nil {
			c.s.Close()
			c.s = nil
		}
		c.state = stateClosed
	}
}

// timeouts sets both timeouts of a milter session.
func (c *conn) timeouts(d time.Duration) {
	c.s.SetReadTimeout(d)
	c.s.SetWriteTimeout(d)
}
