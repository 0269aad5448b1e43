package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/gateway/config"
	"postgate/gateway/metrics"
	"postgate/greylist"
	"postgate/policyd"
	"postgate/queue"
	"postgate/restrictions"
	"postgate/rules"
	"postgate/rules/route"
)

// service is the runtime of one master.cf smtpd listener: its parameters
// (main.cf with the service's -o overrides), compiled restrictions and the
// go-smtp server that serves its sockets.
type service struct {
	name   string
	addrs  []string
	ctx    context.Context // ends when the gateway stops
	pos    config.Position
	log    *MailLog
	store  *queue.Store
	server *smtp.Server
	// budget (postgate_memory_limit) and spoolDir are the gateway's, shared
	// by all services: message content past the budget goes to spoolDir.
	budget   *memBudget
	spoolDir string
	route    *route.Resolver

	hostname, banner, mailName string
	errorSleep                 time.Duration
	lineLimit                  int
	recipientLimit             int
	recipientOvershootLimit    int
	messageSizeLimit           int64
	maxProc                    int

	// normal and stressed are the ${stress?...} settings: the service is
	// under stress while load says so (listener.go).
	normal, stressed     limits
	load                 *load
	anvil                *anvil
	eventLimitExceptions *rules.AddrList

	delayReject            bool
	heloRequired           bool
	strictRFC821           bool
	smtputf8               bool
	strictSMTPUTF8         bool
	disableVrfy            bool
	softBounce             bool
	forbidUnauthPipelining bool
	clientPortLogging      bool
	peernameLookup         bool        // smtpd_peername_lookup
	dns                    dnsResolver // nil in check
	spfHeader              string      // postgate_spf_received_header
	ipv4, ipv6             bool        // inet_protocols

	noopCommands      *rules.StringList
	forbiddenCommands *rules.StringList
	ehloDiscardWords  ehloMask
	ehloDiscardMaps   []rules.Table
	rejectFooter      string
	rejectFooterMaps  []rules.Table
	xclientHosts      *rules.AddrList
	xforwardHosts     *rules.AddrList
	fastFlushDomains  *rules.DomainList

	bareLF           bareLFMode
	bareLFCode       int
	bareLFExclusions *rules.AddrList

	checks                   contentChecks
	virtual                  virtualAliases
	canonical                *canonical
	bcc                      autoBCC        // sender_bcc_maps, recipient_bcc_maps, always_bcc (bcc.go)
	auth                     *authenticator // nil: no DKIM, DMARC (auth.go)
	contentFilter            string         // content_filter: transport:destination, "" for none
	queueMinFree             int64          // queue_minfree, for MAIL SIZE=
	lists                    *restrictions.Lists
	restrictionOpts          restrictions.Options // what lists was compiled with (postgate policyd compiles its own list with them)
	hasDataRestrictions      bool
	hasEndOfDataRestrictions bool
	postscreen               *postscreen      // nil unless master.cf runs postscreen for the service
	metrics                  *metrics.Metrics // the process's, shared by all services
	sasl                     saslSettings
	// tlsAuthOnly: smtpd_tls_auth_only (AUTH only after STARTTLS).
	tlsAuthOnly bool
	// proxyTimeout is smtpd_upstream_proxy_timeout when connections start
	// with a PROXY protocol header (smtpd_upstream_proxy_protocol), else 0.
	proxyTimeout time.Duration
	milters      *milterConfig
	tls          *serverTLS
	proxy        *proxyFilter // smtpd_proxy_filter (proxyfilter.go), nil for none
}

type bareLFMode int

const (
	bareLFNormalize bareLFMode = iota
	bareLFNote
	bareLFReject
)

// restrictionParams are the lists compiled for each service.
var restrictionParams = []string{
	"smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
	"smtpd_relay_restrictions", "smtpd_recipient_restrictions", "smtpd_data_restrictions",
	"smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions",
}

// tableCache opens each "type:name" once per runtime, shared by all
// services; warn gets what the tables report without failing, and cache
// is how database and network tables cache their answers (each table its
// own cache, so a reload starts them empty). It also keeps the runtime's
// state stores, one per postgate_state_store value.
type tableCache struct {
	m      map[string]rules.Table
	warn   func(msg string)
	cache  rules.CacheOptions
	states map[string]greylist.Store
}

