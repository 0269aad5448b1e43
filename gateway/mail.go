package gateway

import (
	"strconv"
	"strings"

	"postgate/gateway/command"
	"postgate/queue"
	"postgate/restrictions"
	"postgate/rules"
)

// MAIL and RCPT, as Postfix's mail_cmd and rcpt_cmd: the order of the
// checks decides which reply a broken command gets.

func (s *session) mail(args []command.Token) bool {
	switch {
	case s.svc.heloRequired && s.helo == "":
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: send HELO/EHLO first"})
		return false
	case s.txn.active:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: nested MAIL command"})
		return false
	case s.txn.bdatError:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: MAIL after BDAT"})
		return false
	case len(args) < 3 || !strings.EqualFold(args[1].Text, "from:"):
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: MAIL FROM:<address>"})
		return false
	case s.messageRateLimited():
		return false
	}
	badSender := rules.Reply{Code: 501, DSN: "5.1.7", Text: "Bad sender address syntax"}
	if args[2].Bad {
		s.reply(badSender)
		return false
	}
	// SMTPUTF8 decides what address syntax is allowed, so it is looked
	// for first.
	smtputf8 := false
	if s.svc.smtputf8 && s.ehloMask&ehloSMTPUTF8 == 0 {
		for _, a := range args[3:] {
			smtputf8 = smtputf8 || strings.EqualFold(a.Text, "SMTPUTF8")
		}
	}
	sender, ok := command.ExtractAddress(args[2].Text, s.svc.strictRFC821)
	if !ok || !s.validAddress(sender, smtputf8) {
		s.svc.log.Logf("smtpd", "warning: Illegal address syntax from %s in MAIL command: %s", s.client, printable(args[2].Text))
		s.reply(badSender)
		return false
	}
	txn := transaction{smtputf8: smtputf8, xforward: s.txn.xforward, rcpts: s.txn.rcpts[:0]}
	var seen mailSeen
	for _, a := range args[3:] {
		if r := s.mailParam(a.Text, &txn, &seen); r != nil {
			s.reply(*r)
			return false
		}
	}
	s.txn = txn
	s.txn.sender = sender
	if s.svc.messageSizeLimit > 0 && txn.size > s.svc.messageSizeLimit {
		s.txn.active = true // logged with from=<...>, as Postfix
		s.logAction("reject", "MAIL", "552 5.3.4 Message size exceeds fixed limit", "")
		s.resetTransaction()
		s.reply(rules.Reply{Code: 552, DSN: "5.3.4", Text: "Message size exceeds fixed limit"})
		return false
	}
	s.txn.active = true
	if !s.passes("MAIL", "", s.check(restrictions.Mail, "")) {
		s.resetTransaction()
		return false
	}
	if s.svc.strictSMTPUTF8 && !smtputf8 && !isASCII(sender) {
		s.resetTransaction()
		s.reply(needSMTPUTF8)
		return false
	}
	if s.svc.proxy != nil {
		// The filter's listener queues the mail, and checks its space.
		s.txn.proxyMail = s.line
	} else if free, ok := s.svc.store.Space(s.svc.messageSizeLimit); !ok {
		// Postfix's smtpd_check_queue, the last check: its reject line
		// has no from=<...>, the sender not being taken yet.
		s.resetTransaction()
		s.logAction("reject", "MAIL", "452 4.3.1 Insufficient system storage", "")
		s.svc.log.Logf("smtpd", "warning: not enough free space in mail queue: %d bytes < 1.5*message size limit", free)
		s.reply(insufficientStorage)
		return false
	} else if txn.size > 0 && free-s.svc.queueMinFree < txn.size {
		// Beyond Postfix 3.7 (older versions did it): a message announced
		// bigger than the room left is refused before its content.
		s.resetTransaction()
		s.logAction("reject", "MAIL", "452 4.3.1 Insufficient system storage", "")
		s.svc.log.Logf("smtpd", "warning: not enough free space in mail queue for a message of %d bytes: %d bytes free, queue_minfree %d", txn.size, free, s.svc.queueMinFree)
		s.reply(insufficientStorage)
		return false
	}
	s.txn.milterMail = s.milters != nil
	if !s.milterMail(args[3:]) {
		s.resetTransaction()
		return false
	}
	s.beginInstance()
	s.reply(rules.Reply{Code: 250, DSN: "2.1.0", Text: "Ok"})
	return true
}

