package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"postgate/gateway/config"
	"postgate/queue"
	"postgate/relay"
	"postgate/rules"
	"postgate/rules/route"
)

// delivery is the outbound half of a runtime: address resolution, the
// transports by name, and the notices for what could not be delivered. The
// queue manager gets it through the small interfaces queue declares.
type delivery struct {
	// route is swapped by a reload; a delivery in progress keeps the one
	// it started with.
	route *atomic.Pointer[route.Resolver]
	smtp  *relay.SMTP
	lmtp  *relay.SMTP
	opts  queue.ManagerOptions
}

// newRoute builds the one address resolver of a runtime (trivial-rewrite).
func newRoute(cfg *config.Config, tables *tableCache) (*route.Resolver, error) {
	return newRouteWith(cfg, tables, "transport_maps", "relayhost")
}

// newRouteWith is newRoute with transport_maps and relayhost read from
// the parameters named (address verification probes have their own).
func newRouteWith(cfg *config.Config, tables *tableCache, transportMaps, relayhost string) (*route.Resolver, error) {
	parent := parentMatcher(cfg)
	domains := func(param string) (*rules.DomainList, error) {
		l, err := rules.NewDomainList(cfg.List(param), parent(param), rules.WithOpener(tables.open))
		if err != nil {
			return nil, paramError(cfg, param, err)
		}
		return l, nil
	}
	var o route.Options
	var err error
	if o.MyDestination, err = domains("mydestination"); err != nil {
		return nil, err
	}
	if o.RelayDomains, err = domains("relay_domains"); err != nil {
		return nil, err
	}
	if o.VirtualAliasDomains, err = domains("virtual_alias_domains"); err != nil {
		return nil, err
	}
	if o.VirtualMailboxDomains, err = domains("virtual_mailbox_domains"); err != nil {
		return nil, err
	}
	if o.TransportMaps, err = openMaps(cfg, transportMaps, tables); err != nil {
		return nil, err
	}
	if o.RelocatedMaps, err = openMaps(cfg, "relocated_maps", tables); err != nil {
		return nil, err
	}
	if o.InetInterfaces, err = cfg.InterfaceAddrs(); err != nil {
		return nil, paramError(cfg, "inet_interfaces", err)
	}
	// proxy_interfaces: addresses a proxy or NAT forwards to us are ours
	// too (their literals are local), as in Postfix's resolver.
	for _, it := range cfg.List("proxy_interfaces") {
		a, err := netip.ParseAddr(strings.Trim(it, "[]"))
		if err != nil {
			return nil, paramError(cfg, "proxy_interfaces", fmt.Errorf("%q is not an address (host names are not supported)", it))
		}
		o.InetInterfaces = append(o.InetInterfaces, a.Unmap())
	}
	o.Myorigin, o.Mydomain, o.Myhostname = cfg.Get("myorigin"), cfg.Get("mydomain"), cfg.Get("myhostname")
	o.ParentDomainMatchesSubdomains = parent
	o.LocalTransport, o.VirtualTransport = cfg.Get("local_transport"), cfg.Get("virtual_transport")
	o.RelayTransport, o.DefaultTransport = cfg.Get("relay_transport"), cfg.Get("default_transport")
	if hops := cfg.List(relayhost); len(hops) > 0 {
		o.Relayhost = hops[0]
	}
	o.RecipientDelimiter = cfg.Get("recipient_delimiter")
	if err := senderRoutes(cfg, tables, &o); err != nil {
		return nil, err
	}
	o.HideUserUnknownTableName = !cfg.Bool("show_user_unknown_table_name")
	return route.New(o), nil
}

