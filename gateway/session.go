package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"postgate/gateway/command"
	"postgate/gateway/sasl"
	"postgate/greylist"
	"postgate/queue"
	"postgate/restrictions"
	"postgate/rules"
)

// session is the SMTP dialogue of one connection: Postfix's smtpd state
// machine on go-smtp's Handler. go-smtp reads command lines and message
// content and writes the replies; the session parses each command as
// Postfix does (gateway/command), runs the restriction stages, receives
// the message into the queue, and decides every reply, which it sends
// through reply, the one place a reply is made.
type session struct {
	svc    *service
	c      *smtp.Conn
	nc     *conn
	ctx    context.Context
	cancel context.CancelFunc
	client clientInfo
	peer   netip.Addr // the connection's own client address, whatever XCLIENT says

	helo     string // HELO/EHLO argument, "" before HELO/EHLO
	proto    string // "SMTP", or "ESMTP" after EHLO
	where    string // the command or stage the session is at, for "lost connection after X"
	stats    cmdStats
	errors   int // Postfix's error_count: failed commands and protocol errors
	junk     int // NOOP, RSET, VRFY, ETRN, HELO/EHLO so far (smtpd_junk_command_limit)
	ehloMask ehloMask
	denied   *rules.Reply // smtpd_delay_reject = no: the client was refused at connect
	hangup   bool         // a 421 or 521 reply was sent: close after it
	quit     bool
	bareLF   bool // a bare LF was seen (notes=bare_lf)
	// illPipelining: improper pipelining was seen (logged once, as Postfix).
	illPipelining bool
	xclientOK     bool // the client may send XCLIENT (smtpd_authorized_xclient_hosts)
	xforwardOK    bool
	connected     bool          // the connect stage is over (start runs again after XCLIENT)
	anvilConn     greylist.Conn // the connection as anvil counted it
	// screenReply: postscreen enforces a failed test: every RCPT gets it.
	screenReply *rules.Reply
	screenedOut bool // postscreen dropped the client: smtpd never saw it

	// SMTP AUTH (saslsession.go): the backend's per-session state, the
	// mechanism of an exchange in progress (the next line is a response),
	// and who the client authenticated as.
	saslServer           sasl.Server
	saslMech             string
	saslUser, saslMethod string

	// local: a maildrop submission (pickup.go), with no connection: a
	// reply is kept in lastReply instead of sent.
	local     bool
	lastReply *rules.Reply

	// line is the command line being handled, as received (up to a NUL):
	// smtpd_proxy_filter forwards MAIL and RCPT commands as they came.
	line string

	tls    *tlsSession      // nil until STARTTLS succeeded
	checks restrictions.Txn // defer_if_permit and HOLD/DISCARD state across stages
	txn    transaction
	seqno  int // mail transactions begun, for the policy instance attribute

	milters        milterSession // nil without milters (gateway/milter.go)
	milterRcptAddr string        // the recipient of the RCPT event, for {rcpt_*}
}

// clientInfo is what the log and the restrictions know of the client.
type clientInfo struct {
	addr    netip.Addr
	port    int    // 0 when XCLIENT said it is unavailable
	name    string // verified name or "unknown"
	reverse string // reverse (PTR) name, unverified, or "unknown"
	logPort bool   // smtpd_client_port_logging

	// Why name or reverse is "unknown".
	nameStatus, reverseStatus restrictions.PeerStatus
}

// String formats the client as Postfix does in logs and replies:
// name[addr], and name[addr]:port with smtpd_client_port_logging.
func (c clientInfo) String() string {
	s := c.name + "[" + c.address() + "]"
	if !c.logPort {
		return s
	}
	if c.port == 0 {
		return s + ":unknown"
	}
	return s + ":" + strconv.Itoa(c.port)
}

// address is the client address as Postfix writes it: "unknown" when
// XCLIENT said it is unavailable.
func (c clientInfo) address() string {
	if !c.addr.IsValid() {
		return "unknown"
	}
	return c.addr.String()
}

