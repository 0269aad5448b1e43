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
	"sync"
	"time"

	"postgate/gateway/config"
	"postgate/gateway/resolver"
	"postgate/queue"
)

// Options are the parts of a gateway that tests and the command line set.
type Options struct {
	LogOutput io.Writer    // mail log when maillog_file is empty; nil = stderr
	Syncer    queue.Syncer // queue fsync; nil = fdatasync
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
}

// Check compiles everything the daemon would (restriction lists, tables,
// listener addresses) without opening the queue or any socket. It returns
// notices for names postgate knows but does not implement yet; warn gets
// the tables' warnings (duplicate keys).
func Check(cfg *config.Config, warn func(msg string)) ([]string, error) {
	tables := newTableCache(warn)
	if _, err := newRoute(cfg, tables); err != nil {
		return nil, err
	}
	if _, err := smtpTLSOptions(cfg, tables); err != nil {
		return nil, err
	}
	_, notices, err := buildServices(cfg, tables, nil)
	return notices, err
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
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	log, err := OpenMailLog(cfg.Get("maillog_file"), out, cfg.Get("syslog_name"), cfg.Get("myhostname"))
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

func newGateway(cfg *config.Config, opts Options, log *MailLog) (*Gateway, error) {
	// Table problems that do not stop a table (duplicate keys, a reload
	// that failed) are logged as Postfix's processes log them.
	tables := newTableCache(func(msg string) { log.Logf("smtpd", "warning: %s", msg) })
	rt, err := newRoute(cfg, tables)
	if err != nil {
		return nil, err
	}
	dns, err := resolver.New(resolver.Options{Servers: cfg.List("postgate_dns_servers")})
	if err != nil {
		return nil, paramError(cfg, "postgate_dns_servers", err)
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
	g := &Gateway{cfg: cfg, log: log, store: store, services: services, delivery: d, tables: tables}
	a := newAnvil(cfg.Duration("anvil_rate_time_unit"))
	for _, s := range services {
		s.log, s.store, s.anvil, s.budget, s.spoolDir = log, store, a, budget, spool
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
			g.listeners = append(g.listeners, &listener{Listener: nl, svc: s})
		}
	}
	var err error
	if g.control, err = listenControl(g.cfg.Get("queue_directory")); err != nil {
		g.closeListeners()
		return err
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
	for _, s := range g.services {
		s.ctx = sessions
	}
	// The queue manager delivers until the sessions are over.
	manager, endManager := context.WithCancel(context.WithoutCancel(ctx))
	defer endManager()
	managerDone := make(chan error, 1)
	go func() { managerDone <- g.store.RunManager(manager, g.delivery.opts) }()
	if g.control != nil {
		go g.serveControl(manager, g.control)
	}
	for _, l := range g.listeners {
		l := l.(*listener)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.svc.server.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
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
	for _, s := range g.services {
		if e := s.server.Shutdown(stop); e != nil {
			s.server.Close()
		}
	}
	wg.Wait()
	endSessions()
	endManager()
	if e := <-managerDone; e != nil && !errors.Is(e, context.Canceled) && err == nil {
		err = e
	}
	g.delivery.smtp.Close()
	g.tables.closeStates()
	if e := g.store.Close(); err == nil {
		err = e
	}
	if e := g.log.Close(); err == nil {
		err = e
	}
	return err
}