// newDelivery builds the queue manager's options from main.cf.
func newDelivery(cfg *config.Config, rt *route.Resolver, resolver relay.Resolver, log *MailLog, tables *tableCache) (*delivery, error) {
	routes := new(atomic.Pointer[route.Resolver])
	routes.Store(rt)
	smtp, lmtp, err := newSMTPClients(cfg, resolver, tables, routes, func(prog, line string) { log.Logf(prog, "%s", line) })
	if err != nil {
		return nil, err
	}
	d := &delivery{route: routes, smtp: smtp, lmtp: lmtp}
	smtpChecks, err := newOutboundChecks(cfg, tables, "smtp", log)
	if err != nil {
		return nil, err
	}
	lmtpChecks, err := newOutboundChecks(cfg, tables, "lmtp", log)
	if err != nil {
		return nil, err
	}
	st := smtpTransport{t: smtp, checks: smtpChecks}
	transports := map[string]queue.Transport{
		"smtp": st, "relay": st,
		"lmtp":    smtpTransport{t: lmtp, checks: lmtpChecks},
		"error":   errorTransport{},
		"discard": discardTransport{},
		"local":   localTransport{},
		"virtual": localTransport{},
	}
	concurrency, err := perTransport(cfg, "destination_concurrency_limit", transports)
	if err != nil {
		return nil, err
	}
	rcptLimit, err := perTransport(cfg, "destination_recipient_limit", transports)
	if err != nil {
		return nil, err
	}
	d.opts = queue.ManagerOptions{
		Transports:                transports,
		Router:                    router{d.route},
		Bouncer:                   newBouncer(cfg, log),
		Log:                       log,
		DestinationConcurrency:    concurrency,
		DestinationRecipientLimit: rcptLimit,
		MinimalBackoff:            cfg.Duration("minimal_backoff_time"),
		MaximalBackoff:            cfg.Duration("maximal_backoff_time"),
		QueueRunDelay:             cfg.Duration("queue_run_delay"),
		MaximalQueueLifetime:      cfg.Duration("maximal_queue_lifetime"),
		BounceQueueLifetime:       cfg.Duration("bounce_queue_lifetime"),
		DelayWarningTime:          cfg.Duration("delay_warning_time"),
		SoftBounce:                cfg.Bool("soft_bounce"),
		DefaultFilterNexthop:      cfg.Get("default_filter_nexthop"),
	}
	return d, nil
}

// newSMTPClients builds the smtp and lmtp clients from main.cf (the
// smtp_* and lmtp_* parameters), for the queue manager and for address
// verification probes; routes resolves senders for the smtp client's
// sender-dependent options, and logf writes their log lines (program
// "smtp" or "lmtp").
func newSMTPClients(cfg *config.Config, resolver relay.Resolver, tables *tableCache, routes *atomic.Pointer[route.Resolver],
	logf func(prog, line string)) (smtp, lmtp *relay.SMTP, err error) {
	smtpOpts, err := clientOptions(cfg, "smtp", resolver, tables, logf)
	if err != nil {
		return nil, nil, err
	}
	if err := smtpClientOptions(cfg, tables, routes, &smtpOpts); err != nil {
		return nil, nil, err
	}
	// Postfix's lmtp client: LHLO, a reply per recipient, port 24 by
	// default, inet:host:port and unix:/path next hops (Dovecot's LMTP).
	lmtpOpts, err := clientOptions(cfg, "lmtp", resolver, tables, logf)
	if err != nil {
		return nil, nil, err
	}
	return relay.NewSMTP(smtpOpts), relay.NewSMTP(lmtpOpts), nil
}