// transaction is the mail transaction, from MAIL to its end (Postfix's
// mail_reset and rcpt_reset clear it).
type transaction struct {
	active   bool // MAIL was accepted
	id       string
	sender   string
	fullName string // of a local submitter, for a From: cleanup adds
	ret      string
	envID    string
	size     int64 // MAIL SIZE=
	smtputf8 bool
	rcpts    []queue.Recipient
	// overshoot counts recipients refused for smtpd_recipient_limit.
	overshoot int
	xforward  xforward
	bdat      *bdatState // BDAT chunks are arriving
	bdatError bool       // a BDAT failed: skip chunks until LAST or RSET
	// Access actions for the message: PREPEND headers (above our
	// Received:), REDIRECT (the last wins) and BCC recipients.
	prepend  []string
	redirect string
	bcc      []string
	filter   string // FILTER transport:destination (the last wins)
	// spfLogged: the SPF outcome is in the mail log.
	spfLogged bool
	// For policy servers: the transaction's instance, and the size of
	// the content received (Postfix's act_size), once it is all in.
	instance string
	received int64
	// Milters: the MAIL event was sent (an ABORT ends the transaction),
	// and a milter asked to hold or discard the message.
	milterMail, milterHold, milterDiscard bool
	// smtpd_proxy_filter (proxyfilter.go): the MAIL command to forward,
	// and the connection to the filter from the first accepted RCPT.
	proxyMail string
	proxy     *proxyConn
}

// NewHandlerSession starts the session of an accepted connection.
//
// The session runs on the service runtime its connection was accepted
// with, which a reload since then does not change.
func (*service) NewHandlerSession(c *smtp.Conn) smtp.HandlerSession {
	nc, ok := c.Conn().(*conn)
	if !ok {
		panic("gateway: connection not wrapped")
	}
	s := nc.svc
	ctx, cancel := context.WithCancel(s.ctx)
	addr, port := remoteAddr(nc.Conn)
	return &session{svc: s, c: c, nc: nc, ctx: ctx, cancel: cancel, proto: "SMTP", where: "CONNECT",
		client: clientInfo{addr: addr, port: port, logPort: s.clientPortLogging}, peer: addr}
}

// Greet runs at connect: postscreen's tests when master.cf runs postscreen,
// then smtpd's: improper pipelining before the greeting, the EHLO keywords
// for this client, the client restrictions when they are not delayed, then
// the greeting.
func (s *session) Greet() {
	if s.svc.postscreen != nil && !s.screen() {
		s.screenedOut = true
		s.c.Close()
		return
	}
	s.client.name, s.client.reverse, s.client.nameStatus, s.client.reverseStatus = s.svc.lookupPeer(s.ctx, s.peer)
	s.svc.log.Logf("smtpd", "connect from %s", s.client)
	// Unlike the XCLIENT permission, XFORWARD's is decided once, for the
	// connection's real client.
	s.xforwardOK = s.svc.matchClient(s.ctx, s.svc.xforwardHosts, s.client.addr)
	if s.svc.tls.wrapped() && !s.wrapTLS() {
		s.c.Close()
		return
	}
	s.start()
	s.connected = true
	if s.hangup {
		s.c.Close()
	}
	s.nc.beginRequest(false)
}

