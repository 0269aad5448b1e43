package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"postgate/gateway/config"
	"postgate/greylist"
	"postgate/queue"
	"postgate/relay"
	"postgate/restrictions"
	"postgate/rules/route"
)

// prober sends the address verification probes of reject_unverified_*
// (Postfix's verify(8) with its probe messages): the address is routed
// as its delivery would be (address_verify_relayhost and
// address_verify_transport_maps in place of relayhost and
// transport_maps), and the transport asks the next hop with MAIL and
// RCPT only. Nothing is queued and no content is ever sent.
type prober struct {
	route      *route.Resolver
	smtp, lmtp *relay.SMTP
	sender     string // MAIL FROM of the probes: address_verify_sender, qualified
	// others are the transports that need no network (error, discard,
	// local, virtual): they answer for a probe as for a delivery.
	others map[string]queue.Transport
	logf   func(prog, format string, args ...any)
}

// newProber builds the prober of a service; logf writes the mail log.
func newProber(cfg *config.Config, tables *tableCache, dns relay.Resolver, logf func(prog, format string, args ...any)) (*prober, error) {
	rt, err := newRouteWith(cfg, tables, "address_verify_transport_maps", "address_verify_relayhost")
	if err != nil {
		return nil, err
	}
	line := func(prog, l string) { logf(prog, "%s", l) }
	routes := new(atomic.Pointer[route.Resolver])
	routes.Store(rt)
	smtp, lmtp, err := newSMTPClients(cfg, dns, tables, routes, line)
	if err != nil {
		return nil, err
	}
	sender := cfg.Get("address_verify_sender")
	switch {
	case sender == "" || sender == "<>":
		sender = ""
	case strings.HasPrefix(sender, "@") || strings.HasSuffix(sender, "@"):
		return nil, paramError(cfg, "address_verify_sender", fmt.Errorf("%q must not start or end with '@'", sender))
	case !strings.Contains(sender, "@"):
		sender += "@" + cfg.Get("myorigin") // as trivial-rewrite qualifies it
	}
	return &prober{route: rt, smtp: smtp, lmtp: lmtp, sender: sender, logf: logf,
		others: map[string]queue.Transport{"error": errorTransport{}, "discard": discardTransport{},
			"local": localTransport{}, "virtual": localTransport{}}}, nil
}

// verifyOptions reads the address_verify_* and unverified_* parameters.
func verifyOptions(cfg *config.Config, p *prober) restrictions.VerifyOptions {
	replies := func(kind string) restrictions.VerifyReplies {
		return restrictions.VerifyReplies{
			RejectCode: int(cfg.Int("unverified_" + kind + "_reject_code")),
			DeferCode:  int(cfg.Int("unverified_" + kind + "_defer_code")),
			Defer:      cfg.Get("unverified_"+kind+"_tempfail_action") == "defer",
			Reason:     cfg.Get("unverified_" + kind + "_reject_reason"),
		}
	}
	return restrictions.VerifyOptions{
		Prober: p,
		Warn:   func(format string, args ...any) { p.logf("verify", "warning: "+format, args...) },
		Policy: greylist.VerifyPolicy{
			PositiveExpire:  cfg.Duration("address_verify_positive_expire_time"),
			PositiveRefresh: cfg.Duration("address_verify_positive_refresh_time"),
			NegativeExpire:  cfg.Duration("address_verify_negative_expire_time"),
			NegativeRefresh: cfg.Duration("address_verify_negative_refresh_time"),
		},
		PollCount: int(cfg.Int("address_verify_poll_count")),
		PollDelay: cfg.Duration("address_verify_poll_delay"),
		Recipient: replies("recipient"),
		Sender:    replies("sender"),
	}
}

// Probe implements restrictions.Prober, and logs the outcome as
// Postfix's delivery agents log a probe ("status=deliverable" or
// "status=undeliverable").
func (p *prober) Probe(ctx context.Context, addr string) greylist.VerifyRecord {
	start := time.Now()
	res, err := p.route.Resolve(ctx, addr)
	if err != nil {
		rec := greylist.VerifyRecord{Status: greylist.VerifyDefer, Text: "address resolver failure: " + err.Error()}
		p.logf("verify", "warning: %s: %s", addr, rec.Text)
		return rec
	}
	prog := res.Transport
	var r queue.Result
	switch res.Transport {
	case "smtp", "relay", "lmtp":
		t := p.smtp
		if res.Transport == "lmtp" {
			t, prog = p.lmtp, "lmtp"
		} else {
			prog = "smtp"
		}
		out := t.Deliver(ctx, &relay.Message{Nexthop: res.Nexthop, Sender: p.sender,
			Recipients: []relay.Recipient{{Addr: res.Address}}, Verify: true})[0]
		r = queue.Result{Status: queue.StatusDeferred, DSN: out.DSN, Reason: out.Reply, Relay: out.Relay}
		switch out.Status {
		case relay.Sent:
			r.Status = queue.StatusSent
		case relay.Bounced:
			r.Status = queue.StatusBounced
		}
	default:
		t, ok := p.others[res.Transport]
		if !ok {
			r = queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reason: "unknown mail transport error", Relay: "none"}
			break
		}
		env := &queue.Envelope{Sender: p.sender, Recipients: []queue.Recipient{{Addr: res.Address}}}
		r = t.Deliver(ctx, &queue.Delivery{Envelope: env, Rcpts: []int{0}, Nexthop: res.Nexthop})[0]
	}
	rec := greylist.VerifyRecord{Status: greylist.VerifyDefer, Text: r.Reason}
	status := "undeliverable"
	switch r.Status {
	case queue.StatusSent:
		rec.Status, status = greylist.VerifyOK, "deliverable"
	case queue.StatusBounced:
		rec.Status = greylist.VerifyBounce
	}
	p.logf(prog, "NOQUEUE: to=<%s>, relay=%s, delay=%s, dsn=%s, status=%s (%s)",
		addr, r.Relay, queue.FormatDelay(time.Since(start)), r.DSN, status, r.Reason)
	return rec
}
