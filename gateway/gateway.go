// Package gateway is postgate's SMTP server side: the listeners of
// master.cf, the go-smtp sessions, the order of the stages, message
// reception into the queue, and the mail log.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"postgate/gateway/config"
	"postgate/gateway/metrics"
	"postgate/gateway/resolver"
	"postgate/queue"
	"postgate/relay"
	"postgate/rules/route"
)

// Options are the parts of a gateway that tests and the command line set.
type Options struct {
	LogOutput io.Writer    // mail log when maillog_file is empty; nil = stderr
	Syncer    queue.Syncer // queue fsync; nil = fdatasync
	// Load reads the configuration again, for Reload; nil: no reload.
	Load func() (*config.Config, error)
	// Describe ends the start and reload log lines: "version V,
	// configuration DIR", as Postfix's master logs them.
	Describe string
}

// Gateway is a running postgate: its queue, its mail log and one service
// per master.cf smtpd listener.
type Gateway struct {
	cfg       *config.Config
	log       *MailLog
	store     *queue.Store
	services  []*service
	listeners []net.Listener
	control   net.Listener // the admin's control socket (control.go)
	delivery  *delivery
	tables    *tableCache // the runtime's tables and state stores
	opts      Options
	dns       dnsResolver
	// reloadMu orders reloads, and Serve's start against them.
	reloadMu  sync.Mutex
	sessions  context.Context // Serve's, for the services a reload builds
	stopping  bool
	pickupNow chan struct{} // postgate sendmail wrote to the maildrop
	metrics   *metrics.Metrics
	metricsL  net.Listener // postgate_metrics_address, nil for none
}

// Check compiles everything the daemons would (restriction lists, postgate
// policyd's too, tables, listener addresses) without opening the queue or
// any socket. It returns notices for names postgate knows but does not
// implement yet; warn gets the tables' warnings (duplicate keys).
func Check(cfg *config.Config, warn func(msg string)) ([]string, error) {
	tables := newTableCache(warn, tableCacheOptions(cfg))
	rt, err := newRoute(cfg, tables)
	if err != nil {
		return nil, err
	}
	for _, client := range []string{"smtp", "lmtp"} {
		if _, err := clientTLSOptions(cfg, client, tables); err != nil {
			return nil, err
		}
	}
	routes := new(atomic.Pointer[route.Resolver])
	routes.Store(rt)
	if err := smtpClientOptions(cfg, tables, routes, &relay.Options{}); err != nil {
		return nil, err
	}
	_, notices, err := buildServices(cfg, tables, nil)
	if err != nil {
		return nil, err
	}
	// postgate policyd's list, from the same main.cf.
	l, err := policydLists(cfg, tables, nil)
	if err != nil {
		return nil, err
	}
	for _, n := range l.NotImplemented() {
		if !slices.Contains(notices, n) {
			notices = append(notices, n)
		}
	}
	return notices, nil
}

func buildServices(cfg *config.Config, tables *tableCache, dns dnsResolver) ([]*service, []string, error) {
	var out []*service
	var notices []string
	seen := map[string]bool{}
	// No smtpd service is only a warning (config says it): the queue still runs.
	for _, svc := range cfg.Services() {
		s, ni, err := buildService(cfg.ForService(svc), cfg.Stressed(svc), svc, tables, dns)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range ni {
			if !seen[n] {
				seen[n] = true
				notices = append(notices, n)
			}
		}
		out = append(out, s)
	}
	return out, notices, nil
}

// New builds the runtime from cfg, opens the mail log and the queue. It
// binds no socket yet.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	log, err := openMailLog(cfg, opts)
	if err != nil {
		return nil, err
	}
	g, err := newGateway(cfg, opts, log)
	if err != nil {
		log.Close()
		return nil, err
	}
	return g, nil
}

// openMailLog opens maillog_file, else logs to opts.LogOutput or stderr.
func openMailLog(cfg *config.Config, opts Options) (*MailLog, error) {
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	return OpenMailLog(cfg.Get("maillog_file"), out, cfg.Get("syslog_name"), cfg.Get("myhostname"))
}

// newResolver is the one DNS resolver of a runtime.
func newResolver(cfg *config.Config) (*resolver.Resolver, error) {
	dns, err := resolver.New(resolver.Options{Servers: cfg.List("postgate_dns_servers")})
	if err != nil {
		return nil, paramError(cfg, "postgate_dns_servers", err)
	}
	return dns, nil
}