// start begins the dialogue at connect and again after XCLIENT.
func (s *session) start() {
	s.xclientOK = s.svc.matchClient(s.ctx, s.svc.xclientHosts, s.client.addr)
	// As Postfix's smtpd, not for a client postscreen handed over: it may
	// have talked after postscreen's teaser, and postscreen judged that.
	// Nor in wrapper mode, where the client's first bytes were TLS.
	if s.svc.postscreen == nil && !s.svc.tls.wrapped() && !s.illPipelining && s.pipelinedAhead() && s.svc.forbidUnauthPipelining {
		s.reply(rules.Reply{Code: 554, DSN: "5.5.0", Text: "Error: SMTP protocol synchronization"})
		s.hangup = true
		return
	}
	if !s.connected && s.overLimit() {
		s.hangup = true
		return
	}
	mask, err := s.svc.ehloDiscard(s.ctx, s.client)
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: don't know what EHLO features to announce to %s: %v", s.client, err)
		s.localDataError()
		return
	}
	s.ehloMask = mask
	if !s.svc.delayReject {
		if v := s.check(restrictions.Connect, ""); !s.passes("CONNECT", "", v) {
			r := v.Reply
			s.denied = &r
			s.errors++
			return
		}
	}
	if r := s.milterConnect(); r != nil {
		s.reply(*r)
		return
	}
	s.reply(rules.Reply{Code: 220, Text: s.svc.banner})
}

// localDataError is Postfix's answer when a table it needs to go on fails.
func (s *session) localDataError() {
	s.svc.log.Logf("smtpd", "%s: reject: %s from %s: 421 4.3.0 %s Server local data error",
		s.idOrNoqueue(), s.where, s.client, s.svc.hostname)
	s.reply(rules.Reply{Code: 421, DSN: "4.3.0", Text: s.svc.hostname + " Server local data error"})
}

// Command handles one command line, as Postfix's smtpd_proto loop does.
func (s *session) Command(line smtp.CommandLine) {
	s.command(line)
	if s.hangup || s.quit {
		s.c.Close()
		return
	}
	if s.errors >= s.svc.limits().hardErrorLimit {
		s.svc.log.Logf("smtpd", "too many errors after %s from %s", s.where, s.client)
		s.reply(rules.Reply{Code: 421, DSN: "4.7.0", Text: s.svc.hostname + " Error: too many errors"})
		s.c.Close()
		return
	}
	s.nc.beginRequest(false)
}

func (s *session) command(line smtp.CommandLine) {
	text := line.Text
	if s.saslMech != "" {
		s.authResponse(text)
		return
	}
	if line.Truncated {
		s.svc.log.Logf("smtpd", "warning: %s: request longer than %d: %.30s...", s.client, s.svc.lineLimit, printable(text))
	}
	if line.BareLF {
		switch {
		case s.svc.bareLF == bareLFReject && !s.svc.bareLFExcluded(s.ctx, s.client.addr):
			s.logAction("reject", s.where, "bare <LF> received", "")
			s.reply(rules.Reply{Code: s.svc.bareLFCode, DSN: "5.5.2", Text: s.svc.hostname + " Error: bare <LF> received"})
			s.hangup = true
			return
		case s.svc.bareLF == bareLFNote:
			s.bareLF = true
		}
	}
	// Postfix parses C strings: a NUL byte ends the line.
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	s.line = text
	if s.svc.smtputf8 && !utf8.ValidString(text) {
		s.reply(rules.Reply{Code: 500, DSN: "5.5.2", Text: "Error: bad UTF-8 syntax"})
		s.unknownCommand()
		return
	}
	args := command.Tokenize(text)
	if len(args) == 0 {
		s.reply(rules.Reply{Code: 500, DSN: "5.5.2", Text: "Error: bad syntax"})
		s.unknownCommand()
		return
	}
	name := args[0].Text
	if s.svc.inList(s.ctx, s.svc.noopCommands, name) {
		s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: "Ok"})
		s.countJunk()
		return
	}
	idx := lookupCommand(name)
	if idx < 0 {
		s.stats[unknownStat].total++
		s.where = "UNKNOWN"
		if isHeader(name) || s.svc.inList(s.ctx, s.svc.forbiddenCommands, name) {
			s.svc.log.Logf("smtpd", "warning: non-SMTP command from %s: %.100s", s.client, escape(line.Text))
			s.reply(rules.Reply{Code: 221, DSN: "2.7.0", Text: "Error: I can break rules, too. Goodbye."})
			s.hangup = true
			return
		}
	} else {
		s.stats[idx].total++
	}
	if s.denied != nil && (idx < 0 || commands[idx].name != "QUIT") {
		if c := s.denied.Code; c == 421 || c == 521 {
			s.reply(*s.denied)
			return
		}
		s.reply(rules.Reply{Code: 503, DSN: "5.7.0", Text: "Error: access denied for " + s.client.String()})
		s.errors++
		return
	}
	if idx < 0 {
		if r := s.milterUnknown(name); r != nil {
			s.reply(*r)
		} else {
			s.reply(rules.Reply{Code: 500, DSN: "5.5.2", Text: "Error: command not recognized"})
		}
		s.errors++
		return
	}
	cmd := &commands[idx]
	if s.svc.tls.enforced() && s.tls == nil && cmd.flags&cmdPreTLS == 0 {
		s.reply(rules.Reply{Code: 530, DSN: "5.7.0", Text: "Must issue a STARTTLS command first"})
		s.errors++
		return
	}
	s.where = cmd.name
	if (s.proto != "ESMTP" || cmd.flags&cmdLast != 0) && !s.illPipelining && s.pipelinedAhead() && s.svc.forbidUnauthPipelining {
		s.reply(rules.Reply{Code: 554, DSN: "5.5.0", Text: "Error: SMTP protocol synchronization"})
		s.hangup = true
		return
	}
	if cmd.run(s, args) {
		s.stats[idx].ok++
	} else {
		s.errors++
	}
	if cmd.flags&cmdLimit != 0 {
		s.countJunk()
	}
}

