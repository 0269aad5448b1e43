package restrictions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"postgate/greylist"
)

// Prober sends one address verification probe: the address is routed
// as a delivery to it would be, and the next hop is asked with MAIL and
// RCPT only. It answers VerifyOK, VerifyDefer or VerifyBounce with the
// delivery agent's text ("host h[ip] said: 550 ... (in reply to RCPT TO
// command)").
type Prober interface {
	Probe(ctx context.Context, addr string) greylist.VerifyRecord
}

// VerifyOptions configure reject_unverified_recipient and
// reject_unverified_sender (Postfix's verify(8) and its smtpd client).
// The cache is Options.StateStore.
type VerifyOptions struct {
	Prober Prober // nil: the checks answer "address verification problem"
	Policy greylist.VerifyPolicy
	// PollCount and PollDelay (address_verify_poll_count, _poll_delay):
	// an address with no answer yet is asked again up to PollCount
	// times in all, PollDelay apart, before "Address verification in
	// progress" is the answer. 0: 3 and 3 s.
	PollCount int
	PollDelay time.Duration
	Recipient VerifyReplies
	Sender    VerifyReplies
	// Warn, when set, logs what goes wrong in a background probe (a
	// session's warnings go to its verdict's log).
	Warn func(format string, args ...any)
}

// VerifyReplies are the unverified_recipient_* or unverified_sender_*
// parameters.
type VerifyReplies struct {
	RejectCode int    // for an undeliverable address (450)
	DeferCode  int    // for an address with a temporary or no answer yet (450)
	Defer      bool   // tempfail action "defer" rather than "defer_if_permit"
	Reason     string // replaces the delivery agent's text when set
}

// verifier is what the reject_unverified_* steps share: the probes this
// node has out, so that a session waiting for an answer wakes up when it
// comes rather than at its next poll.
type verifier struct {
	mu      sync.Mutex
	pending map[string]chan struct{} // closed when the probe's answer is stored
	outage  greylist.Outage
	// slots bounds the probes this node runs at once, as Postfix's
	// queue manager bounds them by default_destination_concurrency_limit
	// (20): a dictionary attack does not open a connection per address.
	slots chan struct{}
}

// maxProbes is the number of probes a node runs at once.
const maxProbes = 20

func buildRejectUnverified(sender bool) builder {
	return func(c *compiler, _, _ string, _ *tableRef) runFunc {
		if c.l.verify == nil {
			c.l.verify = &verifier{pending: map[string]chan struct{}{}, slots: make(chan struct{}, maxProbes)}
		}
		return func(e *eval) status {
			if sender {
				if !e.hasSender || e.req.Sender == "" {
					return dunno
				}
				return e.rejectUnverified(e.req.Sender, rcSender, e.l.opts.Verify.Sender)
			}
			if !e.hasRecipient || e.recipient == "" {
				return dunno
			}
			return e.rejectUnverified(e.recipient, rcRecipient, e.l.opts.Verify.Recipient)
		}
	}
}

// rejectUnverified is smtpd_check.c's reject_unverified_address: the
// answer the cache has, asked again while a probe is out, then the reply
// for what it says.
func (e *eval) rejectUnverified(addr, replyClass string, r VerifyReplies) status {
	dsn := "4.1.1"
	if replyClass == rcSender {
		dsn = "4.1.7"
	}
	rec, err := e.queryVerify(addr)
	if err != nil {
		if e.ctx.Err() != nil {
			return dunno // the client left
		}
		if e.l.verify.outage.Failed(time.Now()) {
			e.warning("address verification service failure: %v", err)
		}
		return e.deferIfPermit(!r.Defer, classPolicy, 450, dsn,
			fmt.Sprintf("<%s>: %s rejected: address verification problem", addr, replyClass))
	}
	if e.l.verify.outage.Recovered() {
		e.info("address verification service answers again")
	}
	code := 0
	switch rec.Status {
	case greylist.VerifyTodo, greylist.VerifyDefer:
		code = r.DeferCode
	case greylist.VerifyBounce:
		code = r.RejectCode
	}
	if code < 400 {
		return dunno
	}
	why := rec.Text
	if r.Reason != "" {
		why = r.Reason
	}
	if code/100 == 4 {
		// Postfix cuts this text at 250 characters, not the other.
		if len(why) > 250 {
			why = why[:250]
		}
		return e.deferIfPermit(!r.Defer, classPolicy, code, dsn,
			fmt.Sprintf("<%s>: %s rejected: unverified address: %s", addr, replyClass, why))
	}
	return e.reject(classPolicy, code, dsn, fmt.Sprintf("<%s>: %s rejected: undeliverable address: %s", addr, replyClass, why))
}

// queryVerify asks the cache, sends the probe it asks for, and while
// there is no answer asks again, up to the poll count.
func (e *eval) queryVerify(addr string) (greylist.VerifyRecord, error) {
	o := &e.l.opts.Verify
	store := e.l.opts.StateStore
	if store == nil {
		return greylist.VerifyRecord{}, errors.New("no state store configured")
	}
	if o.Prober == nil {
		return greylist.VerifyRecord{}, errors.New("no prober configured")
	}
	for count := 0; ; {
		rec, probe, err := store.VerifyQuery(e.ctx, addr, time.Now(), o.Policy)
		if err != nil {
			return rec, err
		}
		if probe {
			e.l.verify.start(e.ctx, store, o, addr)
		}
		if rec.Status != greylist.VerifyTodo {
			return rec, nil
		}
		if count++; count >= o.PollCount {
			return rec, nil
		}
		t := time.NewTimer(o.PollDelay)
		select {
		case <-e.l.verify.done(addr):
		case <-t.C:
		case <-e.ctx.Done():
		}
		t.Stop()
		if e.ctx.Err() != nil {
			return rec, e.ctx.Err()
		}
	}
}

// start sends a probe for addr in the background: it outlives the
// session that asked for it, as Postfix's probe message does, bounded
// by the probe TTL after which another node may probe anyway.
func (v *verifier) start(ctx context.Context, store greylist.Store, o *VerifyOptions, addr string) {
	key := strings.ToLower(addr)
	done := make(chan struct{})
	v.mu.Lock()
	v.pending[key] = done
	v.mu.Unlock()
	ttl := o.Policy.ProbeTTL
	if ttl <= 0 {
		ttl = greylist.DefaultProbeTTL
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ttl)
	go func() {
		defer cancel()
		rec := greylist.VerifyRecord{Status: greylist.VerifyDefer, Text: "address verification probe not sent in time"}
		select {
		case v.slots <- struct{}{}:
			rec = o.Prober.Probe(ctx, addr)
			<-v.slots
		case <-ctx.Done():
		}
		// A store that fails now leaves the record to its probe TTL:
		// the address is probed again after it.
		if err := store.VerifyUpdate(ctx, addr, rec, time.Now(), o.Policy); err != nil && o.Warn != nil {
			o.Warn("%s: the probe's answer was not stored: %v", addr, err)
		}
		v.mu.Lock()
		if v.pending[key] == done {
			delete(v.pending, key)
		}
		v.mu.Unlock()
		close(done)
	}()
}

// done is closed when this node's probe of addr has its answer stored;
// nil (never ready) when this node has none out.
func (v *verifier) done(addr string) <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pending[strings.ToLower(addr)]
}
