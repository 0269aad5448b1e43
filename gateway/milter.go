package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"postgate/gateway/command"
	"postgate/gateway/config"
	"postgate/milter"
	"postgate/queue"
	"postgate/rules"
)

// Milters (smtpd_milters), as Postfix's smtpd and cleanup call them: the
// SMTP events from the session, the message at the end of DATA. The
// milter package speaks the protocol; this file gives it the session's
// macros and turns its results into replies, log lines and changes of
// the message and its envelope.

// milterSession is what a session needs of its milters.
type milterSession interface {
	Connect(ctx context.Context, name string, addr netip.Addr, port int) milter.Result
	Helo(helo string) milter.Result
	Mail(sender string, args []string) milter.Result
	Rcpt(rcpt string, args []string) milter.Result
	Data() milter.Result
	Unknown(line string) milter.Result
	Message(m *milter.Message) milter.Result
	Abort()
	Close()
}

// milterConfig is a service's milter setup.
type milterConfig struct {
	milters []*milter.Milter
	// local are non_smtpd_milters, for mail from the maildrop (pickup.go).
	local []*milter.Milter
	// maps is smtpd_milter_maps: per client address, a milter list that
	// replaces smtpd_milters ("DISABLE": none).
	maps []rules.Table
	// headerChecks is milter_header_checks: header_checks for the
	// headers milters add or change.
	headerChecks []rules.Table
	opts         milter.Options
	daemonName   string // milter_macro_daemon_name
	macroV       string // milter_macro_v
}

// milterStages are the milter_*_macros parameters by stage.
var milterStages = []struct {
	stage milter.Stage
	param string
}{
	{milter.StageConnect, "milter_connect_macros"}, {milter.StageHelo, "milter_helo_macros"},
	{milter.StageMail, "milter_mail_macros"}, {milter.StageRcpt, "milter_rcpt_macros"},
	{milter.StageData, "milter_data_macros"}, {milter.StageEOH, "milter_end_of_header_macros"},
	{milter.StageEOM, "milter_end_of_data_macros"}, {milter.StageUnknown, "milter_unknown_command_macros"},
}

