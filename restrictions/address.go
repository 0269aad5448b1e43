package restrictions

import (
	"fmt"
	"strings"

	"postgate/rules"
)

func buildSenderAccess(_ *compiler, _, _ string, tr *tableRef) runFunc {
	return func(e *eval) status { return e.senderAccess(tr) }
}

// senderAccess looks the sender up; the null sender is looked up once as
// smtpd_null_access_lookup_key.
func (e *eval) senderAccess(tr *tableRef) status {
	switch {
	case !e.hasSender:
		return dunno
	case e.req.Sender != "":
		return e.checkMailAccess(tr, e.req.Sender, e.req.Sender, rcSender)
	}
	key := e.l.opts.NullAccessLookupKey
	v, ok, err := e.find(tr, key, false)
	st, _ := e.found(tr, key, v, ok, err, key, "", rcSender)
	return st
}

func buildRecipientAccess(_ *compiler, _, _ string, tr *tableRef) runFunc {
	return func(e *eval) status { return e.recipientAccess(tr) }
}

func (e *eval) recipientAccess(tr *tableRef) status {
	if !e.hasRecipient {
		return dunno
	}
	return e.checkMailAccess(tr, e.recipient, e.recipient, rcRecipient)
}

func buildRejectNonFQDNSender(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasSender || e.req.Sender == "" {
			return dunno
		}
		return e.rejectNonFQDNAddress(e.req.Sender, rcSender)
	}
}

func buildRejectNonFQDNRecipient(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasRecipient {
			return dunno
		}
		return e.rejectNonFQDNAddress(e.recipient, rcRecipient)
	}
}

// rejectNonFQDNAddress: the address's domain must be a valid host name
// with a dot; address literals are skipped.
func (e *eval) rejectNonFQDNAddress(addr, class string) status {
	domain := ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		domain = addr[i+1:]
	}
	if len(domain) > 1 && domain[0] == '[' && domain[len(domain)-1] == ']' {
		return dunno
	}
	d := rules.TruncateDot(domain)
	if d != "" && rules.ValidHostname(d, false) && containsDot(d) {
		return dunno
	}
	return e.reject(classPolicy, e.l.opts.NonFQDNRejectCode, "4.5.2",
		fmt.Sprintf("<%s>: %s rejected: need fully-qualified address", addr, class))
}

// buildRejectMultiRecipientBounce: a null sender may have one recipient.
func buildRejectMultiRecipientBounce(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		limit := 1
		if e.stage == Rcpt {
			limit = 0
		}
		if !e.hasSender || e.req.Sender != "" || e.req.RecipientCount <= limit {
			return dunno
		}
		return e.reject(classPolicy, e.l.opts.MultiRecipientBounceRejectCode, "5.5.3",
			fmt.Sprintf("<%s>: %s rejected: Multi-recipient bounce", e.replyName, e.replyClass))
	}
}
