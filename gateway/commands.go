package gateway

import (
	"context"
	"net/netip"
	"strings"

	"postgate/gateway/command"
	"postgate/restrictions"
	"postgate/rules"
)

// cmdFlags are the properties of a command in Postfix's command table.
type cmdFlags uint8

const (
	// cmdLimit: repeating it costs the client nothing, so it counts toward
	// smtpd_junk_command_limit.
	cmdLimit cmdFlags = 1 << iota
	// cmdLast: RFC 2920 wants it last in a pipelined group.
	cmdLast
	// cmdPreTLS: allowed before STARTTLS when TLS is enforced.
	cmdPreTLS
)

// smtpCommand is one entry of the command table. run answers the command
// and reports whether it succeeded (a failure counts as an error).
type smtpCommand struct {
	name  string
	flags cmdFlags
	run   func(s *session, args []command.Token) bool
}

const numCommands = 15

// commands is Postfix's smtpd command table, in its order (the order of
// the disconnect statistics). As in Debian's Postfix 3.7 there is no HELP
// (Postfix 3.8 added one): it is an unknown command.
var commands = [numCommands]smtpCommand{
	{"HELO", cmdLimit | cmdLast | cmdPreTLS, (*session).heloCmd},
	{"EHLO", cmdLimit | cmdLast | cmdPreTLS, (*session).ehloCmd},
	{"XCLIENT", cmdPreTLS, (*session).xclient},
	{"XFORWARD", 0, (*session).xforwardCmd},
	{"STARTTLS", cmdPreTLS, (*session).starttls},
	{"AUTH", 0, (*session).auth},
	{"MAIL", 0, (*session).mail},
	{"RCPT", 0, (*session).rcpt},
	{"DATA", cmdLast, (*session).data},
	{"BDAT", 0, (*session).bdat},
	{"RSET", cmdLimit, (*session).rset},
	{"NOOP", cmdLimit | cmdLast | cmdPreTLS, (*session).noop},
	{"VRFY", cmdLimit | cmdLast, (*session).vrfy},
	{"ETRN", cmdLimit, (*session).etrn},
	{"QUIT", cmdPreTLS, (*session).quitCmd},
}

func lookupCommand(name string) int {
	for i := range commands {
		if strings.EqualFold(name, commands[i].name) {
			return i
		}
	}
	return -1
}

func (s *session) heloCmd(args []command.Token) bool { return s.hello(args, false) }
func (s *session) ehloCmd(args []command.Token) bool { return s.hello(args, true) }

// hello answers HELO and EHLO: the restrictions when they are not delayed,
// then a fresh transaction and the greeting (EHLO: the keyword list).
func (s *session) hello(args []command.Token, ehlo bool) bool {
	verb := "HELO"
	if ehlo {
		verb = "EHLO"
	}
	if len(args) < 2 {
		s.reply(rules.Reply{Code: 501, Text: "Syntax: " + verb + " hostname"})
		return false
	}
	name := joinArgs(args[1:])
	if !s.svc.delayReject {
		req := s.request("")
		req.Helo = name
		stage := restrictions.Helo
		if ehlo {
			stage = restrictions.Ehlo
		}
		if !s.passes(verb, "", s.svc.lists.Check(s.ctx, stage, req, &s.checks)) {
			return false
		}
	}
	ok, refused := s.milterHelo(name)
	if !ok {
		return false
	}
	if refused && ehlo {
		// As Postfix: after a milter's 5xx, EHLO announces only
		// ENHANCEDSTATUSCODES (the refusal comes with MAIL).
		saved := s.ehloMask
		s.ehloMask |= ^ehloEnhancedStatusCodes
		defer func() { s.ehloMask = saved }()
	}
	s.resetTransaction()
	s.helo = neuter(printable(name))
	if !ehlo {
		// HELO after EHLO keeps ESMTP: the pipelining checks depend on it.
		if s.proto != "ESMTP" {
			s.proto = "SMTP"
		}
		s.reply(rules.Reply{Code: 250, Text: s.svc.hostname})
		return true
	}
	s.proto = "ESMTP"
	if m := s.ehloMask; m&ehloEnhancedStatusCodes == 0 && m != 0 && m&ehloSilent == 0 {
		s.svc.log.Logf("smtpd", "discarding EHLO keywords: %s", m)
	}
	s.reply(rules.Reply{Code: 250, Text: s.svc.hostname + "\n" + strings.Join(s.ehloKeywords(), "\n")})
	return true
}

// joinArgs is Postfix's collapse_args: the words after the command, one
// space apart.
func joinArgs(args []command.Token) string {
	words := make([]string, len(args))
	for i, a := range args {
		words[i] = a.Text
	}
	return strings.Join(words, " ")
}