// newMilterConfig reads the milter parameters of a service; errors name
// the parameter.
func newMilterConfig(cfg *config.Config, tables *tableCache) (*milterConfig, error) {
	mc := &milterConfig{daemonName: cfg.Get("milter_macro_daemon_name"), macroV: cfg.Get("milter_macro_v")}
	o := milter.Options{
		ConnectTimeout: cfg.Duration("milter_connect_timeout"),
		CommandTimeout: cfg.Duration("milter_command_timeout"),
		ContentTimeout: cfg.Duration("milter_content_timeout"),
		DefaultAction:  strings.ToLower(cfg.Get("milter_default_action")),
		Protocol:       int(cfg.Int("milter_protocol")),
		SoftBounce:     cfg.Bool("soft_bounce"),
		QueueDirectory: cfg.Get("queue_directory"),
	}
	for _, st := range milterStages {
		o.Macros[st.stage] = cfg.List(st.param)
	}
	for _, item := range cfg.List("milter_macro_defaults") {
		if inner, ok := rules.StripBraces(item); ok {
			item = inner
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return nil, paramError(cfg, "milter_macro_defaults", fmt.Errorf("%q: need name=value", item))
		}
		if o.MacroDefaults == nil {
			o.MacroDefaults = map[string]string{}
		}
		o.MacroDefaults[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	if err := milter.CheckAction(o.DefaultAction); err != nil {
		return nil, paramError(cfg, "milter_default_action", err)
	}
	mc.opts = o
	var err error
	if mc.milters, err = milter.Parse(cfg.Get("smtpd_milters"), o); err != nil {
		return nil, paramError(cfg, "smtpd_milters", err)
	}
	if mc.local, err = milter.Parse(cfg.Get("non_smtpd_milters"), o); err != nil {
		return nil, paramError(cfg, "non_smtpd_milters", err)
	}
	if mc.maps, err = openMaps(cfg, "smtpd_milter_maps", tables); err != nil {
		return nil, err
	}
	if mc.headerChecks, err = openMaps(cfg, "milter_header_checks", tables); err != nil {
		return nil, err
	}
	return mc, nil
}

// forClient returns the milters of a client: smtpd_milter_maps' list for
// its address when it has one, else smtpd_milters.
func (mc *milterConfig) forClient(ctx context.Context, addr netip.Addr, warn milter.Logf) []*milter.Milter {
	if len(mc.maps) == 0 || !addr.IsValid() {
		return mc.milters
	}
	for _, t := range mc.maps {
		v, found, err := t.Lookup(ctx, addr.String())
		if err != nil {
			warn("smtpd_milter_maps lookup error for %s: %v", addr, err)
			return mc.milters
		}
		if !found {
			continue
		}
		if strings.EqualFold(strings.TrimSpace(v), "DISABLE") {
			return nil
		}
		ms, err := milter.Parse(v, mc.opts)
		if err != nil {
			warn("smtpd_milter_maps: %s: %v", addr, err)
			return mc.milters
		}
		return ms
	}
	return mc.milters
}

// milterWarn logs a milter warning as smtpd does.
func (s *session) milterWarn(format string, args ...any) {
	s.svc.log.Logf("smtpd", "warning: "+format, args...)
}

// milterConnect opens the session's milters (again after XCLIENT) and
// runs the connect event. It returns the greeting when the milters
// refuse the connection: Postfix greets "554 <myhostname> ESMTP not
// accepting connections" after a 5xx and hangs up with "421 <myhostname>
// Service unavailable - try again later" after a 421; a 4xx reply is kept
// for the commands that follow, behind a normal greeting.
func (s *session) milterConnect() *rules.Reply {
	if s.milters != nil {
		s.milters.Close()
		s.milters = nil
	}
	mc := s.svc.milters
	if mc == nil {
		return nil
	}
	ms := mc.forClient(s.ctx, s.client.addr, s.milterWarn)
	if len(ms) == 0 {
		return nil
	}
	s.milters = milter.NewSession(ms, s.milterMacro, s.milterWarn)
	r := s.milters.Connect(s.ctx, s.client.name, s.client.addr, s.client.port)
	reply, ok := s.milterResult("CONNECT", "", r)
	switch {
	case ok:
		return nil
	case reply.Code/100 == 5:
		s.errors++
		return &rules.Reply{Code: 554, Text: s.svc.hostname + " ESMTP not accepting connections"}
	case reply.Code == 421:
		return &rules.Reply{Code: 421, Text: s.svc.hostname + " Service unavailable - try again later"}
	}
	return nil
}

// localMilters runs non_smtpd_milters' envelope events for a message from
// the maildrop, as Postfix's cleanup emulates them for local mail: a
// connection from localhost [127.0.0.1], HELO localhost, the sender, each
// recipient and DATA; the content events follow in finishMessage. It
// returns the refusal, if a milter refuses.
func (s *session) localMilters() *rules.Reply {
	mc := s.svc.milters
	if mc == nil || len(mc.local) == 0 {
		return nil
	}
	s.milters = milter.NewSession(mc.local, s.milterMacro, s.milterWarn)
	s.helo = "localhost"
	type step struct {
		stage, rcpt string
		event       func() milter.Result
	}
	steps := []step{
		{"CONNECT", "", func() milter.Result { return s.milters.Connect(s.ctx, "localhost", s.client.addr, 0) }},
		{"HELO", "", func() milter.Result { return s.milters.Helo("localhost") }},
		{"MAIL", "", func() milter.Result { return s.milters.Mail(s.txn.sender, nil) }},
	}
	for _, r := range s.txn.rcpts {
		steps = append(steps, step{"RCPT", r.Addr, func() milter.Result {
			s.milterRcptAddr = r.Addr
			defer func() { s.milterRcptAddr = "" }()
			return s.milters.Rcpt(r.Addr, nil)
		}})
	}
	steps = append(steps, step{"DATA", "", s.milters.Data})
	for _, st := range steps {
		if s.txn.milterDiscard {
			return nil
		}
		if reply, ok := s.milterResult(st.stage, st.rcpt, st.event()); !ok {
			return &reply
		}
	}
	return nil
}

// milterResult logs a milter's result at stage as Postfix's smtpd does
// and keeps a HOLD or DISCARD for the message. ok is true when the command
// may go on; otherwise reply is what the client gets.
func (s *session) milterResult(stage, rcpt string, r milter.Result) (reply rules.Reply, ok bool) {
	switch r.Action {
	case milter.Continue:
		return reply, true
	case milter.Hold:
		s.txn.milterHold = true
		s.logAction("milter-hold", stage, "milter triggers HOLD action", rcpt)
		return reply, true
	case milter.Discard:
		s.txn.milterDiscard = true
		s.logAction("milter-discard", stage, "milter triggers DISCARD action", rcpt)
		return reply, true
	}
	reply = parseMilterReply(r.Reply)
	s.logAction("milter-reject", stage, reply.String(), rcpt)
	return reply, false
}

// milterEvent runs one SMTP-stage event unless the message is already
// discarded (Postfix skips the milters then), and answers a refusal. It
// reports whether the command may go on.
func (s *session) milterEvent(stage, rcpt string, event func() milter.Result) bool {
	if s.milters == nil || s.txn.milterDiscard {
		return true
	}
	reply, ok := s.milterResult(stage, rcpt, event())
	if !ok {
		s.reply(reply)
	}
	return ok
}

// milterHelo is the HELO/EHLO event: as in Sendmail, only a 421 refuses
// the command (ok false); other replies stay with the milter for later
// commands, and refused reports a 5xx one.
func (s *session) milterHelo(helo string) (ok, refused bool) {
	if s.milters == nil {
		return true, false
	}
	saved := s.helo
	s.helo = helo // logged with the new name, as Postfix
	reply, ok := s.milterResult(s.where, "", s.milters.Helo(helo))
	s.helo = saved
	if !ok && reply.Code == 421 {
		s.reply(reply)
		return false, false
	}
	return true, !ok && reply.Code/100 == 5
}

// milterMail is the MAIL event, with the sender and the ESMTP parameters.
func (s *session) milterMail(args []command.Token) bool {
	return s.milterEvent("MAIL", "", func() milter.Result {
		return s.milters.Mail(s.txn.sender, tokenTexts(args))
	})
}

// milterRcpt is the RCPT event of an accepted recipient.
func (s *session) milterRcpt(to string, args []command.Token) bool {
	s.milterRcptAddr = to
	defer func() { s.milterRcptAddr = "" }()
	return s.milterEvent("RCPT", to, func() milter.Result {
		return s.milters.Rcpt(to, tokenTexts(args))
	})
}

// milterData is the DATA event (and the first BDAT's); the refusal is
// returned for the caller to send.
func (s *session) milterData() *rules.Reply {
	if s.milters == nil || s.txn.milterDiscard {
		return nil
	}
	reply, ok := s.milterResult("DATA", s.onlyRecipient(), s.milters.Data())
	if ok {
		return nil
	}
	return &reply
}

// milterUnknown is the unknown-command event; a refusal replaces Postfix's
// "500 5.5.2 Error: command not recognized".
func (s *session) milterUnknown(line string) *rules.Reply {
	if s.milters == nil {
		return nil
	}
	reply, ok := s.milterResult(s.where, "", s.milters.Unknown(line))
	if ok {
		return nil
	}
	return &reply
}

func tokenTexts(args []command.Token) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a.Text
	}
	return out
}