// servicePort is a port number or a service name from /etc/services.
func servicePort(s string) (uint16, error) {
	n, err := net.LookupPort("tcp", s)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

// perTransport reads <transport>_<suffix>, else default_<suffix>, as
// Postfix does for per-transport limits. The values are read once here:
// the queue manager asks for every delivery.
func perTransport(cfg *config.Config, suffix string, transports map[string]queue.Transport) (func(string) int, error) {
	def := int(cfg.Int("default_" + suffix))
	limits := make(map[string]int, len(transports))
	for name := range transports {
		limits[name] = def
		param := name + "_" + suffix
		if _, set := cfg.Raw(param); set {
			n, err := strconv.Atoi(cfg.Get(param))
			if err != nil || n <= 0 {
				return nil, paramError(cfg, param, fmt.Errorf("bad value %q: must be a number, 1 or more", cfg.Get(param)))
			}
			limits[name] = n
		}
	}
	return func(transport string) int {
		if n, ok := limits[transport]; ok {
			return n
		}
		return def
	}, nil
}

// router adapts rules/route to the queue manager.
type router struct {
	r *atomic.Pointer[route.Resolver]
}

func (rt router) Route(ctx context.Context, rcpt string) (string, string, error) {
	res, err := rt.r.Load().Resolve(ctx, rcpt)
	if err != nil {
		return "", "", err
	}
	return res.Transport, res.Nexthop, nil
}

// RouteFrom is Route with the sender-dependent tables.
func (rt router) RouteFrom(ctx context.Context, sender, rcpt string) (string, string, error) {
	res, err := rt.r.Load().ResolveFrom(ctx, sender, rcpt)
	if err != nil {
		return "", "", err
	}
	return res.Transport, res.Nexthop, nil
}

// smtpTransport adapts relay.SMTP to the queue manager.
type smtpTransport struct {
	t      *relay.SMTP
	checks *outboundChecks // smtp_header_checks or lmtp_header_checks and the like (smtpchecks.go); nil for none
}

func (s smtpTransport) Deliver(ctx context.Context, d *queue.Delivery) []queue.Result {
	content, err := d.Content()
	if err != nil {
		return all(d, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reason: "queue file read error: " + err.Error(), Relay: "none"})
	}
	defer content.Close()
	body, size, err := s.checks.apply(ctx, d.ID, content, d.Size)
	if err != nil {
		return all(d, checksFailure(err))
	}
	m := &relay.Message{
		QueueID: d.ID,
		Nexthop: d.Nexthop,
		Sender:  d.Envelope.Sender,
		RET:     d.Envelope.RET,
		EnvID:   d.Envelope.EnvID,
		Size:    size,
		Content: body,
	}
	for _, i := range d.Rcpts {
		r := d.Envelope.Recipients[i]
		m.Recipients = append(m.Recipients, relay.Recipient{Addr: r.Addr, Notify: r.Notify, ORCPT: r.ORCPT, Orig: cmp.Or(r.Orig, r.Addr)})
	}
	results := s.t.Deliver(ctx, m)
	out := make([]queue.Result, len(results))
	replies := replyConverter{}
	for i, r := range results {
		out[i] = queue.Result{DSN: r.DSN, Reason: r.Reply, Relay: r.Relay, Reply: replies.convert(r.Remote), ConnSetup: r.Conn, Xfer: r.Xfer, ConnUse: r.ConnUse}
		switch r.Status {
		case relay.Sent:
			out[i].Status = queue.StatusSent
		case relay.Bounced:
			out[i].Status = queue.StatusBounced
		default:
			out[i].Status = queue.StatusDeferred
		}
	}
	return out
}

func all(d *queue.Delivery, r queue.Result) []queue.Result {
	out := make([]queue.Result, len(d.Rcpts))
	for i := range out {
		out[i] = r
	}
	return out
}

// errorTransport bounces with the text of its next hop (transport_maps
// "error:5.1.1 no such user"), as Postfix's error(8).
type errorTransport struct{}

func (errorTransport) Deliver(_ context.Context, d *queue.Delivery) []queue.Result {
	dsn, text := "5.0.0", d.Nexthop
	if n := rules.ValidDSN(text); n > 0 {
		dsn, text = text[:n], strings.TrimSpace(text[n:])
	}
	st := queue.StatusBounced
	if dsn[0] == '4' {
		st = queue.StatusDeferred
	}
	return all(d, queue.Result{Status: st, DSN: dsn, Reason: text, Relay: "none"})
}

// discardTransport accepts and drops, as Postfix's discard(8).
type discardTransport struct{}

func (discardTransport) Deliver(_ context.Context, d *queue.Delivery) []queue.Result {
	text := "discarded"
	if d.Nexthop != "" {
		text = d.Nexthop
	}
	return all(d, queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reason: text, Relay: "none"})
}

// localTransport stands where Postfix delivers to mailboxes: postgate does
// no mailbox delivery, so mail whose address class is local (mydestination)
// or virtual mailbox, and that no alias or transport_maps entry routes
// elsewhere, bounces with a reason that says what to do.
type localTransport struct{}

func (localTransport) Deliver(_ context.Context, d *queue.Delivery) []queue.Result {
	out := make([]queue.Result, len(d.Rcpts))
	for i, idx := range d.Rcpts {
		addr := d.Envelope.Recipients[idx].Addr
		out[i] = queue.Result{Status: queue.StatusBounced, DSN: "5.1.1", Relay: "none",
			Reason: fmt.Sprintf("mail for <%s> is addressed to a local domain and postgate does no mailbox delivery: route the domain with relay_domains or transport_maps", addr)}
	}
	return out
}