// insufficientStorage refuses a message, at MAIL or at the end of DATA,
// while the queue is short of space (queue_minfree).
var insufficientStorage = rules.Reply{Code: 452, DSN: "4.3.1", Text: "Insufficient system storage"}

// mailSeen remembers the MAIL parameters that may be given once.
type mailSeen struct{ auth, envID bool }

// mailParam takes one MAIL parameter into txn, or returns the reply that
// refuses it.
func (s *session) mailParam(p string, txn *transaction, seen *mailSeen) *rules.Reply {
	key, value, hasValue := strings.Cut(p, "=")
	switch {
	case strings.EqualFold(p, "BODY=8BITMIME"), strings.EqualFold(p, "BODY=7BIT"):
	case strings.EqualFold(key, "SIZE") && hasValue:
		if !rules.AllDigits(value) {
			return &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Bad message size syntax"}
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return &rules.Reply{Code: 552, DSN: "5.3.4", Text: "Message size exceeds file system imposed limit"}
		}
		txn.size = n
	case strings.EqualFold(p, "SMTPUTF8") && s.svc.smtputf8 && s.ehloMask&ehloSMTPUTF8 == 0:
		// Taken before the address.
	case strings.EqualFold(key, "AUTH") && hasValue:
		// RFC 4954's original submitter: only checked for repetition, as
		// Postfix does (it keeps it for milters).
		if seen.auth {
			return &rules.Reply{Code: 503, DSN: "5.5.4", Text: "Error: multiple AUTH= options"}
		}
		seen.auth = true
	case strings.EqualFold(key, "RET") && hasValue:
		if s.ehloMask&ehloDSN != 0 {
			return dsnDisabled
		}
		v := strings.ToUpper(value)
		if txn.ret != "" || (v != "FULL" && v != "HDRS") {
			return &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Bad RET parameter syntax"}
		}
		txn.ret = v
	case strings.EqualFold(key, "ENVID") && hasValue:
		if s.ehloMask&ehloDSN != 0 {
			return dsnDisabled
		}
		// As Postfix 3.7 reads it: up to a NUL, printable ASCII only.
		v, ok := command.Xtext(value)
		if i := strings.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		}
		if seen.envID || !ok || value == "" || !printableASCII(v) {
			return &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Bad ENVID parameter syntax"}
		}
		txn.envID, seen.envID = v, true
	default:
		return &rules.Reply{Code: 555, DSN: "5.5.4", Text: "Unsupported option: " + p}
	}
	return nil
}

var dsnDisabled = &rules.Reply{Code: 501, DSN: "5.7.1", Text: "DSN support is disabled"}

