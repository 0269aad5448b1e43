package restrictions

import (
	"fmt"

	"postgate/rules"
	"postgate/rules/route"
)

// Recipient validation (Postfix's check_rcpt_maps): an address in a class
// whose recipient table is set must be listed there, so mail for unknown
// users is refused at RCPT instead of bounced later. It runs for the
// explicit reject_unlisted_recipient / check_recipient_maps and
// reject_unlisted_sender, and implicitly after the recipient lists
// (smtpd_reject_unlisted_recipient, default yes) and the sender list
// (smtpd_reject_unlisted_sender, default no), at most once per address.

func buildRejectUnlistedRecipient(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasRecipient || e.recipient == "" {
			return dunno
		}
		return e.checkRecipientMaps()
	}
}

func buildRejectUnlistedSender(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasSender || e.req.Sender == "" {
			return dunno
		}
		return e.checkSenderMaps()
	}
}

func (e *eval) checkRecipientMaps() status {
	if e.rcptMapsChecked {
		return dunno
	}
	// Under warn_if_reject the address is not really validated: a later
	// check may still reject it.
	e.rcptMapsChecked = e.warnIfReject == 0
	return e.checkRcptMaps(e.recipient, rcRecipient)
}

func (e *eval) checkSenderMaps() status {
	if e.senderMapsChecked {
		return dunno
	}
	e.senderMapsChecked = e.warnIfReject == 0
	return e.checkRcptMaps(e.req.Sender, rcSender)
}

// The local parts Postfix's queue manager and bounce daemon absorb or
// generate: never refused as unknown local users.
var localExempt = []string{"double-bounce", "postmaster", "mailer-daemon"}

func (e *eval) checkRcptMaps(addr, replyClass string) status {
	r, err := e.resolve(addr)
	if err != nil {
		e.warning("%s: %v", addr, err)
		return e.dictRetry(addr)
	}
	o := &e.l.opts
	// An address canonical or virtual alias rewriting changes is known
	// (Postfix's check_rcpt_maps: the sender canonical maps for senders only).
	rewriting := [][]rules.Table{o.RecipientCanonicalMaps, nil, o.CanonicalMaps, o.VirtualAliasMaps}
	if replyClass == rcSender {
		rewriting[1] = o.SenderCanonicalMaps
	}
	for _, maps := range rewriting {
		if _, _, found, err := rules.FindAddress(e.ctx, maps, r.addr, r.class == route.Local, o.RecipientDelimiter); err != nil {
			return e.rcptMapsFailure(addr, err)
		} else if found {
			return dunno
		}
	}
	dsn := "5.1.1"
	if replyClass == rcSender {
		dsn = "5.1.0"
	}
	if r.transport == "error" {
		code := 550
		if r.class == route.Alias {
			code = o.UnknownVirtualAliasRejectCode
		}
		d, text := rules.SplitDSN(r.nexthop)
		if d == "" {
			d = dsn
		}
		return e.reject(classBounce, code, e.dsnFix(d, replyClass), fmt.Sprintf("<%s>: %s rejected: %s", addr, replyClass, text))
	}
	var tables []rules.Table
	var code int
	var table string
	switch r.class {
	case route.Local:
		for _, l := range localExempt {
			if r.local == l {
				return dunno
			}
		}
		tables, code, table = o.LocalRecipientMaps, o.UnknownLocalRecipientRejectCode, "local recipient table"
	case route.Virtual:
		tables, code, table = o.VirtualMailboxMaps, o.UnknownVirtualMailboxRejectCode, "virtual mailbox table"
	case route.Relay:
		tables, code, table = o.RelayRecipientMaps, o.UnknownRelayRecipientRejectCode, "relay recipient table"
	}
	if len(tables) == 0 {
		return dunno
	}
	_, _, found, err := rules.FindAddress(e.ctx, tables, r.addr, r.class == route.Local, o.RecipientDelimiter)
	if err != nil {
		return e.rcptMapsFailure(addr, err)
	}
	if found {
		return dunno
	}
	text := fmt.Sprintf("<%s>: %s rejected: User unknown", addr, replyClass)
	if !o.HideUserUnknownTableName {
		text += " in " + table
	}
	return e.reject(classBounce, code, dsn, text)
}

func (e *eval) rcptMapsFailure(addr string, err error) status {
	e.warning("%s lookup error for \"%s\"", err, addr)
	return e.dictRetry(addr)
}
