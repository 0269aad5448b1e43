package restrictions

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"postgate/rules"
)

// errClass is Postfix's error class of a reject: software, resource and
// data errors are never turned into warnings by warn_if_reject.
type errClass int

const (
	classPolicy errClass = iota
	classProtocol
	classBounce
	classSoftware
	classResource
	classData
)

// maxReplyBytes bounds a reply line, code and DSN included.
const maxReplyBytes = 510

// genericReply replaces a reply whose code or DSN is misconfigured.
var genericReply = rules.Reply{Code: 450, DSN: "4.7.1", Text: "Service unavailable"}

// reject is the one place a reject reply is made (Postfix's
// smtpd_check_reject): the code must be 4xx/5xx and the DSN valid (else a
// generic 450), the text is cut to 510 bytes and made printable, a pending
// defer_if_reject turns a 5xx into its saved 4xx, soft_bounce turns 5 into
// 4, the DSN's first digit follows the code, and the reply is logged as
// "reject" or, under warn_if_reject, "reject_warning" (then it does not
// reject).
func (e *eval) reject(cls errClass, code int, dsn, text string) status {
	warn := e.warnIfReject != 0 && cls != classSoftware && cls != classResource && cls != classData
	what := "reject"
	if warn {
		what = "reject_warning"
	}
	r := rules.Reply{Code: code, DSN: dsn, Text: text}
	if code < 400 || code > 599 {
		e.warning("SMTP reply code configuration error: %s", r)
		r = genericReply
	} else if rules.ValidDSN(dsn) != len(dsn) || dsn == "" {
		e.warning("DSN detail code configuration error: %s", r)
		r = genericReply
	}
	// The whole reply line is cut to 510 bytes, as Postfix cuts its
	// formatted reply.
	if head := len("550 ") + len(r.DSN) + 1; head+len(r.Text) > maxReplyBytes {
		r.Text = r.Text[:maxReplyBytes-head]
	}
	r.Text = printable(r.Text)
	if !warn && e.dir.active && r.Code/100 == 5 {
		d := e.dir
		e.warnIfReject, e.dir.active = 0, false
		return e.reject(d.class, d.code, d.dsn, d.reason)
	}
	if e.l.opts.SoftBounce && r.Code/100 == 5 {
		r.Code -= 100
	}
	// The DSN's class follows the code.
	r.DSN = strconv.Itoa(r.Code/100) + r.DSN[1:]
	e.logAction(what, r.String())
	if warn {
		return dunno
	}
	e.reply = r
	return reject
}

// rejectWith replies with a saved deferral.
func (e *eval) rejectWith(d deferral) status {
	return e.reject(d.class, d.code, d.dsn, d.reason)
}

// dictRetry answers a failed lookup that is not an access table's.
func (e *eval) dictRetry(name string) status {
	return e.reject(classData, 451, "4.3.0", "<"+name+">: Temporary lookup failure")
}

// serverError answers a configuration or software problem.
func (e *eval) serverError() status {
	return e.reject(classSoftware, 451, "4.3.5", "Server configuration error")
}

// deferIfPermit raises defer_if_permit, or with warn_if_reject in effect
// (or when the tempfail action is plain defer) rejects right away.
func (e *eval) deferIfPermit(asDeferIfPermit bool, cls errClass, code int, dsn, text string) status {
	if e.warnIfReject == 0 && asDeferIfPermit {
		e.txn.dip.set(cls, code, dsn, text)
		return dunno
	}
	return e.reject(cls, code, dsn, text)
}

// deferIfReject raises defer_if_reject (also under warn_if_reject).
func (e *eval) deferIfReject(cls errClass, code int, dsn, text string) status {
	e.dir.set(cls, code, dsn, text)
	return dunno
}

// printable replaces control characters and invalid UTF-8 with spaces.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// senderDSN and recipientDSN map the detail of an X.1.Y status when a
// sender or a recipient is rejected (postfix-semantics §2.6 item 6).
var (
	senderDSN    = map[byte]string{'1': "1.7", '2': "1.8", '3': "1.7", '4': "1.7", '5': "1.0", '6': "1.7", '7': "1.7", '8': "1.8"}
	recipientDSN = map[byte]string{'1': "1.1", '2': "1.2", '3': "1.3", '4': "1.4", '5': "1.5", '6': "1.6", '7': "1.3", '8': "1.2"}
)

// dsnFix adapts an address-class DSN (X.1.Y) to what is rejected: sender
// and recipient statuses are swapped as needed, and any X.1.Y becomes X.0.0
// for non-address information. Other DSNs are left alone.
func (e *eval) dsnFix(dsn, replyClass string) string {
	if len(dsn) < 5 || !strings.HasPrefix(dsn[1:], ".1.") {
		return dsn
	}
	var result string
	switch replyClass {
	case rcSender, rcRecipient:
		table := senderDSN
		if replyClass == rcRecipient {
			table = recipientDSN
		}
		tail, ok := "", false
		if len(dsn) == 5 {
			tail, ok = table[dsn[4]]
		}
		if !ok {
			tail = "1.0"
		}
		result = dsn[:2] + tail
	default:
		result = dsn[:2] + "0.0"
	}
	if result != dsn {
		e.info("mapping DSN status %s into %s status %s", dsn, replyClass, result)
	}
	return result
}