// neuter replaces the characters Postfix will not keep in a HELO name.
func neuter(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" <>()\\\";@", r) {
			return '?'
		}
		return r
	}, s)
}

func (s *session) noop(args []command.Token) bool {
	s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: "Ok"})
	return true
}

func (s *session) rset(args []command.Token) bool {
	if len(args) != 1 {
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: RSET"})
		return false
	}
	s.resetTransaction()
	s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: "Ok"})
	return true
}

func (s *session) quitCmd(args []command.Token) bool {
	s.reply(rules.Reply{Code: 221, DSN: "2.0.0", Text: "Bye"})
	s.quit = true
	return true
}

// vrfy answers 252 for an address the recipient restrictions accept; it
// never says whether the address exists.
func (s *session) vrfy(args []command.Token) bool {
	if s.svc.disableVrfy {
		s.reply(rules.Reply{Code: 502, DSN: "5.5.1", Text: "VRFY command is disabled"})
		return false
	}
	smtputf8 := false
	if s.svc.smtputf8 && s.ehloMask&ehloSMTPUTF8 == 0 && len(args) > 1 && strings.EqualFold(args[len(args)-1].Text, "SMTPUTF8") {
		args, smtputf8 = args[:len(args)-1], true
	}
	if len(args) < 2 {
		syntax := "Syntax: VRFY address"
		if s.svc.smtputf8 {
			syntax += " [SMTPUTF8]"
		}
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: syntax})
		return false
	}
	if s.recipientRateLimited() {
		return false
	}
	arg := joinArgs(args[1:])
	addr, ok := command.ExtractAddress(arg, false)
	if !ok || addr == "" || !s.validAddress(addr, smtputf8) {
		s.svc.log.Logf("smtpd", "warning: Illegal address syntax from %s in VRFY command: %s", s.client, printable(arg))
		s.reply(rules.Reply{Code: 501, DSN: "5.1.3", Text: "Bad recipient address syntax"})
		return false
	}
	if !smtputf8 && s.svc.strictSMTPUTF8 && !isASCII(addr) {
		s.reply(needSMTPUTF8)
		return false
	}
	req := s.request(addr)
	req.ProtocolState = "VRFY"
	if !s.passes("VRFY", addr, s.svc.lists.Check(s.ctx, restrictions.Rcpt, req, &s.checks)) {
		return false
	}
	s.reply(rules.Reply{Code: 252, DSN: "2.0.0", Text: arg})
	return true
}

// etrn asks for the deferred mail of a domain in fast_flush_domains to be
// delivered now (RFC 1985).
func (s *session) etrn(args []command.Token) bool {
	if s.svc.heloRequired && s.helo == "" {
		s.reply(rules.Reply{Code: 503, Text: "Error: send HELO/EHLO first"})
		return false
	}
	if s.txn.active {
		s.reply(rules.Reply{Code: 503, Text: "Error: MAIL transaction in progress"})
		return false
	}
	if len(args) != 2 {
		s.reply(rules.Reply{Code: 500, Text: "Syntax: ETRN domain"})
		return false
	}
	domain := args[1].Text
	if domain != "" && (domain[0] == '@' || domain[0] == '#') {
		domain = domain[1:]
	}
	if !rules.ValidHostname(domain, false) && !rules.ValidMailhostLiteral(domain) {
		s.reply(rules.Reply{Code: 501, Text: "Error: invalid parameter syntax"})
		return false
	}
	req := s.request("")
	req.EtrnDomain = domain
	if !s.passes("ETRN", "", s.svc.lists.Check(s.ctx, restrictions.Etrn, req, &s.checks)) {
		return false
	}
	ok, err := s.svc.fastFlushDomains.Match(s.ctx, domain)
	switch {
	case err != nil:
		s.svc.log.Logf("smtpd", "warning: fast_flush_domains: %v", err)
		s.reply(rules.Reply{Code: 458, Text: "Unable to queue messages"})
		return false
	case !ok:
		s.svc.log.Logf("smtpd", "warning: reject: ETRN %.100s... from %s", domain, s.client)
		s.reply(rules.Reply{Code: 459, Text: "<" + domain + ">: service unavailable"})
		return false
	}
	s.svc.store.FlushDomain(domain)
	s.reply(rules.Reply{Code: 250, Text: "Queuing started"})
	return true
}

// matchClient reports whether the client is in a list of
// smtpd_authorized_*_hosts; a lookup failure counts as no.
func (s *service) matchClient(ctx context.Context, l *rules.AddrList, addr netip.Addr) bool {
	ok, err := l.Match(ctx, addr)
	if err != nil {
		s.log.Logf("smtpd", "warning: %v", err)
	}
	return ok && err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