func newGateway(cfg *config.Config, opts Options, log *MailLog) (*Gateway, error) {
	// Table problems that do not stop a table (duplicate keys, a reload
	// that failed) are logged as Postfix's processes log them.
	tables := newTableCache(func(msg string) { log.Logf("smtpd", "warning: %s", msg) }, tableCacheOptions(cfg))
	rt, err := newRoute(cfg, tables)
	if err != nil {
		return nil, err
	}
	dns, err := newResolver(cfg)
	if err != nil {
		return nil, err
	}
	services, _, err := buildServices(cfg, tables, dns)
	if err != nil {
		return nil, err
	}
	qdir := cfg.Get("queue_directory")
	if err := config.CheckQueueDirectory(qdir); err != nil {
		return nil, err
	}
	store, err := queue.Open(qdir, queue.Options{
		Syncer:      opts.Syncer,
		LongIDs:     cfg.Bool("enable_long_queue_ids"),
		SegmentSize: cfg.Int("postgate_queue_segment_size"),
		MinFree:     cfg.Int("queue_minfree"),
		SizeLimit:   cfg.Int("message_size_limit"),
		Logf:        func(f string, a ...any) { log.Logf("qmgr", "warning: "+f, a...) },
	})
	if err != nil {
		return nil, fmt.Errorf("queue_directory %s: %w", qdir, err)
	}
	// Recovery read the newest segment whole (up to a segment's size):
	// give that memory back now rather than when the scavenger gets to it.
	debug.FreeOSMemory()
	var spool string
	d, err := newDelivery(cfg, rt, dns, log, tables)
	if err == nil {
		spool, err = spoolDir(qdir)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	budget := newMemBudget(cfg.Int("postgate_memory_limit"))
	setGoMemoryLimit(budget.limit)
	g := &Gateway{cfg: cfg, log: log, store: store, services: services, delivery: d, tables: tables, opts: opts, dns: dns,
		pickupNow: make(chan struct{}, 1)}
	g.metrics = newMetrics(store, dns)
	d.count(g.metrics)
	for _, s := range services {
		s.log, s.store, s.budget, s.spoolDir, s.metrics = log, store, budget, spool, g.metrics
	}
	return g, nil
}

// Listen binds every service socket.
func (g *Gateway) Listen(ctx context.Context) error {
	for _, s := range g.services {
		for _, addr := range s.addrs {
			// No TCP keepalive: smtpd_timeout bounds idle sessions, and
			// it saves four setsockopt calls per connection.
			lc := net.ListenConfig{KeepAlive: -1}
			nl, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				g.closeListeners()
				return fmt.Errorf("%s: service %s: %w", s.pos, s.name, err)
			}
			g.listeners = append(g.listeners, newListener(nl, s))
		}
	}
	var err error
	if g.control, err = listenControl(g.cfg.Get("queue_directory")); err != nil {
		g.closeListeners()
		return err
	}
	if addr := g.cfg.Get("postgate_metrics_address"); addr != "" {
		if g.metricsL, err = net.Listen("tcp", addr); err != nil {
			g.closeListeners()
			return paramError(g.cfg, "postgate_metrics_address", err)
		}
	}
	return nil
}

// Addrs lists the bound addresses, in master.cf order.
func (g *Gateway) Addrs() []net.Addr {
	out := make([]net.Addr, len(g.listeners))
	for i, l := range g.listeners {
		out[i] = l.Addr()
	}
	return out
}

func (g *Gateway) closeListeners() {
	for _, l := range g.listeners {
		l.Close()
	}
	if g.control != nil {
		g.control.Close()
	}
	if g.metricsL != nil {
		g.metricsL.Close()
	}
}

// Serve serves every listener until ctx ends, then stops gracefully:
// listeners close at once, sessions in progress get up to grace to finish,
// and the queue is closed after the last one.
func (g *Gateway) Serve(ctx context.Context, grace time.Duration) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(g.listeners))
	// Sessions outlive ctx by the grace period, so a message being
	// received when the stop comes is still queued and acknowledged.
	sessions, endSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer endSessions()
	g.reloadMu.Lock()
	g.sessions = sessions
	for _, s := range g.services {
		s.ctx = sessions
	}
	g.reloadMu.Unlock()
	if g.opts.Describe != "" {
		g.log.Logf("master", "daemon started -- %s", g.opts.Describe)
	}
	go keepProcs(sessions)
	// The queue manager delivers until the sessions are over.
	manager, endManager := context.WithCancel(context.WithoutCancel(ctx))
	defer endManager()
	managerDone := make(chan error, 1)
	go func() { managerDone <- g.store.RunManager(manager, g.delivery.opts) }()
	if g.control != nil {
		go g.serveControl(manager, g.control)
	}
	pickupDone := make(chan struct{})
	go func() {
		g.runPickup(sessions, g.pickupNow)
		close(pickupDone)
	}()
	if g.metricsL != nil {
		go func() {
			if err := g.metrics.Serve(manager, g.metricsL); err != nil {
				g.log.Logf("master", "warning: postgate_metrics_address %s: %v", g.metricsL.Addr(), err)
			}
		}()
	}
	for _, l := range g.listeners {
		l := l.(*listener)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.svc.Load().server.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if g.control != nil {
		g.control.Close()
	}
	g.reloadMu.Lock()
	g.stopping = true // no reload from here on
	g.reloadMu.Unlock()
	for _, s := range g.services {
		if e := s.server.Shutdown(stop); e != nil {
			s.server.Close()
		}
	}
	wg.Wait()
	endSessions()
	<-pickupDone // a message being picked up is queued before the queue closes
	endManager()
	if e := <-managerDone; e != nil && !errors.Is(e, context.Canceled) && err == nil {
		err = e
	}
	g.delivery.smtp.Close()
	g.delivery.lmtp.Close()
	g.tables.closeStates()
	if e := g.store.Close(); err == nil {
		err = e
	}
	if e := g.log.Close(); err == nil {
		err = e
	}
	return err
}