// unknownCommand counts a line that is no command at all.
func (s *session) unknownCommand() {
	s.errors++
	s.where = "UNKNOWN"
	s.stats[unknownStat].total++
}

// countJunk counts a command that can be repeated without cost to the
// client: past smtpd_junk_command_limit, each is an error.
func (s *session) countJunk() {
	if s.junk > s.svc.limits().junkLimit {
		s.errors++
	}
	s.junk++
}

// pipelinedAhead reports whether the client sent more input before the
// reply it should have waited for, and logs the first time it does
// (Postfix's smtpd_flag_ill_pipelining).
func (s *session) pipelinedAhead() bool {
	ahead := s.c.Pending()
	// Inside TLS the socket holds records, not commands: only what TLS
	// has decrypted counts.
	if len(ahead) == 0 && s.tls == nil {
		ahead = s.nc.peek(100)
	}
	if len(ahead) == 0 {
		return false
	}
	s.svc.log.Logf("smtpd", "improper command pipelining after %s from %s: %s", s.where, s.client, escape(string(ahead[:min(len(ahead), 100)])))
	s.illPipelining = true
	return true
}

// ReadError ends the dialogue when no command line could be read.
func (s *session) ReadError(err error) {
	if isTimeout(err) {
		s.svc.log.Logf("smtpd", "timeout after %s from %s", s.where, s.client)
		s.reply(rules.Reply{Code: 421, DSN: "4.4.2", Text: s.svc.hostname + " Error: timeout exceeded"})
		return
	}
	s.svc.log.Logf("smtpd", "lost connection after %s from %s", s.where, s.client)
}