// parseMilterReply reads a milter's SMTP reply ("550 5.7.1 text", lines
// separated by CRLF) into a Reply.
func parseMilterReply(text string) rules.Reply {
	lines := strings.Split(text, "\r\n")
	code, _ := strconv.Atoi(lines[0][:3])
	var r rules.Reply
	r.Code = code
	r.DSN, _ = rules.SplitDSN(lines[0][min(4, len(lines[0])):])
	texts := make([]string, len(lines))
	for i, l := range lines {
		t := ""
		if len(l) > 4 {
			t = l[4:]
		}
		if r.DSN != "" {
			t = strings.TrimPrefix(strings.TrimPrefix(t, r.DSN), " ")
		}
		texts[i] = t
	}
	r.Text = strings.Join(texts, "\n")
	return r
}

// milterOutcome is what the end-of-message stage decided.
type milterOutcome int

const (
	milterQueue   milterOutcome = iota // go on to the queue
	milterRefused                      // refused: the client has its reply
	milterDiscard                      // accept and throw away
)

// milterMessage gives the message to the milters, as Postfix's cleanup
// does once the message is in: each milter sees the header and body as
// the ones before it left them. The milters' changes make a new message
// (returned for the caller to release), their envelope changes go to the
// transaction, a quarantine to held.
func (s *session) milterMessage(msg *assembly, arrival time.Time, held *bool) (*assembly, milterOutcome) {
	if s.milters == nil || msg.spoolErr != nil {
		return nil, milterQueue
	}
	if s.txn.milterDiscard {
		return nil, milterDiscard
	}
	content, size := msg.content()
	rcpts := make([]string, len(s.txn.rcpts))
	for i, r := range s.txn.rcpts {
		rcpts[i] = r.Addr
	}
	m, err := milter.ParseMessage(content, size, s.txn.sender, rcpts)
	if err != nil {
		s.svc.log.Logf("cleanup", "warning: %s: milter: reading the message: %v", s.txn.id, err)
		s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
		return nil, milterRefused
	}
	r := s.milters.Message(m)
	for _, w := range m.Warnings {
		s.svc.log.Logf("cleanup", "warning: %s: %s", s.txn.id, w)
	}
	switch r.Action {
	case milter.Reject:
		// Logged without the code, as cleanup does.
		s.logCleanupMilter("milter-reject", r.Reply[4:])
		s.reply(parseMilterReply(r.Reply))
		return nil, milterRefused
	case milter.Discard:
		s.logCleanupMilter("milter-discard", "milter triggers DISCARD action")
		return nil, milterDiscard
	case milter.Hold:
		text := "milter triggers HOLD action"
		if m.Quarantine != "" {
			text += " (quarantine: " + m.Quarantine + ")"
		}
		s.logCleanupMilter("milter-hold", text)
		*held = true
	}
	if len(s.svc.milters.headerChecks) > 0 {
		switch res, err := s.milterHeaderChecks(m); {
		case err != nil:
			s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"})
			return nil, milterRefused
		case res.reject != nil:
			s.reply(*res.reject)
			return nil, milterRefused
		case res.discard:
			return nil, milterDiscard
		default:
			*held = *held || res.hold
			if res.redirect != "" {
				s.txn.redirect = res.redirect
			}
			s.txn.bcc = append(s.txn.bcc, res.bcc...)
			if res.filter != "" {
				s.txn.filter = res.filter
			}
		}
	}
	// Our Received: names the recipients as received, as Postfix's does.
	var edited *assembly
	if m.Changed {
		edited = s.newAssembly(arrival)
		if _, err := edited.readFrom(m.Reader(), 0); err != nil {
			edited.fail(err)
		}
	}
	s.milterEnvelope(m)
	return edited, milterQueue
}

