package gateway

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"

	"postgate/restrictions"
)

// postfixTexts maps go-smtp's own reply texts to Postfix's, per command, so
// that clients and admins' monitoring see the replies Postfix gives. Replies
// the session builds itself (restrictions, queue) are Postfix's already.
var postfixTexts = []struct {
	verb, from, to string
}{
	{"MAIL", "250 2.0.0 Roger, accepting mail from", "250 2.1.0 Ok"},
	{"MAIL", "552 5.3.4 Max message size exceeded", "552 5.3.4 Message size exceeds fixed limit"},
	{"MAIL", "502 5.5.1 Please introduce yourself first.", "503 5.5.1 Error: send HELO/EHLO first"},
	{"RCPT", "250 2.0.0 I'll make sure", "250 2.1.5 Ok"},
	{"RCPT", "502 5.5.1 Missing MAIL FROM command.", "503 5.5.1 Error: need MAIL command"},
	{"DATA", "354 Go ahead.", "354 End data with <CR><LF>.<CR><LF>"},
	{"DATA", "552 5.3.4 Maximum message size exceeded", "552 5.3.4 Error: message file too big"},
	{"DATA", "502 5.5.1 Missing RCPT TO command.", "503 5.5.1 Error: need RCPT command"},
	{"BDAT", "552 5.3.4 Max message size exceeded", "552 5.3.4 Chunk exceeds message size limit"},
	{"BDAT", "552 5.3.4 Maximum message size exceeded", "552 5.3.4 Chunk exceeds message size limit"},
	{"BDAT", "502 5.5.1 Missing RCPT TO command.", "503 5.5.1 Error: need RCPT command"},
	{"RSET", "250 2.0.0 Session reset", "250 2.0.0 Ok"},
	{"NOOP", "250 2.0.0 I have successfully done nothing", "250 2.0.0 Ok"},
	{"VRFY", "252 2.5.0 Cannot VRFY user, but will accept message", "252 2.0.0 Send some mail, I'll try my best"},
	{"unknown", "500 5.5.2 Syntax errors,", "500 5.5.2 Error: command not recognized"},
}

// postfixReply returns Postfix's text for a go-smtp reply line, if it has one.
func postfixReply(verb string, line []byte) ([]byte, bool) {
	if verb == "" {
		return nil, false
	}
	known := verbIndex(verb) != numVerbs-1
	for _, r := range postfixTexts {
		if (r.verb == verb || (!known && r.verb == "unknown")) && bytes.HasPrefix(line, []byte(r.from)) {
			return []byte(r.to + "\r\n"), true
		}
	}
	return nil, false
}

// replyError is the one place a decision becomes an SMTP reply.
func replyError(code int, dsn, text string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode, Message: text}
	parts := strings.Split(dsn, ".")
	if len(parts) == 3 {
		var ec smtp.EnhancedCode
		for i, s := range parts {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 999 {
				return e
			}
			ec[i] = n
		}
		e.EnhancedCode = ec
	}
	return e
}

// verdictError turns a restriction verdict into the reply to send.
func verdictError(v restrictions.Verdict) *smtp.SMTPError {
	return replyError(v.Code, v.DSN, v.Text)
}
