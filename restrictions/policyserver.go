package restrictions

import (
	"context"
	"regexp"

	"postgate/rules"
)

// PolicyVerdict is what a restriction list decided for one policy
// delegation request (postgate policyd). Postfix evaluates the answer as
// an access action of its own stage and puts its "<name>: <class>
// rejected: " before the text, so the texts here are without postgate's
// (whichever the restriction used: a sender check at RCPT says "Sender
// address"), as a policy server's own reasons are.
type PolicyVerdict struct {
	Verdict
	// Reason is Reply.Text without its "<name>: <class> rejected: ".
	Reason string
	// DeferIfPermit and DeferIfReject are the defer_if_permit and
	// defer_if_reject replies the list raised and nothing resolved
	// (Postfix resolves them at the end of its own stage); nil when none.
	DeferIfPermit, DeferIfReject *rules.Reply
}

// CheckClass evaluates the restriction class named class alone, as the
// top-level list of stage: with the stage's reply name and class and the
// stage's meaning of a bare table, as Postfix evaluates the list that
// asked the policy server. Each request is on its own (a fresh Txn): a
// defer_if_permit raised is the reply at RCPT, DATA, END-OF-MESSAGE and
// ETRN, as Check makes it, and returned at earlier stages, where Postfix
// keeps it for RCPT; a defer_if_reject is returned.
func (l *Lists) CheckClass(ctx context.Context, stage Stage, class string, req *Request) PolicyVerdict {
	e := l.newEval(ctx, stage, req, &Txn{})
	name, rc, acl := req.namaddr(), rcClient, accessClient
	switch stage {
	case Helo, Ehlo:
		name, rc, acl = req.Helo, rcHelo, accessHelo
	case Mail:
		name, rc, acl = req.Sender, rcSender, accessSender
	case Rcpt:
		name, rc, acl = req.Recipient, rcRecipient, accessRecipient
	case Data:
		name, rc, acl = "DATA", rcData, accessNone
	case EndOfData:
		name, rc, acl = "END-OF-MESSAGE", rcEndOfData, accessNone
	case Etrn:
		name, rc, acl = req.EtrnDomain, rcEtrn, accessEtrn
	}
	e.reset()
	st := e.top(l.classes[class], name, rc, acl)
	switch stage {
	case Rcpt, Data, EndOfData, Etrn:
		// Where Check turns it into the reply, so does the policy server.
		st = e.deferIfPermitted(st)
	}
	v := PolicyVerdict{Verdict: e.finish(st)}
	v.Reason = reason(v.Reply.Text)
	pending := func(d deferral) *rules.Reply {
		if !d.active {
			return nil
		}
		return &rules.Reply{Code: d.code, DSN: d.dsn, Text: reason(d.reason)}
	}
	if st != reject {
		v.DeferIfPermit, v.DeferIfReject = pending(e.txn.dip), pending(e.dir)
	}
	return v
}

// rejectedPrefix is the "<name>: <class> rejected: " of a reply text.
var rejectedPrefix = regexp.MustCompile("^<[^>]*>: (" + regexp.QuoteMeta(rcClient) + "|" + regexp.QuoteMeta(rcReverseClient) +
	"|" + regexp.QuoteMeta(rcHelo) + "|" + regexp.QuoteMeta(rcSender) + "|" + regexp.QuoteMeta(rcRecipient) +
	"|" + regexp.QuoteMeta(rcEtrn) + "|" + regexp.QuoteMeta(rcData) + "|" + regexp.QuoteMeta(rcEndOfData) + ") rejected: ")

// reason is a reply text without its "<name>: <class> rejected: ".
func reason(text string) string {
	if loc := rejectedPrefix.FindStringIndex(text); loc != nil {
		return text[loc[1]:]
	}
	return text
}