// milterHeaderChecks applies milter_header_checks to the headers the
// milters added or changed, with header_checks' actions (cleanup_act) and
// log lines; PREPEND is not available there, as in Postfix. IGNORE, STRIP
// and REPLACE edit m.
func (s *session) milterHeaderChecks(m *milter.Message) (checkResult, error) {
	sc := &checkScan{s: s, c: &s.svc.checks}
	for i, f := range m.Header {
		if !f.Added {
			continue
		}
		// The key as the MIME parser makes it: lines joined by LF.
		key := f.Name + ":" + strings.ReplaceAll(f.Value, "\r\n", "\n")
		raw := []byte(f.Name + ":" + f.Value + "\r\n")
		// The header's index stands for its offset in the edits.
		if err := sc.lookup(s.svc.milters.headerChecks, "milter_header_checks", "header", key, raw, int64(i)); err != nil {
			return sc.res, err
		}
	}
	var kept []milter.Field
	next := 0
	for i, f := range m.Header {
		for next < len(sc.res.edits) && sc.res.edits[next].off < int64(i) {
			next++
		}
		if next == len(sc.res.edits) || sc.res.edits[next].off != int64(i) {
			kept = append(kept, f)
			continue
		}
		e := sc.res.edits[next]
		if e.n == 0 {
			s.svc.log.Logf("cleanup", "warning: %s: milter_header_checks: PREPEND is not supported for headers from milters", s.txn.id)
			kept = append(kept, f)
			continue
		}
		m.Changed = true
		if len(e.insert) > 0 {
			name, value, _ := strings.Cut(strings.TrimSuffix(string(e.insert), "\r\n"), ":")
			kept = append(kept, milter.Field{Name: name, Value: value})
		}
	}
	m.Header = kept
	return sc.res, nil
}

