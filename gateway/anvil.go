package gateway

import (
	"net/netip"
	"strings"
	"time"

	"postgate/gateway/config"
	"postgate/greylist"
	"postgate/rules"
)

// anvil enforces Postfix's per-client limits (the smtpd_client_*_limit
// parameters, per anvil_rate_time_unit) as Postfix's anvil(8) server
// counts them for smtpd, over the state store's Limiter: in memory for
// one node, or in Redis for every node sharing it. Windows slide (Postfix's
// restart a unit after a client's first event), and only what is let
// through counts (see greylist.Limiter).
type anvil struct {
	store greylist.Limiter
	// name is the service as the store knows it, the same on every node
	// of a pool (postgate_anvil_service_name).
	name         string
	unit         time.Duration
	countLimit   int
	rateLimit    int
	mailLimit    int
	rcptLimit    int
	authLimit    int
	newTLSLimit  int
	failureDefer bool // postgate_state_failure_action = defer
	outage       greylist.Outage
}

func newAnvil(cfg *config.Config, svc config.Service, store greylist.Limiter) *anvil {
	name := cfg.Get("postgate_anvil_service_name")
	if name == "" {
		// A pool's nodes listen on their own addresses: "10.0.0.1:25"
		// and "10.0.0.2:25" are one service, "25".
		name = svc.Name
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			name = name[i+1:]
		}
	}
	return &anvil{
		store:        store,
		name:         name,
		unit:         cfg.Duration("anvil_rate_time_unit"),
		countLimit:   int(cfg.Int("smtpd_client_connection_count_limit")),
		rateLimit:    int(cfg.Int("smtpd_client_connection_rate_limit")),
		mailLimit:    int(cfg.Int("smtpd_client_message_rate_limit")),
		rcptLimit:    int(cfg.Int("smtpd_client_recipient_rate_limit")),
		authLimit:    int(cfg.Int("smtpd_client_auth_rate_limit")),
		newTLSLimit:  int(cfg.Int("smtpd_client_new_tls_session_rate_limit")),
		failureDefer: cfg.Get("postgate_state_failure_action") == "defer",
	}
}

// key names a client's counters: per service and client address, as
// anvil's.
func (a *anvil) key(addr netip.Addr, what string) string {
	return "anvil|" + a.name + "|" + addr.String() + what
}

// counted reports whether the client's events count: clients in
// smtpd_client_event_limit_exceptions and those allowed XCLIENT do not,
// as with Postfix.
func (s *session) counted() bool { return !s.nc.exempt && !s.xclientOK }

// overLimit counts the connection, and refuses it past
// smtpd_client_connection_count_limit or
// smtpd_client_connection_rate_limit.
func (s *session) overLimit() bool {
	a := s.svc.anvil
	l := greylist.ConnLimits{Count: a.countLimit, Rate: greylist.Rate{N: a.rateLimit, Per: a.unit}}
	if !s.counted() || (l.Count == 0 && l.Rate.N == 0) {
		return false
	}
	c, err := a.store.Connect(s.ctx, a.key(s.client.addr, ""), l)
	if err != nil {
		// Whatever postgate_state_failure_action says: refusing every
		// connection while the store is away would stop the gateway (and
		// the default count limit applies to every client). Postfix's
		// smtpd, too, lets a client in when anvil does not answer.
		if s.ctx.Err() == nil {
			s.anvilWarn(err, "the connection is let through (connection limits fail open)")
		}
		return false
	}
	s.anvilAnswered()
	if c.Allowed {
		s.anvilConn = c
		return false
	}
	s.svc.log.Logf("smtpd", "warning: Connection %s limit exceeded: %d from %s for service %s", c.Over, c.N, s.client, s.svc.name)
	s.reply(rules.Reply{Code: 421, DSN: "4.7.0", Text: s.svc.hostname + " Error: too many connections from " + s.client.address()})
	return true
}

// disconnect ends the connection overLimit counted. The session's context
// is over by now; the gateway's still runs.
func (s *session) disconnect() {
	if !s.anvilConn.Allowed {
		return
	}
	if err := s.svc.anvil.store.Disconnect(s.svc.ctx, s.anvilConn); err != nil {
		s.anvilWarn(err, "the connection stops counting when its lease expires")
	}
}

