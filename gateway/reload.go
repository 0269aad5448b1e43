package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"postgate/gateway/config"
)

// Reload re-reads the configuration (postfix reload, SIGHUP) and applies it
// without dropping a session: each listener's service runtime is rebuilt
// (restrictions, tables, limits, header and body checks, rewriting,
// postscreen settings) and swapped in for the connections accepted from
// then on, while sessions in progress finish on the runtime they started
// with. Address resolution (relay_domains, transport_maps, relayhost, ...)
// is swapped for the queue manager too. A configuration that does not
// load leaves the running one in place and is reported.
//
// What the process set up once stays until a restart, and a change to it
// is logged as a warning: master.cf's listeners, the queue and its
// directory, the mail log, the resolver, and the queue manager's own
// settings (backoff, lifetimes, concurrency, the SMTP client's identity).
func (g *Gateway) Reload() error {
	if g.opts.Load == nil {
		return errors.New("reload: the gateway was not started from a configuration directory")
	}
	cfg, err := g.opts.Load()
	if err == nil {
		err = g.apply(cfg)
	}
	if err != nil {
		g.log.Logf("master", "warning: reload: %v: the running configuration stays", err)
		return err
	}
	g.log.Logf("master", "reload -- %s", g.opts.Describe)
	return nil
}

func (g *Gateway) apply(cfg *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.stopping {
		return errors.New("the gateway is stopping")
	}
	tables := newTableCache(g.tables.warn, tableCacheOptions(cfg))
	tables.states = g.tables.states // Redis connections and memory state live on
	rt, err := newRoute(cfg, tables)
	if err != nil {
		return err
	}
	services, _, err := buildServices(cfg, tables, g.dns)
	if err != nil {
		return err
	}
	if len(services) != len(g.services) {
		return fmt.Errorf("master.cf now has %d smtpd services instead of %d: restart to apply", len(services), len(g.services))
	}
	for i, s := range services {
		old := g.services[i]
		if s.name != old.name || !slices.Equal(s.addrs, old.addrs) || s.maxProc != old.maxProc ||
			(s.postscreen == nil) != (old.postscreen == nil) || (s.proxyTimeout == 0) != (old.proxyTimeout == 0) {
			return fmt.Errorf("%s: service %s changed its listener: restart to apply", s.pos, s.name)
		}
		// What the process keeps: the queue, the log, the sessions in
		// progress (load) and the go-smtp server serving the socket. The
		// anvil counters live in the state store, which outlives a reload.
		s.log, s.store, s.budget, s.spoolDir, s.metrics = old.log, old.store, old.budget, old.spoolDir, old.metrics
		s.ctx, s.server, s.load = g.sessions, old.server, old.load
		if s.postscreen != nil {
			s.postscreen.adopt(old.postscreen)
		}
	}
	for _, name := range restartParams(g.cfg, cfg) {
		g.log.Logf("master", "warning: reload: %s changed: it takes effect after a restart", name)
	}
	for _, nl := range g.listeners {
		l := nl.(*listener)
		i := slices.Index(g.services, l.svc.Load())
		l.svc.Store(services[i])
	}
	g.delivery.route.Store(rt)
	g.services, g.cfg, g.tables = services, cfg, tables
	return nil
}

// restartOnly are the parameters read once, when the process starts.
var restartOnly = []string{
	"queue_directory", "maillog_file", "syslog_name", "postgate_dns_servers", "postgate_memory_limit",
	"postgate_queue_segment_size", "enable_long_queue_ids", "queue_minfree", "postgate_reserved_session_slots",
	"postgate_metrics_address",
	"smtp_bind_address", "smtp_helo_name", "smtp_tcp_port", "smtp_line_length_limit",
	"minimal_backoff_time", "maximal_backoff_time", "queue_run_delay", "maximal_queue_lifetime",
	"bounce_queue_lifetime", "delay_warning_time", "bounce_size_limit", "notify_classes",
	"bounce_notice_recipient", "delay_notice_recipient", "2bounce_notice_recipient",
	"default_destination_concurrency_limit", "default_destination_recipient_limit",
}

// restartParams lists what changed between old and cfg among the
// parameters a reload does not apply, including any transport's
// *_destination_concurrency_limit and *_destination_recipient_limit.
func restartParams(old, cfg *config.Config) []string {
	names := slices.Clone(restartOnly)
	for _, c := range []*config.Config{old, cfg} {
		for _, line := range c.NonDefault() {
			name, _, _ := strings.Cut(line, " = ")
			if strings.HasSuffix(name, "_destination_concurrency_limit") || strings.HasSuffix(name, "_destination_recipient_limit") {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
	}
	var changed []string
	for _, name := range names {
		if old.Get(name) != cfg.Get(name) {
			changed = append(changed, name)
		}
	}
	return changed
}
