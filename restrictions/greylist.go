package restrictions

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"postgate/greylist"
	"postgate/restrictions/spf"
)

// GreylistOptions configure check_greylist (postgate's restriction; the
// postgate_greylist_* and postgate_state_* parameters).
type GreylistOptions struct {
	Policy     greylist.Policy
	IPv4Prefix int // bits of an IPv4 client that name its network (0: 24)
	IPv6Prefix int // ... of an IPv6 client (0: 64)
	// Text follows "<rcpt>: Recipient address rejected: " in the 450
	// reply, as postgrey's --greylist-text: %r is the recipient's domain,
	// %s the seconds left to wait, %% a percent sign. "": DefaultGreylistText.
	Text string
	// Tables of clients (address, then name: check_client_access's keys),
	// senders and recipients (check_*_access's address keys) that are
	// never greylisted; any value but DUNNO allowlists.
	ClientAllowlist, SenderAllowlist, RecipientAllowlist []string
	// FailureDefer: when the store fails, answer 451 4.3.0 rather than
	// let the recipient through (postgate_state_failure_action = defer;
	// the rate checks follow it too).
	FailureDefer bool
	// Skip lists who is never greylisted (postgate_greylist_skip):
	// "dnswl", a client that permit_dnswl_client or permit_rhswl_client
	// found listed in this session; "spf_pass", a transaction whose SPF
	// result is pass.
	Skip []string
}

// DefaultGreylistText is postgrey's default --greylist-text.
const DefaultGreylistText = "Greylisted, see http://postgrey.schweikert.ch/help/%r.html"

// greylister is what check_greylist steps share: the store, the opened
// allowlists and the outage warning state.
type greylister struct {
	store                        greylist.Store
	opts                         GreylistOptions
	clients, senders, recipients []*tableRef
	skipDNSWL, skipSPFPass       bool

	outage greylist.Outage
}

// greylistTables opens the allowlists (so a bad table stops the start,
// whether or not a list names check_greylist yet).
func (c *compiler) greylistTables() error {
	o := c.l.opts.Greylist
	g := &greylister{store: c.l.opts.StateStore, opts: o}
	for _, t := range []struct {
		param string
		specs []string
		dst   *[]*tableRef
	}{{"postgate_greylist_client_allowlist_maps", o.ClientAllowlist, &g.clients},
		{"postgate_greylist_sender_allowlist_maps", o.SenderAllowlist, &g.senders},
		{"postgate_greylist_recipient_allowlist_maps", o.RecipientAllowlist, &g.recipients}} {
		for _, spec := range t.specs {
			tr, err := c.table(spec)
			if err != nil {
				return &ParamError{Param: t.param, Err: err}
			}
			*t.dst = append(*t.dst, tr)
		}
	}
	for _, w := range o.Skip {
		switch strings.ToLower(w) {
		case "dnswl":
			g.skipDNSWL = true
		case "spf_pass":
			g.skipSPFPass = true
		default:
			return &ParamError{Param: "postgate_greylist_skip", Err: fmt.Errorf("unknown %q: want dnswl or spf_pass", w)}
		}
	}
	c.l.greylist = g
	return nil
}

// buildCheckGreylist: check_greylist, at RCPT only. A new triplet or an
// early retry raises defer_if_permit with the greylist reply, as postgrey
// answers DEFER_IF_PERMIT, so a later reject still wins.
func buildCheckGreylist(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if e.stage != Rcpt || !e.hasRecipient || !e.req.ClientAddr.IsValid() {
			return dunno
		}
		g := e.l.greylist
		if st, skip := e.greylistAllowed(g); skip {
			return st
		}
		if g.skipDNSWL && e.txn.dnswlListed == e.req.ClientAddr {
			return dunno
		}
		if g.skipSPFPass {
			if o, ok := e.spfOutcome(); ok && o.Result == spf.Pass {
				return dunno
			}
		}
		if g.store == nil {
			e.warning("check_greylist: no state store configured")
			return e.serverError()
		}
		k := greylist.NewKey(e.req.ClientAddr, g.opts.IPv4Prefix, g.opts.IPv6Prefix, e.req.Sender, e.recipient)
		now := time.Now()
		r, err := g.store.Greylist(e.ctx, k, now, g.opts.Policy)
		if err != nil && e.ctx.Err() != nil {
			return dunno // the client left: not the store's failure
		}
		if err != nil {
			return e.stateFailure(&g.outage, "check_greylist", err, e.recipient)
		}
		if g.outage.Recovered() {
			e.info("check_greylist: the state store answers again")
		}
		if !r.Greylisted() {
			return dunno
		}
		left := g.opts.Policy.Delay - now.Sub(r.FirstSeen)
		text := greylistText(g.opts.Text, e.recipient, int64(math.Ceil(max(left.Seconds(), 0))))
		return e.deferIfPermit(true, classPolicy, 450, "4.2.0", fmt.Sprintf("<%s>: %s rejected: %s", e.recipient, rcRecipient, text))
	}
}

// greylistAllowed looks the client, sender and recipient up in the
// allowlists; a failing table answers 451 4.3.5 as an access table does.
func (e *eval) greylistAllowed(g *greylister) (status, bool) {
	try := func(trs []*tableRef, keys []lookupKey) (status, bool) {
		for _, tr := range trs {
			for _, k := range keys {
				v, ok, err := e.find(tr, k.key, k.partial)
				if err != nil {
					e.warning("%s: table lookup problem for %q: %v", tr.spec, k.key, err)
					return e.serverError(), true
				}
				if ok && !strings.EqualFold(strings.TrimSpace(v), "DUNNO") {
					return dunno, true
				}
			}
		}
		return dunno, false
	}
	if len(g.clients) > 0 {
		if st, done := try(g.clients, clientKeys(e.req.addr(), e.req.clientName())); done {
			return st, true
		}
	}
	for _, a := range []struct {
		trs  []*tableRef
		addr string
	}{{g.senders, e.req.Sender}, {g.recipients, e.recipient}} {
		if len(a.trs) == 0 || a.addr == "" {
			continue
		}
		r, err := e.resolve(a.addr)
		if err != nil {
			e.warning("%s: %v", a.addr, err)
			return e.dictRetry(a.addr), true
		}
		if !r.qualified {
			continue
		}
		if st, done := try(a.trs, e.mailKeys(r)); done {
			return st, true
		}
	}
	return dunno, false
}

// clientKeys are check_client_access's keys without the name's parent
// domains: the address and its prefixes (1.2.3.4, 1.2.3, 1.2, 1), then the
// name.
func clientKeys(addr, name string) []lookupKey {
	delim := byte('.')
	if strings.Contains(addr, ":") {
		delim = ':'
	}
	keys := []lookupKey{{addr, false}}
	for k := addr; ; {
		i := strings.LastIndexByte(k, delim)
		if i <= 0 {
			break
		}
		k = k[:i]
		keys = append(keys, lookupKey{k, true})
	}
	if !strings.EqualFold(name, "unknown") {
		keys = append(keys, lookupKey{name, false})
	}
	return keys
}

// greylistText expands postgrey's %r (recipient domain) and %s (seconds
// to wait).
func greylistText(text, rcpt string, left int64) string {
	if text == "" {
		text = DefaultGreylistText
	}
	_, domain, _ := strings.Cut(rcpt, "@")
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		if text[i] != '%' || i+1 == len(text) {
			b.WriteByte(text[i])
			continue
		}
		switch i++; text[i] {
		case 'r':
			b.WriteString(domain)
		case 's':
			b.WriteString(strconv.FormatInt(left, 10))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(text[i])
		}
	}
	return b.String()
}