// messageRateLimited counts a MAIL command against
// smtpd_client_message_rate_limit and answers it when over.
func (s *session) messageRateLimited() bool {
	return s.eventLimited("|mail", s.svc.anvil.mailLimit, "Message delivery request", "Error: too much mail from ")
}

// authRateLimited counts an AUTH command against
// smtpd_client_auth_rate_limit, whether or not AUTH succeeds, and
// answers it when over.
func (s *session) authRateLimited() bool {
	return s.eventLimited("|auth", s.svc.anvil.authLimit, "AUTH command", "Error: too many AUTH commands from ")
}

// recipientRateLimited counts a RCPT or VRFY command against
// smtpd_client_recipient_rate_limit and answers it when over.
func (s *session) recipientRateLimited() bool {
	return s.eventLimited("|rcpt", s.svc.anvil.rcptLimit, "Recipient address", "Error: too many recipients from ")
}

func (s *session) eventLimited(what string, limit int, event, text string) bool {
	switch s.countEvent(what, limit, event) {
	case eventDeferred:
		s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Temporary lookup failure"})
		return true
	case eventOver:
		s.reply(rules.Reply{Code: 450, DSN: "4.7.1", Text: text + s.client.address()})
		return true
	}
	return false
}

type eventOutcome int

const (
	eventAllowed  eventOutcome = iota
	eventOver                  // past the limit: logged
	eventDeferred              // the store failed and postgate_state_failure_action says defer
)

// countEvent records one event of what against limit per
// anvil_rate_time_unit, and logs Postfix's warning when it is past it.
func (s *session) countEvent(what string, limit int, event string) eventOutcome {
	a := s.svc.anvil
	if limit == 0 || !s.counted() {
		return eventAllowed
	}
	c, err := a.store.Event(s.ctx, a.key(s.client.addr, what), greylist.Rate{N: limit, Per: a.unit})
	if err != nil {
		if s.anvilFailed(err) {
			return eventDeferred
		}
		return eventAllowed
	}
	s.anvilAnswered()
	if c.Allowed {
		return eventAllowed
	}
	s.svc.log.Logf("smtpd", "warning: %s rate limit exceeded: %d from %s for service %s", event, c.N, s.client, s.svc.name)
	return eventOver
}

// newTLSLimited counts a new (not resumed) TLS session against
// smtpd_client_new_tls_session_rate_limit once its handshake is done, and
// past it ends the session as Postfix does: 421, and hang up. (Postfix
// also refuses STARTTLS with 454 when the rate is already past the
// limit; the state store counts only what it lets through, so here the
// refusal comes after the handshake.) A store failure lets it through,
// as for connections.
func (s *session) newTLSLimited(resumed bool) bool {
	if resumed || s.countEvent("|newtls", s.svc.anvil.newTLSLimit, "New TLS session") != eventOver {
		return false
	}
	s.reply(rules.Reply{Code: 421, DSN: "4.7.0", Text: s.svc.hostname + " Error: too many new TLS sessions from " + s.client.String()})
	s.hangup = true
	return true
}

// anvilFailed follows postgate_state_failure_action when the store cannot
// answer a command's check (let through, or defer), and reports whether
// to defer. A client that left is not the store's failure.
func (s *session) anvilFailed(err error) bool {
	if s.ctx.Err() != nil {
		return false
	}
	if s.svc.anvil.failureDefer {
		s.anvilWarn(err, "the command is deferred (postgate_state_failure_action)")
		return true
	}
	s.anvilWarn(err, "the command is let through (postgate_state_failure_action)")
	return false
}

// anvilWarn logs a store failure, at most once a minute.
func (s *session) anvilWarn(err error, what string) {
	if s.svc.anvil.outage.Failed(time.Now()) {
		s.svc.log.Logf("smtpd", "warning: anvil: %v; %s", err, what)
	}
}

// anvilAnswered notes a store answer: the first after a failure is logged.
func (s *session) anvilAnswered() {
	if s.svc.anvil.outage.Recovered() {
		s.svc.log.Logf("smtpd", "anvil: the state store answers again")
	}
}
