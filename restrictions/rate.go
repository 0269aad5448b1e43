package restrictions

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"postgate/greylist"
	"postgate/rules"
)

// check_sender_rate and check_recipient_domain_rate (postgate's own, for
// outbound abuse control): at RCPT, each recipient counts one event of
// the sender address, or of the recipient's domain, in the state store's
// sliding window (so a pool of nodes sharing Redis counts together). The
// table gives the limit, "N/period" ("100/1h"), looked up with
// check_sender_access's keys (address, domain and parent domains,
// localpart@) or with the recipient's domain and its parents; DUNNO or no
// match: no limit.

// rateState is what the rate checks of one Lists share: the outage
// warnings of the store.
type rateState struct {
	outage greylist.Outage
}

func buildCheckSenderRate(_ *compiler, name, _ string, tr *tableRef) runFunc {
	return func(e *eval) status {
		if e.stage != Rcpt || !e.hasRecipient || !e.hasSender {
			return dunno
		}
		keys, counted := []lookupKey{{e.l.opts.NullAccessLookupKey, false}}, "<>"
		if e.req.Sender != "" {
			r, err := e.resolve(e.req.Sender)
			if err != nil {
				e.warning("%s: %v", e.req.Sender, err)
				return e.dictRetry(e.req.Sender)
			}
			keys, counted = e.mailKeys(r), r.addr
		}
		return e.rateCheck(name, tr, keys, "sender|"+counted, e.req.Sender,
			fmt.Sprintf("<%s>: %s rejected: Sender rate limit exceeded", e.req.Sender, rcSender))
	}
}

func buildCheckRecipientDomainRate(_ *compiler, name, _ string, tr *tableRef) runFunc {
	return func(e *eval) status {
		if e.stage != Rcpt || !e.hasRecipient {
			return dunno
		}
		r, err := e.resolve(e.recipient)
		if err != nil {
			e.warning("%s: %v", e.recipient, err)
			return e.dictRetry(e.recipient)
		}
		if !r.qualified {
			return dunno
		}
		keys := e.domainKeys(r.domain)
		keys[0].partial = false // the whole key, as a regexp table needs it
		return e.rateCheck(name, tr, keys, "rcpt-domain|"+r.domain, e.recipient,
			fmt.Sprintf("<%s>: %s rejected: Recipient domain rate limit exceeded", e.recipient, rcRecipient))
	}
}

// rateCheck looks the limit up, counts the event and answers 450 4.7.1
// text past the limit. A table that fails answers 451 4.3.0, a value that
// is not a limit 451 4.3.5; a store that fails follows
// postgate_state_failure_action.
func (e *eval) rateCheck(check string, tr *tableRef, keys []lookupKey, counted, addr, text string) status {
	var value string
	for _, k := range keys {
		v, ok, err := e.find(tr, k.key, k.partial)
		if err != nil {
			e.warning("%s: table lookup problem for %q: %v", tr.spec, k.key, err)
			return e.dictRetry(addr)
		}
		if ok {
			value = strings.TrimSpace(v)
			break
		}
	}
	if value == "" || strings.EqualFold(value, "DUNNO") {
		return dunno
	}
	limit, err := ParseRate(value)
	if err != nil {
		e.warning("%s: %s: %v", check, tr.spec, err)
		return e.serverError()
	}
	store := e.l.opts.StateStore
	if store == nil {
		e.warning("%s: no state store configured", check)
		return e.serverError()
	}
	// The window is part of the name: two limits of one sender with
	// different periods count apart.
	c, err := store.Event(e.ctx, counted+"|"+limit.Per.String(), limit)
	if err != nil && e.ctx.Err() != nil {
		return dunno // the client left: not the store's failure
	}
	if err != nil {
		return e.stateFailure(&e.l.rates.outage, check, err, addr)
	}
	if e.l.rates.outage.Recovered() {
		e.info("%s: the state store answers again", check)
	}
	if c.Allowed {
		return dunno
	}
	return e.reject(classPolicy, 450, "4.7.1", text)
}

// ParseRate reads a limit "N/period": N at least 1, the period a number
// with an optional unit s, m, h, d or w (default s), as Postfix's time
// parameters.
func ParseRate(v string) (greylist.Rate, error) {
	n, per, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count < 1 {
		return greylist.Rate{}, fmt.Errorf("%q is not a rate limit N/period (100/1h)", v)
	}
	d, err := rules.ParseTime(strings.TrimSpace(per), 's')
	if err != nil || d <= 0 {
		return greylist.Rate{}, fmt.Errorf("%q is not a rate limit N/period (100/1h)", v)
	}
	return greylist.Rate{N: count, Per: d}, nil
}

// stateFailure follows postgate_state_failure_action when the store
// cannot answer check: let addr through or defer it, and warn at most
// once a minute.
func (e *eval) stateFailure(o *greylist.Outage, check string, err error, addr string) status {
	action := "the recipient is let through"
	if e.l.opts.Greylist.FailureDefer {
		action = "the recipient is deferred"
	}
	if o.Failed(time.Now()) {
		e.warning("%s: %v; %s (postgate_state_failure_action)", check, err, action)
	}
	if e.l.opts.Greylist.FailureDefer {
		return e.dictRetry(addr)
	}
	return dunno
}