func (s *session) rcpt(args []command.Token) bool {
	switch {
	case !s.txn.active:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: need MAIL command"})
		return false
	case s.txn.bdat != nil:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: RCPT after BDAT"})
		return false
	case len(args) < 3 || !strings.EqualFold(args[1].Text, "to:"):
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: RCPT TO:<address>"})
		return false
	case s.recipientRateLimited():
		return false
	}
	badRcpt := rules.Reply{Code: 501, DSN: "5.1.3", Text: "Bad recipient address syntax"}
	if args[2].Bad {
		s.reply(badRcpt)
		return false
	}
	to, ok := command.ExtractAddress(args[2].Text, s.svc.strictRFC821)
	if !ok || to == "" || !s.validAddress(to, s.txn.smtputf8) {
		s.svc.log.Logf("smtpd", "warning: Illegal address syntax from %s in RCPT command: %s", s.client, printable(args[2].Text))
		s.reply(badRcpt)
		return false
	}
	rcpt := queue.Recipient{Addr: to}
	for _, a := range args[3:] {
		if r := s.rcptParam(a.Text, &rcpt); r != nil {
			s.reply(*r)
			return false
		}
	}
	if len(s.txn.rcpts) >= s.svc.recipientLimit {
		s.reply(rules.Reply{Code: 452, DSN: "4.5.3", Text: "Error: too many recipients"})
		s.txn.overshoot++
		return s.txn.overshoot <= s.svc.recipientOvershootLimit
	}
	if s.svc.strictSMTPUTF8 && !s.txn.smtputf8 && !isASCII(to) {
		s.reply(needSMTPUTF8)
		return false
	}
	if s.screenReply != nil {
		s.screenRcpt(to)
		return false
	}
	if !s.passes("RCPT", to, s.check(restrictions.Rcpt, to)) {
		return false
	}
	if !s.milterRcpt(to, args[3:]) {
		return false
	}
	if s.svc.proxy != nil {
		if r := s.proxyRcpt(); r != nil {
			s.reply(*r)
			return false
		}
	} else if s.txn.id == "" {
		// Postfix assigns the queue ID at the first accepted recipient.
		s.txn.id = s.svc.store.NewID()
		s.svc.log.Logf("smtpd", "%s: client=%s%s", s.txn.id, s.client, s.saslLog())
	}
	s.txn.rcpts = append(s.txn.rcpts, rcpt)
	s.reply(rules.Reply{Code: 250, DSN: "2.1.5", Text: "Ok"})
	return true
}

// rcptParam takes one RCPT parameter (the DSN ones) into rcpt, kept with
// the envelope so that bounces can honour them.
func (s *session) rcptParam(p string, rcpt *queue.Recipient) *rules.Reply {
	key, value, hasValue := strings.Cut(p, "=")
	switch {
	case strings.EqualFold(key, "NOTIFY") && hasValue:
		if s.ehloMask&ehloDSN != 0 {
			return dsnDisabled
		}
		notify, ok := dsnNotify(value)
		if rcpt.Notify != "" || !ok {
			return &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Error: Bad NOTIFY parameter syntax"}
		}
		rcpt.Notify = notify
	case strings.EqualFold(key, "ORCPT") && hasValue:
		if s.ehloMask&ehloDSN != 0 {
			return dsnDisabled
		}
		typ, coded, ok := strings.Cut(value, ";")
		var addr string
		if ok && typ != "" {
			if strings.EqualFold(typ, "utf-8") {
				addr, ok = command.UXtext(coded)
			} else {
				addr, ok = command.Xtext(coded)
			}
		}
		if rcpt.ORCPT != "" || !ok || typ == "" || strings.IndexByte(addr, 0) >= 0 {
			return &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Error: Bad ORCPT parameter syntax"}
		}
		rcpt.ORCPT = strings.ToLower(typ) + ";" + addr
	default:
		return &rules.Reply{Code: 555, DSN: "5.5.4", Text: "Unsupported option: " + p}
	}
	return nil
}

// dsnNotify checks a NOTIFY value (NEVER alone, or SUCCESS, FAILURE and
// DELAY in any combination) and returns it upper-cased.
func dsnNotify(v string) (string, bool) {
	words := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(words) == 0 {
		return "", false
	}
	never := false
	for i, w := range words {
		w = strings.ToUpper(w)
		switch w {
		case "NEVER":
			never = true
		case "SUCCESS", "FAILURE", "DELAY":
		default:
			return "", false
		}
		words[i] = w
	}
	if never && len(words) > 1 {
		return "", false
	}
	return strings.Join(words, ","), true
}

// validAddress is Postfix's smtpd_check_addr: the address must resolve to
// a domain of valid syntax, and without SMTPUTF8 the domain must be ASCII
// (8-bit local parts are allowed, as Postfix always has). A resolution
// failure (a table that cannot answer) is left for the restrictions.
func (s *session) validAddress(addr string, smtputf8 bool) bool {
	if addr == "" {
		return true
	}
	res, err := s.svc.route.Resolve(s.ctx, addr)
	if err != nil {
		return true
	}
	if res.Invalid {
		return false
	}
	if i := strings.LastIndexByte(res.Address, '@'); i >= 0 && !smtputf8 && !isASCII(res.Address[i+1:]) {
		return false
	}
	return true
}

// printableASCII is Postfix's allprint in the C locale.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