// milterEnvelope takes the milters' sender and recipient changes into the
// transaction: recipients that stay keep their DSN parameters.
func (s *session) milterEnvelope(m *milter.Message) {
	s.txn.sender = m.Sender
	used := make([]bool, len(s.txn.rcpts))
	var rcpts []queue.Recipient
	for _, addr := range m.Recipients {
		r := queue.Recipient{Addr: addr}
		for i, old := range s.txn.rcpts {
			if !used[i] && old.Addr == addr {
				r, used[i] = old, true
				break
			}
		}
		rcpts = append(rcpts, r)
	}
	s.txn.rcpts = rcpts
}

// logCleanupMilter writes cleanup's line for a milter's decision on the
// message: "ID: milter-reject: END-OF-MESSAGE from name[addr]: text;
// from=<..> to=<..> proto=ESMTP helo=<..>".
func (s *session) logCleanupMilter(action, text string) {
	var b strings.Builder
	b.WriteString(s.txn.id + ": " + action + ": END-OF-MESSAGE from " + s.client.name + "[" + s.client.address() + "]: " + text + ";")
	b.WriteString(" from=<" + s.txn.sender + ">")
	if n := len(s.txn.rcpts); n > 0 {
		b.WriteString(" to=<" + s.txn.rcpts[n-1].Addr + ">")
	}
	b.WriteString(" proto=" + s.proto)
	if s.helo != "" {
		b.WriteString(" helo=<" + s.helo + ">")
	}
	s.svc.log.Logf("cleanup", "%s", b.String())
}

// milterMacro is the value of a macro now, as Postfix's smtpd_milter_eval
// gives it; ok is false for a macro it has no value for.
func (s *session) milterMacro(name string) (string, bool) {
	mc := s.svc.milters
	switch name {
	case "j":
		return s.svc.hostname, true
	case "{daemon_name}":
		return mc.daemonName, true
	case "v":
		return mc.macroV, true
	case "_":
		v := s.client.reverse + " [" + s.client.address() + "]"
		if !strings.EqualFold(s.client.name, s.client.reverse) {
			v += " (may be forged)"
		}
		return v, true
	case "{client_addr}":
		return s.client.address(), true
	case "{client_port}":
		return strconv.Itoa(s.client.port), true
	case "{client_name}":
		return s.client.name, true
	case "{client_ptr}":
		return s.client.reverse, true
	case "{daemon_addr}", "{daemon_port}":
		if s.nc == nil { // mail from the maildrop: no connection
			return "", false
		}
		addr, port := addrPort(s.nc.LocalAddr())
		if name == "{daemon_port}" {
			return strconv.Itoa(port), true
		}
		return addr.String(), addr.IsValid()
	case "i":
		return s.txn.id, s.txn.id != ""
	case "{auth_type}":
		return s.saslMethod, s.saslUser != ""
	case "{auth_authen}":
		return s.saslUser, s.saslUser != ""
	case "{mail_addr}", "{mail_host}", "{mail_mailer}":
		if !s.txn.active {
			return "", false
		}
		return s.addrMacro(name[6:len(name)-1], s.txn.sender)
	case "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}":
		if s.milterRcptAddr == "" {
			return "", false
		}
		return s.addrMacro(name[6:len(name)-1], s.milterRcptAddr)
	}
	return s.tlsMacro(name)
}

// addrMacro is the address, next hop or transport of an address, as
// Postfix resolves it for {mail_*} and {rcpt_*}.
func (s *session) addrMacro(what, addr string) (string, bool) {
	if addr == "" && what == "addr" {
		return "", true
	}
	res, err := s.svc.route.Resolve(s.ctx, addr)
	if err != nil {
		return "", false
	}
	switch what {
	case "addr":
		return res.Address, true
	case "host":
		return res.Nexthop, true
	}
	return res.Transport, true
}
