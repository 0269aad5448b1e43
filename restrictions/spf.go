package restrictions

import (
	"context"
	"fmt"

	"postgate/restrictions/spf"
)

// spfResolver gives SPF the process's resolver when it can answer SPF's
// lookups (TXT, PTR); nil otherwise, and SPF is then a temperror.
func spfResolver(r Resolver) spf.Resolver {
	if sr, ok := r.(spf.Resolver); ok {
		return sr
	}
	return nil
}

// SPF gives the SPF outcome of the transaction, evaluated the first time
// a restriction or the caller asks (once per transaction: Txn.Reset
// forgets it). Ask only after MAIL FROM.
func (l *Lists) SPF(ctx context.Context, req *Request, txn *Txn) spf.Outcome {
	if txn.spf != nil {
		return *txn.spf
	}
	o := spf.Outcome{Result: spf.TempError, Identity: spf.MailFrom, ClientIP: req.ClientAddr.Unmap(),
		Helo: req.Helo, Sender: req.Sender, Problem: "no resolver for SPF lookups"}
	if r := spfResolver(l.opts.DNS); r != nil {
		o = spf.Check(ctx, r, req.ClientAddr, req.Helo, req.Sender)
	}
	txn.spf = &o
	return o
}

// EvaluatedSPF gives the transaction's SPF outcome if something asked for
// it (for the Received-SPF: header and the log).
func (t *Txn) EvaluatedSPF() (spf.Outcome, bool) {
	if t.spf == nil {
		return spf.Outcome{}, false
	}
	return *t.spf, true
}

// spfOutcome is the transaction's SPF outcome for a restriction; ok is
// false before MAIL FROM, where SPF restrictions have no opinion.
func (e *eval) spfOutcome() (spf.Outcome, bool) {
	if !e.hasSender {
		return spf.Outcome{}, false
	}
	return e.l.SPF(e.ctx, e.req, e.txn), true
}

// spfReason is policyd-spf's default Reason_Message: "Message {rejected
// or deferred} due to: {explanation}. Please see {url}", the URL naming
// the identity, the client and the recipient (<UNKNOWN> before RCPT).
func (e *eval) spfReason(o spf.Outcome, done string) string {
	s, id := "mfrom", o.Sender
	if o.Identity == spf.Helo {
		s, id = "helo", o.Helo
	}
	rcpt := "<UNKNOWN>"
	if e.hasRecipient {
		rcpt = e.recipient
	}
	return fmt.Sprintf("<%s>: %s rejected: Message %s due to: %s. Please see http://www.openspf.net/Why?s=%s;id=%s;ip=%s;r=%s",
		e.replyName, e.replyClass, done, o.Explanation(), s, id, o.ClientIP, rcpt)
}

// buildSPFRefusal builds the restrictions that refuse on one SPF result
// with policyd-spf's text: reject_spf_fail (fail, 550 5.7.23) and
// defer_spf_temperror (temperror, 451 4.7.24; RFC 7372's codes).
func buildSPFRefusal(result spf.Result, code int, dsn, done string) builder {
	return func(_ *compiler, _, _ string, _ *tableRef) runFunc {
		return func(e *eval) status {
			o, ok := e.spfOutcome()
			if !ok || o.Result != result {
				return dunno
			}
			return e.reject(classPolicy, code, dsn, e.spfReason(o, done))
		}
	}
}

// buildPermitSPFPass: permit_spf_pass, permit when the SPF result is
// pass. As permit_dnswl_client, at RCPT it never permits a recipient we
// would not relay for: anyone can publish a record that passes.
func buildPermitSPFPass(_ *compiler, name, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if st, ok := e.dnswlUnauthorized(); ok {
			return st
		}
		o, ok := e.spfOutcome()
		if !ok || o.Result != spf.Pass {
			return dunno
		}
		return e.aclPermit(name, rcSender, o.Sender, "")
	}
}

// buildWarnSPFSoftfail: warn_spf_softfail, on softfail the reject_warning
// line that warn_if_reject reject_spf_fail would log for a fail; the
// transaction goes on.
func buildWarnSPFSoftfail(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		o, ok := e.spfOutcome()
		if !ok || o.Result != spf.SoftFail {
			return dunno
		}
		saved := e.warnIfReject
		e.warnIfReject = e.recursion
		e.reject(classPolicy, 550, "5.7.23", e.spfReason(o, "rejected"))
		e.warnIfReject = saved
		return dunno
	}
}
