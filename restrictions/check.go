package restrictions

import (
	"context"
	"strings"
)

// Check evaluates the lists of a stage with Postfix semantics (§2.2):
//
//   - Connect, Helo/Ehlo, Mail: the client, helo and sender list, only
//     when DelayReject is off;
//   - Rcpt: with DelayReject the client, helo and sender lists first, then
//     relay and recipient (order per RelayBeforeRecipient); the bare
//     recipient "postmaster" is accepted without any list;
//   - Etrn: with DelayReject client and helo, then etrn;
//   - Data, EndOfData: their list.
//
// A pending defer_if_permit turns an accepted RCPT, ETRN, DATA or
// END-OF-MESSAGE into its saved 4xx. txn carries state between calls of
// one session; nil means a fresh one.
func (l *Lists) Check(ctx context.Context, stage Stage, req *Request, txn *Txn) Verdict {
	if txn == nil {
		txn = &Txn{}
	}
	e := l.newEval(ctx, stage, req, txn)
	return e.finish(e.check())
}

// newEval is the state of one check: from MAIL on there is a sender; the
// recipient is RCPT's, or at DATA and END-OF-MESSAGE the only one.
func (l *Lists) newEval(ctx context.Context, stage Stage, req *Request, txn *Txn) *eval {
	e := &eval{ctx: ctx, l: l, req: req, txn: txn, stage: stage}
	switch stage {
	case Mail, Rcpt, Data, EndOfData:
		e.hasSender = true
	}
	switch {
	case stage == Rcpt:
		e.hasRecipient, e.recipient = true, req.Recipient
	case (stage == Data || stage == EndOfData) && req.RecipientCount <= 1 && req.Recipient != "":
		e.hasRecipient, e.recipient = true, req.Recipient
	}
	return e
}

func (e *eval) check() status {
	delay := e.l.opts.DelayReject
	switch e.stage {
	case Connect:
		if !delay {
			return e.checkClient()
		}
	case Helo, Ehlo:
		if !delay {
			return e.checkHelo()
		}
	case Mail:
		if !delay {
			return e.checkSender()
		}
	case Rcpt:
		return e.checkRcpt()
	case Etrn:
		return e.checkEtrn()
	case Data:
		return e.checkData(e.l.lists[idxData], "DATA", rcData)
	case EndOfData:
		return e.checkData(e.l.lists[idxEndOfData], "END-OF-MESSAGE", rcEndOfData)
	}
	return dunno
}

// checkClient: smtpd_client_restrictions; defer_if_permit starts afresh.
func (e *eval) checkClient() status {
	e.txn.dip = deferral{}
	e.reset()
	st := e.top(e.l.lists[idxClient], e.req.namaddr(), rcClient, accessClient)
	e.txn.dipClient = e.txn.dip
	return st
}

// checkHelo: smtpd_helo_restrictions, skipped before HELO/EHLO.
func (e *eval) checkHelo() status {
	if e.req.Helo == "" {
		return dunno
	}
	e.txn.dip = e.txn.dipClient
	e.reset()
	st := e.top(e.l.lists[idxHelo], e.req.Helo, rcHelo, accessHelo)
	e.txn.dipHelo = e.txn.dip
	return st
}

// checkSender: smtpd_sender_restrictions.
func (e *eval) checkSender() status {
	if !e.hasSender {
		return dunno
	}
	e.txn.dip = e.txn.afterHelo()
	e.reset()
	st := e.top(e.l.lists[idxSender], e.req.Sender, rcSender, accessSender)
	e.txn.dipSender = e.txn.dip
	if st != reject && e.l.opts.RejectUnlistedSender && !e.txn.Discarded() && e.req.Sender != "" {
		st = max(st, e.checkSenderMaps())
	}
	return st
}

func (e *eval) checkRcpt() status {
	if strings.EqualFold(e.recipient, "postmaster") {
		return dunno
	}
	if e.l.opts.DelayReject {
		for _, f := range []func() status{e.checkClient, e.checkHelo, e.checkSender} {
			if st := f(); st == reject {
				return st
			}
		}
	}
	e.txn.dip = e.txn.dipSender
	e.reset()
	order := []int{idxRecipient, idxRelay}
	if e.l.opts.RelayBeforeRecipient {
		order = []int{idxRelay, idxRecipient}
	}
	st := dunno
	for _, i := range order {
		if st = e.top(e.l.lists[i], e.recipient, rcRecipient, accessRecipient); st == reject {
			break
		}
	}
	st = e.deferIfPermitted(st)
	if st != reject && e.l.opts.RejectUnlistedRecipient && !e.txn.Discarded() {
		st = max(st, e.checkRecipientMaps())
	}
	return st
}

func (e *eval) checkEtrn() status {
	if e.l.opts.DelayReject {
		if st := e.checkClient(); st == reject {
			return st
		}
		if st := e.checkHelo(); st == reject {
			return st
		}
	}
	e.txn.dip = e.txn.afterHelo()
	e.reset()
	st := e.top(e.l.lists[idxEtrn], e.req.EtrnDomain, rcEtrn, accessEtrn)
	return e.deferIfPermitted(st)
}

// checkData runs smtpd_data_restrictions or smtpd_end_of_data_restrictions.
func (e *eval) checkData(l *list, name, class string) status {
	e.txn.dip = deferral{}
	e.reset()
	return e.deferIfPermitted(e.top(l, name, class, accessNone))
}

// deferIfPermitted replaces an accept with the saved defer_if_permit reply.
func (e *eval) deferIfPermitted(st status) status {
	if st != reject && e.txn.dip.active {
		return e.rejectWith(e.txn.dip)
	}
	return st
}

func (e *eval) finish(st status) Verdict {
	v := e.v
	switch {
	case st == reject:
		v.Decision = Reject
		v.Reply = e.reply
		v.Disconnect = v.Reply.Code == 421 || v.Reply.Code == 521
	case e.permitted:
		v.Decision = Permit
	}
	return v
}

// afterHelo is the defer_if_permit state after the client and HELO stages
// (the HELO stage starts from the client's).
func (t *Txn) afterHelo() deferral {
	if t.dipHelo.active {
		return t.dipHelo
	}
	return t.dipClient
}