// Close logs the disconnect line once the connection is gone.
func (s *session) Close() {
	s.resetTransaction()
	if s.milters != nil {
		s.milters.Close()
	}
	s.cancel()
	if s.saslServer != nil {
		s.saslServer.Close()
	}
	if s.screenedOut {
		return
	}
	if s.screenReply != nil {
		// postscreen's dummy engine ends its session so.
		s.svc.log.Logf("postscreen", "DISCONNECT %s", s.screenClient())
	}
	s.disconnect()
	s.svc.log.Logf("smtpd", "disconnect from %s%s", s.client, s.stats.format(s.bareLF))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reply sends r: the one place a reply is made. As Postfix's
// smtpd_chat_reply it sleeps smtpd_error_sleep_time once the client has
// made smtpd_soft_error_limit errors, adds smtpd_reject_footer to 4xx and
// 5xx replies, turns 5xx into 4xx under soft_bounce, and hangs up after a
// 421 or 521.
func (s *session) reply(r rules.Reply) {
	if s.local {
		s.lastReply = &r
		return
	}
	if s.errors >= s.svc.limits().softErrorLimit {
		time.Sleep(s.svc.errorSleep)
	}
	if r.Code >= 400 {
		r = s.withFooter(r)
	}
	if s.svc.softBounce && r.Code/100 == 5 {
		r.Code -= 100
		if strings.HasPrefix(r.DSN, "5") {
			r.DSN = "4" + r.DSN[1:]
		}
	}
	s.c.Reply(r.Code, smtp.NoEnhancedCode, r.Lines()...)
	if r.Code == 421 || r.Code == 521 {
		s.hangup = true
	}
}

// idOrNoqueue is the queue ID for log lines, NOQUEUE before there is one.
func (s *session) idOrNoqueue() string {
	if s.txn.id == "" {
		return "NOQUEUE"
	}
	return s.txn.id
}

// logContext is the "from=<..> to=<..> proto=.. helo=<..>" tail of a log line.
func (s *session) logContext(rcpt string) string {
	var b strings.Builder
	if s.txn.active {
		b.WriteString(" from=<" + s.txn.sender + ">")
	}
	if rcpt != "" {
		b.WriteString(" to=<" + rcpt + ">")
	}
	b.WriteString(" proto=" + s.proto)
	if s.helo != "" {
		b.WriteString(" helo=<" + s.helo + ">")
	}
	return b.String()
}

// logAction writes a Postfix action line: "<id>: <what>: <STAGE> from
// <client>: <text>; from=<..> ...".
func (s *session) logAction(what, stage, text, rcpt string) {
	s.svc.log.Logf("smtpd", "%s: %s: %s from %s: %s;%s", s.idOrNoqueue(), what, stage, s.client, text, s.logContext(rcpt))
	s.svc.metrics.Action(what, stage, text)
}

// request is what the restrictions see of the session.
func (s *session) request(rcpt string) *restrictions.Request {
	serverAddr, serverPort := addrPort(s.nc.LocalAddr())
	size := s.txn.size
	if s.txn.received > 0 {
		size = s.txn.received
	}
	return &restrictions.Request{
		ClientAddr:        s.client.addr,
		PeerAddr:          s.peer,
		SASLUser:          s.saslUser,
		SASLMethod:        s.saslMethod,
		ClientName:        s.client.name,
		ReverseName:       s.client.reverse,
		ClientNameStatus:  s.client.nameStatus,
		ReverseNameStatus: s.client.reverseStatus,
		Helo:              s.helo,
		Proto:             s.proto,
		Sender:            s.txn.sender,
		Recipient:         rcpt,
		RecipientCount:    len(s.txn.rcpts),
		Macros:            func(name string) string { return s.replyValue(name, rcpt) },
		ClientPort:        s.client.port,
		ServerAddr:        serverAddr,
		ServerPort:        serverPort,
		QueueID:           s.txn.id,
		Instance:          s.txn.instance,
		Size:              size,
		Stress:            s.svc.load.stressed(),

		IllegalPipelining: s.illPipelining,
		TLS:               s.tls.restrictions(),
	}
}

// beginInstance names the mail transaction MAIL just began, as Postfix's
// smtpd does for policy servers: pid, time and a per-session counter, in hex.
func (s *session) beginInstance() {
	now := time.Now()
	s.txn.instance = fmt.Sprintf("%x.%x.%x.%x", s.svc.log.pid, now.Unix(), now.Nanosecond()/1000, s.seqno)
	s.seqno++
}

// replyValue is a session value for a reply template checked with rcpt:
// at RCPT, $recipient is the address being checked, as in Postfix.
func (s *session) replyValue(name, rcpt string) string {
	if rest, ok := strings.CutPrefix(name, "recipient"); ok && rcpt != "" {
		return addrPart(rcpt, rest)
	}
	return s.footerValue(name)
}

// check runs the restrictions of a stage.
func (s *session) check(stage restrictions.Stage, rcpt string) restrictions.Verdict {
	v := s.svc.lists.Check(s.ctx, stage, s.request(rcpt), &s.checks)
	s.logSPF()
	return v
}

// passes writes the log lines of a verdict for the command at stage (a
// reject carries its own reject line, as Postfix logs it) and, when it
// rejects, sends its reply. It reports whether the command may go on.
func (s *session) passes(stage, rcpt string, v restrictions.Verdict) bool {
	s.logEvents(stage, rcpt, v)
	if v.Decision == restrictions.Reject {
		s.reply(v.Reply)
		return false
	}
	return true
}

// needSMTPUTF8 refuses a non-ASCII address under strict_smtputf8.
var needSMTPUTF8 = rules.Reply{Code: 553, DSN: "5.6.7", Text: "Must declare SMTPUTF8 to send unicode address"}

// logEvents writes the action and warning lines a verdict carries, and
// keeps the access actions that change the message: PREPEND, REDIRECT,
// BCC and FILTER.
func (s *session) logEvents(stage, rcpt string, v restrictions.Verdict) {
	for _, e := range v.Effects {
		switch e.Action {
		case rules.ActionPrepend:
			s.txn.prepend = append(s.txn.prepend, e.Arg)
		case rules.ActionRedirect:
			s.txn.redirect = e.Arg
		case rules.ActionBCC:
			s.txn.bcc = append(s.txn.bcc, e.Arg)
		case rules.ActionFilter:
			s.txn.filter = e.Arg
		}
	}
	for _, e := range v.Log {
		switch e.Kind {
		case restrictions.LogAction:
			s.logAction(e.What, stage, e.Text, rcpt)
		case restrictions.LogWarning:
			s.svc.log.Logf("smtpd", "warning: %s", e.Text)
		default:
			s.svc.log.Logf("smtpd", "%s", e.Text)
		}
	}
}

// resetTransaction ends the mail transaction (RSET, HELO/EHLO, the end of
// a message, a refused MAIL).
func (s *session) resetTransaction() {
	if s.txn.bdat != nil && s.txn.bdat.msg != nil {
		s.txn.bdat.msg.release()
	}
	if s.txn.milterMail {
		s.milters.Abort()
	}
	if s.txn.proxy != nil {
		s.txn.proxy.close()
	}
	rcpts := s.txn.rcpts[:0]
	s.txn = transaction{rcpts: rcpts}
	s.checks.Reset()
}

// printable replaces what cannot be logged with '?', as Postfix's
// printable().
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// escape writes bytes as Postfix's escape(): printable ASCII as is (a
// backslash doubled), C escapes for \a \b \f \n \r \t \v, octal otherwise.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch k := strings.IndexByte("\a\b\f\n\r\t\v", c); {
		case c == '\\':
			b.WriteString(`\\`)
		case c >= ' ' && c < 0x7f:
			b.WriteByte(c)
		case k >= 0:
			b.WriteByte('\\')
			b.WriteByte("abfnrtv"[k])
		default:
			b.WriteByte('\\')
			b.WriteString(strconv.FormatUint(uint64(c)|0o1000, 8)[1:])
		}
	}
	return b.String()
}

// isHeader reports whether a command word looks like a message header
// name ("Subject:"), the sign of a client that is not speaking SMTP
// (Postfix's is_header).
func isHeader(word string) bool {
	n, space := 0, false
	for i := 0; i < len(word); i++ {
		switch c := word[i]; {
		case c == ':':
			return n > 0
		case c == ' ' || c == '\t':
			if n == 0 {
				return false
			}
			space = true
		case c < ' ' || c >= 0x7f || space:
			return false
		default:
			n++
		}
	}
	return false
}