func newTableCache(warn func(msg string), cache rules.CacheOptions) *tableCache {
	return &tableCache{m: map[string]rules.Table{}, warn: warn, cache: cache, states: map[string]greylist.Store{}}
}

// tableCacheOptions are main.cf's postgate_table_* settings.
func tableCacheOptions(cfg *config.Config) rules.CacheOptions {
	return rules.CacheOptions{
		TTL:         cfg.Duration("postgate_table_cache_ttl"),
		NegativeTTL: cfg.Duration("postgate_table_cache_negative_ttl"),
		Timeout:     cfg.Duration("postgate_table_lookup_timeout"),
	}
}

// closeStates closes the state stores (Redis connections) once the
// sessions that use them are over.
func (tc *tableCache) closeStates() {
	for _, st := range tc.states {
		st.Close()
	}
}

// stateStore opens postgate_state_store once per value and timeout, so
// services share it (and one memory store is one node's state).
func (tc *tableCache) stateStore(cfg *config.Config) (greylist.Store, error) {
	spec, timeout := cfg.Get("postgate_state_store"), cfg.Duration("postgate_state_timeout")
	key := spec + " " + timeout.String()
	if st, ok := tc.states[key]; ok {
		return st, nil
	}
	st, err := greylist.Open(spec, greylist.Options{Timeout: timeout})
	if err != nil {
		return nil, paramError(cfg, "postgate_state_store", err)
	}
	tc.states[key] = st
	return st, nil
}

// greylistOptions are check_greylist's parameters.
func greylistOptions(cfg *config.Config) restrictions.GreylistOptions {
	return restrictions.GreylistOptions{
		Policy: greylist.Policy{
			Delay:            cfg.Duration("postgate_greylist_delay"),
			RetryWindow:      cfg.Duration("postgate_greylist_retry_window"),
			Lifetime:         cfg.Duration("postgate_greylist_lifetime"),
			AutoAllowClients: int(cfg.Int("postgate_greylist_auto_allowlist_clients")),
		},
		IPv4Prefix:         int(cfg.Int("postgate_greylist_ipv4_prefix")),
		IPv6Prefix:         int(cfg.Int("postgate_greylist_ipv6_prefix")),
		Text:               cfg.Get("postgate_greylist_text"),
		ClientAllowlist:    cfg.List("postgate_greylist_client_allowlist_maps"),
		SenderAllowlist:    cfg.List("postgate_greylist_sender_allowlist_maps"),
		RecipientAllowlist: cfg.List("postgate_greylist_recipient_allowlist_maps"),
		FailureDefer:       cfg.Get("postgate_state_failure_action") == "defer",
		Skip:               cfg.List("postgate_greylist_skip"),
	}
}

func (tc *tableCache) open(spec string) (rules.Table, error) {
	return tc.openWith(spec, rules.OpenOptions{Warn: tc.warn, Cache: tc.cache})
}

// openAliases opens a table in aliases(5) format (alias_maps).
func (tc *tableCache) openAliases(spec string) (rules.Table, error) {
	return tc.openWith(spec, rules.OpenOptions{Warn: tc.warn, Aliases: true, Cache: tc.cache})
}

func (tc *tableCache) openWith(spec string, o rules.OpenOptions) (rules.Table, error) {
	key := spec
	if o.Aliases {
		key = "aliases " + spec
	}
	if t, ok := tc.m[key]; ok {
		return t, nil
	}
	t, err := rules.OpenWith(spec, o)
	if err != nil {
		return nil, err
	}
	tc.m[key] = t
	return t, nil
}

// openMaps opens the tables a parameter lists; those alias_maps also
// names are read as aliases(5) files.
func openMaps(cfg *config.Config, param string, tables *tableCache) ([]rules.Table, error) {
	aliases := map[string]bool{}
	for _, spec := range cfg.List("alias_maps") {
		aliases[spec] = true
	}
	var out []rules.Table
	for _, spec := range cfg.List(param) {
		open := tables.open
		if aliases[spec] {
			open = tables.openAliases
		}
		t, err := open(spec)
		if err != nil {
			return nil, paramError(cfg, param, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// buildService compiles one listener's runtime. Errors name the parameter
// and where it was set.
func buildService(cfg, stressed *config.Config, svc config.Service, tables *tableCache, dns dnsResolver) (*service, []string, error) {
	s := &service{
		dns:                     dns,
		name:                    svc.Name,
		pos:                     svc.Pos,
		hostname:                cfg.Get("myhostname"),
		banner:                  cfg.Get("smtpd_banner"),
		mailName:                cfg.Get("mail_name"),
		errorSleep:              cfg.Duration("smtpd_error_sleep_time"),
		normal:                  limitsOf(cfg),
		stressed:                limitsOf(stressed),
		lineLimit:               int(cfg.Int("line_length_limit")),
		recipientLimit:          int(cfg.Int("smtpd_recipient_limit")),
		recipientOvershootLimit: int(cfg.Int("smtpd_recipient_overshoot_limit")),
		messageSizeLimit:        cfg.Int("message_size_limit"),
		queueMinFree:            cfg.Int("queue_minfree"),
		maxProc:                 svc.MaxProc,
		delayReject:             cfg.Bool("smtpd_delay_reject"),
		heloRequired:            cfg.Bool("smtpd_helo_required"),
		strictRFC821:            cfg.Bool("strict_rfc821_envelopes"),
		smtputf8:                cfg.Bool("smtputf8_enable"),
		strictSMTPUTF8:          cfg.Bool("strict_smtputf8"),
		disableVrfy:             cfg.Bool("disable_vrfy_command"),
		softBounce:              cfg.Bool("soft_bounce"),
		forbidUnauthPipelining:  cfg.Bool("smtpd_forbid_unauth_pipelining"),
		clientPortLogging:       cfg.Bool("smtpd_client_port_logging"),
		peernameLookup:          cfg.Bool("smtpd_peername_lookup"),
		ehloDiscardWords:        parseEHLOMask(cfg.Get("smtpd_discard_ehlo_keywords")),
		rejectFooter:            cfg.Get("smtpd_reject_footer"),
		bareLFCode:              int(cfg.Int("smtpd_forbid_bare_newline_reject_code")),
		spfHeader:               cfg.Get("postgate_spf_received_header"),
	}
	if s.maxProc <= 0 {
		s.maxProc = int(cfg.Int("default_process_limit"))
	}
	s.ipv4, s.ipv6 = cfg.InetProtocols()
	s.load = newLoad(s.maxProc, int(cfg.Int("postgate_reserved_session_slots")))
	switch cfg.Get("smtpd_forbid_bare_newline") {
	case "note":
		s.bareLF = bareLFNote
	case "reject":
		s.bareLF = bareLFReject
	}
	addrs, err := cfg.ListenAddrs(svc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: service %s: %w", svc.Pos, svc.Name, err)
	}
	s.addrs = addrs

	// $mynetworks, computed by gateway/config when not set: one
	// computation for the restrictions and every list that names it.
	mynetworks, err := rules.NewAddrList(cfg.List("mynetworks"))
	if err != nil {
		return nil, nil, paramError(cfg, "mynetworks", err)
	}
	if err := s.buildLists(cfg, tables); err != nil {
		return nil, nil, err
	}
	// Behind postscreen, postscreen's socket is the one a balancer talks
	// to (Postfix warns and ignores the smtpd setting there too).
	if cfg.Get("smtpd_upstream_proxy_protocol") != "" && !svc.Postscreen {
		s.proxyTimeout = cfg.Duration("smtpd_upstream_proxy_timeout")
	}
	if svc.Postscreen {
		logf := func(prog, format string, args ...any) { s.log.Logf(prog, format, args...) }
		if s.postscreen, err = newPostscreen(cfg, stressed, tables, dns, mynetworks, logf); err != nil {
			return nil, nil, err
		}
	}
	parent := parentMatcher(cfg)
	relayDomains, err := rules.NewDomainList(cfg.List("relay_domains"), parent("relay_domains"))
	if err != nil {
		return nil, nil, paramError(cfg, "relay_domains", err)
	}
	mydestination, err := rules.NewDomainList(cfg.List("mydestination"), parent("mydestination"))
	if err != nil {
		return nil, nil, paramError(cfg, "mydestination", err)
	}
	classes := map[string]string{}
	for _, name := range cfg.List("smtpd_restriction_classes") {
		classes[name] = cfg.Get(name)
	}
	params := map[string]string{}
	for _, p := range restrictionParams {
		params[p] = cfg.Get(p)
	}
	if s.tls, err = newServerTLS(cfg, stressed, tables.warn); err != nil {
		return nil, nil, err
	}
	s.hasDataRestrictions = len(cfg.List("smtpd_data_restrictions")) > 0
	s.hasEndOfDataRestrictions = len(cfg.List("smtpd_end_of_data_restrictions")) > 0
	// The same address resolution as delivery, with this service's view.
	rt, err := newRoute(cfg, tables)
	if err != nil {
		return nil, nil, err
	}
	s.route = rt
	if s.virtual.maps, err = openMaps(cfg, "virtual_alias_maps", tables); err != nil {
		return nil, nil, err
	}
	for _, spec := range cfg.List("alias_maps") {
		t, err := tables.openAliases(spec)
		if err != nil {
			return nil, nil, paramError(cfg, "alias_maps", err)
		}
		s.virtual.aliases = append(s.virtual.aliases, t)
	}
	s.virtual.recursionLimit = int(cfg.Int("virtual_alias_recursion_limit"))
	s.virtual.expansionLimit = int(cfg.Int("virtual_alias_expansion_limit"))
	s.virtual.delims, s.virtual.myorigin, s.virtual.route = cfg.Get("recipient_delimiter"), cfg.Get("myorigin"), rt
	for _, f := range cfg.List("propagate_unmatched_extensions") {
		s.virtual.propagateExt = s.virtual.propagateExt || strings.EqualFold(f, "virtual")
	}
	if s.contentFilter = cfg.Get("content_filter"); s.contentFilter != "" && !strings.Contains(s.contentFilter, ":") {
		return nil, nil, paramError(cfg, "content_filter", fmt.Errorf("%q is not transport:destination", s.contentFilter))
	}
	inetInterfaces, err := cfg.InterfaceAddrs()
	if err != nil {
		return nil, nil, paramError(cfg, "inet_interfaces", err)
	}
	if s.canonical, err = newCanonical(cfg, tables, rt, mynetworks, inetInterfaces); err != nil {
		return nil, nil, err
	}
	if s.bcc, err = newAutoBCC(cfg, tables); err != nil {
		return nil, nil, err
	}
	if s.proxy, err = newProxyFilter(cfg, tables.warn); err != nil {
		return nil, nil, err
	}
	if s.auth, err = newAuthenticator(cfg, tables, dns, mynetworks, inetInterfaces); err != nil {
		return nil, nil, err
	}
	localRcpt, err := openMaps(cfg, "local_recipient_maps", tables)
	if err != nil {
		return nil, nil, err
	}
	relayRcpt, err := openMaps(cfg, "relay_recipient_maps", tables)
	if err != nil {
		return nil, nil, err
	}
	state, err := tables.stateStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	if s.sasl, err = newSASLSettings(cfg); err != nil {
		return nil, nil, err
	}
	// Enforced TLS implies it, as in Postfix.
	s.tlsAuthOnly = cfg.Bool("smtpd_tls_auth_only") || s.tls.enforced()
	senderLogin, err := openMaps(cfg, "smtpd_sender_login_maps", tables)
	if err != nil {
		return nil, nil, err
	}
	relayCcerts, err := openMaps(cfg, "relay_clientcerts", tables)
	if err != nil {
		return nil, nil, err
	}
	s.anvil = newAnvil(cfg, svc, state)
	// The mail log is the gateway's, set once the services are built;
	// probes run only after that.
	probe, err := newProber(cfg, tables, dns, func(prog, format string, args ...any) {
		if s.log != nil {
			s.log.Logf(prog, format, args...)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	overrides, err := receiveOverrides(cfg)
	if err != nil {
		return nil, nil, err
	}
	s.restrictionOpts = restrictions.Options{
		DNS:                             dns,
		InetIPv4:                        s.ipv4,
		InetIPv6:                        s.ipv6,
		Route:                           rt,
		Mynetworks:                      mynetworks,
		InetInterfaces:                  inetInterfaces,
		RelayDomains:                    relayDomains,
		MyDestination:                   mydestination,
		RejectCode:                      int(cfg.Int("reject_code")),
		DeferCode:                       int(cfg.Int("defer_code")),
		RelayDomainsRejectCode:          int(cfg.Int("relay_domains_reject_code")),
		AccessMapRejectCode:             int(cfg.Int("access_map_reject_code")),
		AccessMapDeferCode:              int(cfg.Int("access_map_defer_code")),
		InvalidHostnameRejectCode:       int(cfg.Int("invalid_hostname_reject_code")),
		NonFQDNRejectCode:               int(cfg.Int("non_fqdn_reject_code")),
		UnknownClientRejectCode:         int(cfg.Int("unknown_client_reject_code")),
		UnknownHostnameRejectCode:       int(cfg.Int("unknown_hostname_reject_code")),
		UnknownAddressRejectCode:        int(cfg.Int("unknown_address_reject_code")),
		MultiRecipientBounceRejectCode:  int(cfg.Int("multi_recipient_bounce_reject_code")),
		PlaintextRejectCode:             int(cfg.Int("plaintext_reject_code")),
		MapsRBLRejectCode:               int(cfg.Int("maps_rbl_reject_code")),
		DefaultRBLReply:                 cfg.Get("default_rbl_reply"),
		RBLReplyMaps:                    cfg.List("rbl_reply_maps"),
		ExpandReply:                     config.ExpandRequest,
		RecipientDelimiter:              cfg.Get("recipient_delimiter"),
		NullAccessLookupKey:             cfg.Get("smtpd_null_access_lookup_key"),
		LogAccessPermitActions:          cfg.List("smtpd_log_access_permit_actions"),
		LocalRecipientMaps:              localRcpt,
		RelayRecipientMaps:              relayRcpt,
		RelayClientcerts:                relayCcerts,
		AskCcert:                        cfg.Bool("smtpd_tls_ask_ccert"),
		VirtualAliasMaps:                s.virtual.maps,
		CanonicalMaps:                   s.canonical.common.tables,
		RecipientCanonicalMaps:          s.canonical.recipient.tables,
		SenderCanonicalMaps:             s.canonical.sender.tables,
		UnknownLocalRecipientRejectCode: int(cfg.Int("unknown_local_recipient_reject_code")),
		UnknownRelayRecipientRejectCode: int(cfg.Int("unknown_relay_recipient_reject_code")),
		UnknownVirtualAliasRejectCode:   int(cfg.Int("unknown_virtual_alias_reject_code")),
		HideUserUnknownTableName:        !cfg.Bool("show_user_unknown_table_name"),
		RejectUnlistedRecipient:         cfg.Bool("smtpd_reject_unlisted_recipient") && !overrides["no_unknown_recipient_checks"],
		RejectUnlistedSender:            cfg.Bool("smtpd_reject_unlisted_sender"),
		SoftBounce:                      cfg.Bool("soft_bounce"),
		DelayReject:                     cfg.Bool("smtpd_delay_reject"),
		RelayBeforeRecipient:            cfg.Bool("smtpd_relay_before_recipient_restrictions"),
		Classes:                         classes,
		ParentDomainMatchesSubdomains:   parent,
		OpenTable:                       tables.open,
		Myorigin:                        cfg.Get("myorigin"),
		Policy: policyd.Options{
			Timeout:        cfg.Duration("smtpd_policy_service_timeout"),
			MaxIdle:        cfg.Duration("smtpd_policy_service_max_idle"),
			MaxTTL:         cfg.Duration("smtpd_policy_service_max_ttl"),
			RetryDelay:     cfg.Duration("smtpd_policy_service_retry_delay"),
			RequestLimit:   int(cfg.Int("smtpd_policy_service_request_limit")),
			TryLimit:       int(cfg.Int("smtpd_policy_service_try_limit")),
			DefaultAction:  cfg.Get("smtpd_policy_service_default_action"),
			PolicyContext:  cfg.Get("smtpd_policy_service_policy_context"),
			QueueDirectory: cfg.Get("queue_directory"),
			SMTPUTF8:       cfg.Bool("smtputf8_enable"),
			// s.metrics is set once the gateway is built (none in check).
			Observe: func(server string, took time.Duration, ok bool) {
				if s.metrics != nil {
					s.metrics.Policy(server, took, ok)
				}
			},
		},
		StateStore:      state,
		Greylist:        greylistOptions(cfg),
		Verify:          verifyOptions(cfg, probe),
		SASLEnabled:     s.sasl.backend != nil,
		SenderLoginMaps: senderLogin,
	}
	s.lists, err = restrictions.Compile(params, s.restrictionOpts)
	if err != nil {
		return nil, nil, restrictionError(cfg, err)
	}
	if !s.lists.RelayGuarded() {
		return nil, nil, errors.New(restrictions.RelayGuardError)
	}
	if s.milters, err = newMilterConfig(cfg, tables); err != nil {
		return nil, nil, err
	}
	s.server = s.newServer()
	s.applyOverrides(overrides)
	return s, s.lists.NotImplemented(), nil
}

// buildLists compiles the lists and tables of the SMTP dialogue; errors
// name the parameter and where it was set.
func (s *service) buildLists(cfg *config.Config, tables *tableCache) error {
	open := rules.WithOpener(tables.open)
	var err error
	strs := []struct {
		param string
		dst   **rules.StringList
	}{{"smtpd_noop_commands", &s.noopCommands}, {"smtpd_forbidden_commands", &s.forbiddenCommands}}
	for _, l := range strs {
		if *l.dst, err = rules.NewStringList(cfg.List(l.param), open); err != nil {
			return paramError(cfg, l.param, err)
		}
	}
	addrs := []struct {
		param string
		dst   **rules.AddrList
	}{{"smtpd_authorized_xclient_hosts", &s.xclientHosts}, {"smtpd_authorized_xforward_hosts", &s.xforwardHosts},
		{"smtpd_forbid_bare_newline_exclusions", &s.bareLFExclusions},
		{"smtpd_client_event_limit_exceptions", &s.eventLimitExceptions}}
	for _, l := range addrs {
		if *l.dst, err = rules.NewAddrList(cfg.List(l.param), open); err != nil {
			return paramError(cfg, l.param, err)
		}
	}
	maps := []struct {
		param string
		dst   *[]rules.Table
	}{{"smtpd_discard_ehlo_keyword_address_maps", &s.ehloDiscardMaps}, {"smtpd_reject_footer_maps", &s.rejectFooterMaps},
		{"header_checks", &s.checks.header}, {"mime_header_checks", &s.checks.mime},
		{"nested_header_checks", &s.checks.nested}, {"body_checks", &s.checks.body}}
	for _, m := range maps {
		for _, spec := range cfg.List(m.param) {
			t, err := tables.open(spec)
			if err != nil {
				return paramError(cfg, m.param, err)
			}
			*m.dst = append(*m.dst, t)
		}
	}
	s.checks.limits = mimeLimits{disabled: cfg.Bool("disable_mime_input_processing"),
		nestingLimit: int(cfg.Int("mime_nesting_limit")), boundaryLimit: int(cfg.Int("mime_boundary_length_limit")),
		headerLimit: int(cfg.Int("header_size_limit")), lineLimit: int(cfg.Int("line_length_limit"))}
	s.checks.bodySizeLimit = cfg.Int("body_checks_size_limit")
	parent := parentMatcher(cfg)
	if s.fastFlushDomains, err = rules.NewDomainList(cfg.List("fast_flush_domains"), parent("fast_flush_domains"), open); err != nil {
		return paramError(cfg, "fast_flush_domains", err)
	}
	return nil
}

// limits are the session settings whose Postfix defaults depend on stress.
type limits struct {
	timeout        time.Duration // smtpd_timeout
	softErrorLimit int
	hardErrorLimit int
	junkLimit      int
	// deadline: smtpd_timeout bounds a whole request (command line or
	// message content), not each read; content earns time at minDataRate
	// bytes per second.
	deadline    bool
	minDataRate int64
}

func limitsOf(cfg *config.Config) limits {
	return limits{
		timeout:        cfg.Duration("smtpd_timeout"),
		softErrorLimit: int(cfg.Int("smtpd_soft_error_limit")),
		hardErrorLimit: int(cfg.Int("smtpd_hard_error_limit")),
		junkLimit:      int(cfg.Int("smtpd_junk_command_limit")),
		deadline:       cfg.Bool("smtpd_per_request_deadline"),
		minDataRate:    cfg.Int("smtpd_min_data_rate"),
	}
}

// limits are the settings in force now: the stressed ones while the
// service is under stress. Unlike Postfix, whose stress settings reach only
// smtpd processes started under stress, they apply to every session of the
// service, so clients already idling on it are cut short too.
func (s *service) limits() *limits {
	if s.load.stressed() {
		return &s.stressed
	}
	return &s.normal
}

// paramError names where the parameter was set.
func paramError(cfg *config.Config, param string, err error) error {
	return fmt.Errorf("%s: parameter %s: %w", cfg.Pos(param), param, err)
}

// restrictionError places a compile error where its parameter (a list or
// a restriction class) was set.
func restrictionError(cfg *config.Config, err error) error {
	var pe *restrictions.ParamError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", cfg.Pos(pe.Param), err)
	}
	return err
}

func parentMatcher(cfg *config.Config) func(string) bool {
	features := map[string]bool{}
	for _, f := range cfg.List("parent_domain_matches_subdomains") {
		features[f] = true
	}
	return func(feature string) bool { return features[feature] }
}

// inList matches a command against smtpd_noop_commands or
// smtpd_forbidden_commands; as in Postfix, a lookup error counts as no
// match (the features are not critical), with a warning.
func (s *service) inList(ctx context.Context, l *rules.StringList, v string) bool {
	ok, err := l.Match(ctx, v)
	if err != nil {
		s.log.Logf("smtpd", "warning: %v", err)
	}
	return ok && err == nil
}

func (s *service) bareLFExcluded(ctx context.Context, addr netip.Addr) bool {
	ok, err := s.bareLFExclusions.Match(ctx, addr)
	return ok && err == nil
}

// newServer configures go-smtp for this service: the service's sessions
// decide every reply (smtp.Handler); go-smtp reads command lines, cut at
// line_length_limit, and content.
func (s *service) newServer() *smtp.Server {
	srv := smtp.NewServer(nil)
	srv.Handler = s
	srv.MaxLineLength = s.lineLimit
	srv.ErrorLog = warningLog{s}
	return srv
}

// warningLog sends go-smtp's internal errors (panics, I/O errors) to the
// mail log as warnings.
type warningLog struct{ s *service }

func (w warningLog) Printf(format string, args ...any) {
	w.s.log.Logf("smtpd", "warning: "+format, args...)
}
func (w warningLog) Println(args ...any) { w.s.log.Logf("smtpd", "warning: %s", fmt.Sprint(args...)) }

// receiveOverrides reads receive_override_options: what a service skips,
// typically the reinjection listener behind a content filter, so mail is
// not checked, rewritten or filtered twice.
func receiveOverrides(cfg *config.Config) (map[string]bool, error) {
	known := []string{"no_unknown_recipient_checks", "no_address_mappings", "no_header_body_checks", "no_milters"}
	out := map[string]bool{}
	for _, o := range cfg.List("receive_override_options") {
		o = strings.ToLower(o)
		if !slices.Contains(known, o) {
			return nil, paramError(cfg, "receive_override_options", fmt.Errorf("unknown option %q (use %s)", o, strings.Join(known, ", ")))
		}
		out[o] = true
	}
	return out, nil
}

// applyOverrides turns off what receive_override_options names:
// no_header_body_checks the header, MIME-header, nested-header and body
// checks; no_milters the milters; no_address_mappings canonical mapping
// and virtual and local alias expansion (the headers are still
// qualified), and automatic BCC recipients. no_unknown_recipient_checks
// was applied to the restrictions.
func (s *service) applyOverrides(o map[string]bool) {
	if o["no_header_body_checks"] {
		s.checks.header, s.checks.mime, s.checks.nested, s.checks.body = nil, nil, nil, nil
	}
	if o["no_milters"] {
		s.milters = nil
	}
	if o["no_address_mappings"] {
		s.canonical.sender.tables, s.canonical.recipient.tables, s.canonical.common.tables = nil, nil, nil
		s.virtual.maps, s.virtual.aliases = nil, nil
		s.bcc = autoBCC{}
	}
}
