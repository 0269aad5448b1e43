package config

import (
	"math"
	"strings"
	"sync"
)

// param describes a parameter postgate types: its default (raw, expanded like a
// main.cf value, or computed), its type, and whether postgate implements it yet.
// Defaults are current Postfix's (reference §1.5), except where postgate differs
// on purpose (queue_directory, syslog_name, smtpd_forbid_bare_newline).
type param struct {
	name string
	kind kind
	def  string
	impl bool
	unit byte  // kindTime: unit of a bare number
	min  int64 // kindInt: lowest value; kindTime: lowest number of seconds
	max  int64 // kindInt: highest value, 0 for none
	// check validates the expanded value beyond its kind.
	check func(string) (warning string, err error)
	// canon turns the expanded value into the form Get returns.
	canon func(string) string
	// computed: the default depends on the host or the directory (see
	// view.computeDefault) rather than on fixed text.
	computed bool
}

// Compatibility-dependent defaults, written as Postfix writes them so that an
// explicit compatibility_level selects the historical behaviour.
const (
	defRelayRestrictions = "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}"
	defMynetworksStyle   = "${{$compatibility_level} <level {2} ? {subnet} : {host}}"
	defRelayDomains      = "${{$compatibility_level} <level {2} ? {$mydestination} : {}}"
	defRelayBeforeRcpt   = "${{$compatibility_level} <level {3.6} ? {no} : {yes}}"
	defSMTPUTF8          = "${{$compatibility_level} <level {1} ? {no} : {yes}}"
	defFingerprintDigest = "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}"
)

func str(name, def string) param  { return param{name: name, kind: kindString, def: def, impl: true} }
func list(name, def string) param { return param{name: name, kind: kindList, def: def, impl: true} }
func boolean(name, def string) param {
	return param{name: name, kind: kindBool, def: def, impl: true}
}
func integer(name, def string, min int64) param {
	return param{name: name, kind: kindInt, def: def, impl: true, min: min}
}
func seconds(name, def string, unit byte, min int64) param {
	return param{name: name, kind: kindTime, def: def, impl: true, unit: unit, min: min}
}
func code(name, def string) param {
	return param{name: name, kind: kindInt, def: def, impl: true, check: replyCode}
}

// action is a postscreen action: ignore, enforce or drop.
func action(name, def string) param {
	return param{name: name, kind: kindString, def: def, impl: true, check: oneOf("ignore", "enforce", "drop"), canon: lower}
}

func lower(s string) string { return strings.ToLower(s) }

// later marks a parameter as typed but not implemented yet.
func later(p param) param { p.impl = false; return p }

var paramTable = append([]param{
	// Identity and address classes.
	{name: "myhostname", kind: kindString, impl: true, computed: true},
	{name: "mydomain", kind: kindString, impl: true, computed: true},
	str("myorigin", "$myhostname"),
	list("mydestination", "$myhostname, localhost.$mydomain, localhost"),
	{name: "mynetworks", kind: kindList, impl: true, computed: true},
	{name: "mynetworks_style", kind: kindString, def: defMynetworksStyle, impl: true,
		check: oneOf("host", "subnet", "class"), canon: lower},
	list("inet_interfaces", "all"),
	{name: "inet_protocols", kind: kindList, def: "all", impl: true,
		check: listOf("all", "ipv4", "ipv6"), canon: lower},
	list("relay_domains", defRelayDomains),
	list("parent_domain_matches_subdomains", "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps"),
	{name: "compatibility_level", kind: kindString, def: currentCompatLevel, impl: true, check: compatLevel},
	str("mail_name", "postgate"), // Received: and the banner name postgate, not Postfix
	str("mail_version", currentCompatLevel),
	{name: "config_directory", kind: kindString, impl: true, computed: true},

	// SMTP server.
	str("smtpd_banner", "$myhostname ESMTP $mail_name"),
	list("smtpd_relay_restrictions", defRelayRestrictions),
	list("smtpd_recipient_restrictions", ""),
	list("smtpd_client_restrictions", ""),
	list("smtpd_helo_restrictions", ""),
	list("smtpd_sender_restrictions", ""),
	list("smtpd_data_restrictions", ""),
	list("smtpd_end_of_data_restrictions", ""),
	list("smtpd_etrn_restrictions", ""),
	list("smtpd_restriction_classes", ""),
	boolean("smtpd_relay_before_recipient_restrictions", defRelayBeforeRcpt),
	boolean("smtpd_delay_reject", "yes"),
	code("reject_code", "554"),
	code("defer_code", "450"),
	code("relay_domains_reject_code", "554"),
	code("access_map_reject_code", "554"),
	code("access_map_defer_code", "450"),
	code("invalid_hostname_reject_code", "501"),
	code("non_fqdn_reject_code", "504"),
	code("unknown_client_reject_code", "450"),
	code("unknown_hostname_reject_code", "450"),
	code("unknown_address_reject_code", "450"),
	boolean("smtpd_peername_lookup", "yes"),
	code("multi_recipient_bounce_reject_code", "550"),
	str("smtpd_null_access_lookup_key", "<>"),
	// DNS lists (restrictions/dnsbl.go): the reply of a listing.
	code("maps_rbl_reject_code", "554"),
	code("plaintext_reject_code", "450"),
	str("default_rbl_reply", "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}"),
	list("rbl_reply_maps", ""),
	// Policy servers (check_policy_service, policyd).
	seconds("smtpd_policy_service_timeout", "100s", 's', 1),
	seconds("smtpd_policy_service_max_idle", "300s", 's', 1),
	seconds("smtpd_policy_service_max_ttl", "1000s", 's', 1),
	seconds("smtpd_policy_service_retry_delay", "1s", 's', 1),
	integer("smtpd_policy_service_request_limit", "0", 0),
	integer("smtpd_policy_service_try_limit", "2", 1),
	str("smtpd_policy_service_default_action", "451 4.3.5 Server configuration problem"),
	str("smtpd_policy_service_policy_context", ""),
	// Milters (milter/, gateway/milter.go).
	list("smtpd_milters", ""),
	list("non_smtpd_milters", ""), // for mail from the maildrop (gateway/pickup.go)
	list("smtpd_milter_maps", ""),
	{name: "milter_default_action", kind: kindString, def: "tempfail", impl: true,
		check: oneOf("accept", "reject", "tempfail", "quarantine", "shutdown"), canon: lower},
	later(integer("milter_protocol", "6", 2)),
	seconds("milter_connect_timeout", "30s", 's', 1),
	seconds("milter_command_timeout", "30s", 's', 1),
	seconds("milter_content_timeout", "300s", 's', 1),
	list("milter_connect_macros", "j {daemon_name} {daemon_addr} v _"),
	list("milter_helo_macros", "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}"),
	list("milter_mail_macros", "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}"),
	list("milter_rcpt_macros", "i {rcpt_addr} {rcpt_host} {rcpt_mailer}"),
	list("milter_data_macros", "i"),
	list("milter_end_of_header_macros", "i"),
	list("milter_end_of_data_macros", "i"),
	list("milter_unknown_command_macros", ""),
	str("milter_macro_daemon_name", "$myhostname"),
	str("milter_macro_v", "$mail_name $mail_version"),
	list("milter_macro_defaults", ""),
	list("milter_header_checks", ""),
	// Content inspection (gateway/checks.go).
	list("header_checks", ""),
	list("mime_header_checks", "$header_checks"),
	list("nested_header_checks", "$header_checks"),
	list("body_checks", ""),
	// The smtp client's checks (gateway/smtpchecks.go).
	list("smtp_header_checks", ""),
	list("smtp_mime_header_checks", ""),
	list("smtp_nested_header_checks", ""),
	list("smtp_body_checks", ""),
	list("lmtp_header_checks", ""),
	list("lmtp_mime_header_checks", ""),
	list("lmtp_nested_header_checks", ""),
	list("lmtp_body_checks", ""),
	integer("header_size_limit", "102400", 1),
	integer("body_checks_size_limit", "51200", 0),
	boolean("disable_mime_input_processing", "no"),
	integer("mime_nesting_limit", "100", 1),
	integer("mime_boundary_length_limit", "2048", 1),
	// Before-queue content filter (gateway/proxyfilter.go).
	str("smtpd_proxy_filter", ""),
	str("smtpd_proxy_ehlo", "$myhostname"),
	seconds("smtpd_proxy_timeout", "100s", 's', 1),
	list("smtpd_proxy_options", ""),
	// Recipient validation at RCPT (restrictions/unlisted.go).
	boolean("smtpd_reject_unlisted_recipient", "yes"),
	boolean("smtpd_reject_unlisted_sender", "no"),
	list("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps"),
	// postgate: empty, where Postfix says hash:/etc/aliases: postgate
	// does no local delivery, and a missing file would stop the daemon.
	list("alias_maps", ""),
	list("relay_recipient_maps", ""),
	list("relocated_maps", ""),
	list("proxy_interfaces", ""),
	code("unknown_local_recipient_reject_code", "550"),
	code("unknown_relay_recipient_reject_code", "550"),
	code("unknown_virtual_alias_reject_code", "550"),
	boolean("show_user_unknown_table_name", "yes"),
	list("smtpd_log_access_permit_actions", ""),
	boolean("soft_bounce", "no"),
	integer("message_size_limit", "10240000", 0),
	integer("smtpd_recipient_limit", "1000", 1),
	seconds("smtpd_timeout", "${stress?{10}:{300}}s", 's', 1),
	integer("smtpd_soft_error_limit", "10", 1),
	integer("smtpd_hard_error_limit", "${stress?{1}:{20}}", 1),
	seconds("smtpd_error_sleep_time", "1s", 's', 0),
	integer("default_process_limit", "100", 1),
	{name: "smtpd_forbid_bare_newline", kind: kindString, def: "normalize", impl: true,
		check: bareNewline, canon: bareNewlineMode},
	code("smtpd_forbid_bare_newline_reject_code", "550"),
	list("smtpd_forbid_bare_newline_exclusions", "$mynetworks"),
	boolean("smtputf8_enable", defSMTPUTF8),
	boolean("smtpd_client_port_logging", "no"),
	// Inbound TLS (gateway/tls.go). An empty security level falls back to
	// the legacy smtpd_use_tls and smtpd_enforce_tls, as in Postfix.
	{name: "smtpd_tls_security_level", kind: kindString, impl: true, canon: lower,
		check: oneOf("", "none", "may", "encrypt", "fingerprint", "verify", "secure")},
	boolean("smtpd_use_tls", "no"),
	boolean("smtpd_enforce_tls", "no"),
	str("smtpd_tls_cert_file", ""),
	str("smtpd_tls_key_file", "$smtpd_tls_cert_file"),
	list("smtpd_tls_chain_files", ""),
	boolean("smtpd_tls_auth_only", "no"),
	str("smtpd_tls_protocols", ">=TLSv1"),
	str("smtpd_tls_mandatory_protocols", ">=TLSv1"),
	// Cipher grades: Go offers only suites of OpenSSL's "high" grade, so
	// every grade is met and none can be narrowed (README).
	later(param{name: "smtpd_tls_ciphers", kind: kindString, def: "medium", canon: lower,
		check: oneOf("export", "low", "medium", "high", "null")}),
	later(param{name: "smtpd_tls_mandatory_ciphers", kind: kindString, def: "medium", canon: lower,
		check: oneOf("export", "low", "medium", "high", "null")}),
	boolean("smtpd_tls_received_header", "no"),
	{name: "smtpd_tls_loglevel", kind: kindInt, def: "0", impl: true, max: 4},
	boolean("smtpd_tls_ask_ccert", "no"),
	boolean("smtpd_tls_req_ccert", "no"),
	str("smtpd_tls_CAfile", ""),
	str("smtpd_tls_CApath", ""),
	{name: "smtpd_tls_fingerprint_digest", kind: kindString, def: defFingerprintDigest, impl: true, canon: lower,
		check: oneOf("md5", "sha1", "sha256", "sha512")},
	list("relay_clientcerts", ""),
	seconds("smtpd_starttls_timeout", "${stress?{10}:{300}}s", 's', 1),
	boolean("smtpd_tls_wrappermode", "no"),

	// The SMTP dialogue (gateway/session.go and its commands).
	boolean("smtpd_helo_required", "no"),
	boolean("strict_rfc821_envelopes", "no"),
	boolean("strict_smtputf8", "no"),
	boolean("disable_vrfy_command", "no"),
	integer("line_length_limit", "2048", 512),
	integer("smtpd_junk_command_limit", "${stress?{1}:{100}}", 1),
	integer("smtpd_recipient_overshoot_limit", "1000", 1),
	list("smtpd_noop_commands", ""),
	list("smtpd_forbidden_commands", "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}"),
	list("smtpd_discard_ehlo_keywords", ""),
	list("smtpd_discard_ehlo_keyword_address_maps", ""),
	str("smtpd_reject_footer", ""),
	list("smtpd_reject_footer_maps", ""),
	boolean("smtpd_forbid_unauth_pipelining", "yes"), // current Postfix; Debian's 3.7: no
	list("smtpd_authorized_xclient_hosts", ""),
	list("smtpd_authorized_xforward_hosts", ""),
	list("fast_flush_domains", "$relay_domains"),

	// Holding under load (gateway/anvil.go, listener.go, conn.go); the
	// anvil counters live in postgate_state_store.
	str("stress", ""), // set to yes for sessions started under stress
	boolean("smtpd_per_request_deadline", "${smtpd_per_record_deadline?{$smtpd_per_record_deadline}:{${stress?{yes}:{no}}}}"),
	integer("smtpd_min_data_rate", "500", 1),
	seconds("anvil_rate_time_unit", "60s", 's', 1),
	integer("smtpd_client_connection_count_limit", "50", 0),
	integer("smtpd_client_connection_rate_limit", "0", 0),
	integer("smtpd_client_message_rate_limit", "0", 0),
	integer("smtpd_client_recipient_rate_limit", "0", 0),
	// Counted once STARTTLS and AUTH exist.
	integer("smtpd_client_new_tls_session_rate_limit", "0", 0),
	integer("smtpd_client_auth_rate_limit", "0", 0),
	// postgate: the service's name in the shared state store, the same on
	// every node of a pool ("": the master.cf name without its host).
	str("postgate_anvil_service_name", ""),
	list("smtpd_client_event_limit_exceptions", "${smtpd_client_connection_limit_exceptions:$mynetworks}"),
	// postgate: session slots of each smtpd service that only clients in
	// smtpd_client_event_limit_exceptions may take.
	integer("postgate_reserved_session_slots", "10", 0),

	// postscreen in front of smtpd (master.cf postscreen + smtpd pass;
	// gateway/postscreen.go).
	str("smtpd_service_name", "smtpd"),
	list("postscreen_access_list", "permit_mynetworks"),
	action("postscreen_blacklist_action", "ignore"),
	action("postscreen_denylist_action", "${postscreen_blacklist_action?{$postscreen_blacklist_action}:{ignore}}"),
	str("postscreen_greet_banner", "$smtpd_banner"),
	seconds("postscreen_greet_wait", "${stress?{2}:{6}}s", 's', 1),
	action("postscreen_greet_action", "ignore"),
	seconds("postscreen_greet_ttl", "1d", 's', 1),
	list("postscreen_dnsbl_sites", ""),
	integer("postscreen_dnsbl_threshold", "1", 1),
	integer("postscreen_dnsbl_whitelist_threshold", "0", math.MinInt32),
	integer("postscreen_dnsbl_allowlist_threshold", "${postscreen_dnsbl_whitelist_threshold?{$postscreen_dnsbl_whitelist_threshold}:{0}}", math.MinInt32),
	action("postscreen_dnsbl_action", "ignore"),
	list("postscreen_dnsbl_reply_map", ""),
	seconds("postscreen_dnsbl_timeout", "10s", 's', 1),
	seconds("postscreen_dnsbl_min_ttl", "60s", 's', 1),
	// Postfix writes "{1}}h", which makes "1hh" of a set value.
	seconds("postscreen_dnsbl_max_ttl", "${postscreen_dnsbl_ttl?{$postscreen_dnsbl_ttl}:{1h}}", 's', 1),
	// Before Postfix 3.1, postscreen_dnsbl_max_ttl: read through its
	// default, but no test through the binary shows it.
	later(str("postscreen_dnsbl_ttl", "")),

	// Queue and logging.
	str("queue_directory", "/var/spool/postgate"),
	integer("queue_minfree", "0", 0), // bytes; MAIL gets 452 4.3.1 below it (and below 1.5 x message_size_limit)
	boolean("enable_long_queue_ids", "no"),
	str("maillog_file", ""),
	str("syslog_name", "postgate"),

	// postgate's own.
	list("postgate_dns_servers", ""), // empty: the servers of /etc/resolv.conf
	// The Received-SPF: header: yes (when a restriction evaluated SPF),
	// always (SPF is evaluated for every message), no.
	{name: "postgate_spf_received_header", kind: kindString, def: "yes", impl: true,
		check: oneOf("yes", "no", "always"), canon: lower},
	// Prometheus /metrics (gateway/metrics): host:port, "" for none.
	str("postgate_metrics_address", ""),
	// SMTP AUTH (gateway/sasl, gateway/saslsession.go): smtpd_sasl_type
	// dovecot, or file (postgate's password file); Postfix's default
	// cyrus is refused by check with that advice.
	boolean("smtpd_sasl_auth_enable", "no"),
	str("smtpd_sasl_type", "cyrus"),
	str("smtpd_sasl_path", "smtpd"),
	later(str("smtpd_sasl_service", "smtp")), // sent to Dovecot; no test shows its effect yet
	list("smtpd_sasl_security_options", "noanonymous"),
	list("smtpd_sasl_tls_security_options", "$smtpd_sasl_security_options"),
	boolean("broken_sasl_auth_clients", "no"),
	integer("smtpd_sasl_response_limit", "12288", 1),
	list("smtpd_sender_login_maps", ""),
	// The user to run as after binding (gateway/privileges.go). Postfix's
	// default is "postfix"; postgate's is none: it runs as it was started
	// unless told.
	str("mail_owner", ""),
	// PROXY protocol v1 and v2 from a load balancer in front (gateway/proxy.go).
	{name: "smtpd_upstream_proxy_protocol", kind: kindString, def: "", impl: true,
		check: oneOf("", "haproxy"), canon: lower},
	seconds("smtpd_upstream_proxy_timeout", "5s", 's', 1),
	// Mail authentication in the content stage (gateway/auth.go): DKIM
	// verification, DMARC and Authentication-Results: for outside
	// clients; DKIM signing for postgate_dkim_signing_clients, by From:
	// domain through postgate_dkim_signing_table (domain:selector:keyfile).
	boolean("postgate_dkim_verify", "no"),
	boolean("postgate_dmarc_enforce", "no"),
	list("postgate_dkim_signing_table", ""),
	list("postgate_dkim_signing_clients", "permit_mynetworks, permit_sasl_authenticated"),
	list("postgate_dkim_sign_headers", "From, Reply-To, Subject, Date, To, Cc, Resent-Date, Resent-From, "+
		"Resent-Sender, Resent-To, Resent-Cc, In-Reply-To, References, List-Id, List-Help, List-Unsubscribe, "+
		"List-Subscribe, List-Post, List-Owner, List-Archive, Message-ID, MIME-Version, Content-Type, Content-Transfer-Encoding"),
	later(str("postgate_metrics_address", "")),
	// Shared state and greylisting (greylist, restrictions/greylist.go):
	// the store is memory or a redis://, redis-sentinel://,
	// redis-cluster:// URL (greylist.Open).
	str("postgate_state_store", "memory"),
	seconds("postgate_state_timeout", "1s", 's', 1),
	{name: "postgate_state_failure_action", kind: kindString, def: "dunno", impl: true,
		check: oneOf("dunno", "defer"), canon: lower},
	seconds("postgate_greylist_delay", "300s", 's', 0),
	seconds("postgate_greylist_retry_window", "2d", 'd', 0),
	seconds("postgate_greylist_lifetime", "35d", 'd', 1),
	integer("postgate_greylist_auto_allowlist_clients", "5", 0),
	{name: "postgate_greylist_ipv4_prefix", kind: kindInt, def: "24", impl: true, min: 1, max: 32},
	{name: "postgate_greylist_ipv6_prefix", kind: kindInt, def: "64", impl: true, min: 1, max: 128},
	str("postgate_greylist_text", "Greylisted, see http://postgrey.schweikert.ch/help/%r.html"),
	list("postgate_greylist_client_allowlist_maps", ""),
	list("postgate_greylist_sender_allowlist_maps", ""),
	list("postgate_greylist_recipient_allowlist_maps", ""),
	// postgate policyd, the policy server for an existing Postfix
	// (policyd/server): where it listens (inet:host:port, unix:/path, or
	// unix:name under queue_directory), the restriction list each request
	// is checked with, the bound on one request and on an idle connection
	// (past Postfix's smtpd_policy_service_max_ttl, so Postfix closes first).
	str("postgate_policyd_listen", "inet:127.0.0.1:10040"),
	list("postgate_policyd_restrictions", "check_greylist"),
	seconds("postgate_policyd_timeout", "100s", 's', 1),
	seconds("postgate_policyd_idle_timeout", "1000s", 's', 1),
	list("postgate_greylist_skip", ""), // dnswl, spf_pass
	// Database and network tables (rules.CacheOptions): how long a found
	// answer and a "not found" are served from memory (0: not kept; errors
	// never are), and the bound on one lookup (0: the table's own timeouts);
	// test/tablecache_test.go shows them.
	seconds("postgate_table_cache_ttl", "60s", 's', 0),
	seconds("postgate_table_cache_negative_ttl", "10s", 's', 0),
	seconds("postgate_table_lookup_timeout", "10s", 's', 0),
	// Address verification (restrictions/verify.go, gateway/verify.go):
	// the cache is postgate_state_store, not address_verify_map.
	later(str("double_bounce_sender", "double-bounce")), // only as address_verify_sender's default
	str("address_verify_sender", "$double_bounce_sender"),
	seconds("address_verify_positive_expire_time", "31d", 'd', 1),
	seconds("address_verify_positive_refresh_time", "7d", 'd', 1),
	seconds("address_verify_negative_expire_time", "3d", 'd', 1),
	seconds("address_verify_negative_refresh_time", "3h", 'h', 1),
	integer("address_verify_poll_count", "${stress?{1}:{3}}", 1),
	seconds("address_verify_poll_delay", "3s", 's', 1),
	list("address_verify_relayhost", "$relayhost"),
	list("address_verify_transport_maps", "$transport_maps"),
	code("unverified_recipient_reject_code", "450"),
	code("unverified_recipient_defer_code", "450"),
	code("unverified_sender_reject_code", "450"),
	code("unverified_sender_defer_code", "450"),
	later(str("reject_tempfail_action", "defer_if_permit")), // only as the unverified_* actions' default
	{name: "unverified_recipient_tempfail_action", kind: kindString, def: "$reject_tempfail_action", impl: true,
		check: oneOf("defer", "defer_if_permit"), canon: lower},
	{name: "unverified_sender_tempfail_action", kind: kindString, def: "$reject_tempfail_action", impl: true,
		check: oneOf("defer", "defer_if_permit"), canon: lower},
	str("unverified_recipient_reject_reason", ""),
	str("unverified_sender_reject_reason", ""),

	// Delivery.
	list("relayhost", ""),
	str("relay_transport", "relay"),
	str("default_transport", "smtp"),
	str("local_transport", "local:$myhostname"),
	str("virtual_transport", "virtual"),
	list("transport_maps", ""),
	// Content filters (queue: every recipient goes to the filter).
	str("content_filter", ""),
	// What a service skips (the reinjection listener behind a content filter).
	list("receive_override_options", ""),
	str("default_filter_nexthop", ""),
	list("virtual_alias_domains", "$virtual_alias_maps"),
	list("virtual_alias_maps", "$virtual_maps"),
	integer("virtual_alias_recursion_limit", "1000", 1),
	integer("virtual_alias_expansion_limit", "1000", 1),
	list("propagate_unmatched_extensions", "canonical, virtual"),
	// Canonical rewriting (gateway/canonical.go).
	list("canonical_maps", ""),
	list("sender_canonical_maps", ""),
	list("recipient_canonical_maps", ""),
	list("canonical_classes", "envelope_sender, envelope_recipient, header_sender, header_recipient"),
	list("sender_canonical_classes", "envelope_sender, header_sender"),
	list("recipient_canonical_classes", "envelope_recipient, header_recipient"),
	// Automatic BCC recipients (gateway/bcc.go).
	list("sender_bcc_maps", ""),
	list("recipient_bcc_maps", ""),
	str("always_bcc", ""),
	list("local_header_rewrite_clients", "permit_inet_interfaces"),
	str("remote_header_rewrite_domain", ""),
	boolean("always_add_missing_headers", "no"),
	list("message_drop_headers", "bcc, content-length, resent-bcc, return-path"),
	str("undisclosed_recipients_header", ""),
	later(list("virtual_maps", "")),
	list("virtual_mailbox_domains", "$virtual_mailbox_maps"),
	later(list("virtual_mailbox_maps", "")),
	str("recipient_delimiter", ""),
	seconds("minimal_backoff_time", "300s", 's', 1),
	seconds("maximal_backoff_time", "4000s", 's', 1),
	seconds("queue_run_delay", "300s", 's', 1),
	seconds("maximal_queue_lifetime", "5d", 'd', 0),
	seconds("bounce_queue_lifetime", "5d", 'd', 0),
	seconds("delay_warning_time", "0h", 'h', 0),
	integer("default_destination_concurrency_limit", "20", 1),
	integer("default_destination_recipient_limit", "50", 1),
	{name: "notify_classes", kind: kindList, def: "resource, software", impl: true,
		check: listOf("bounce", "2bounce", "data", "delay", "policy", "protocol", "resource", "software")},
	str("bounce_notice_recipient", "postmaster"),
	str("2bounce_notice_recipient", "postmaster"),
	str("delay_notice_recipient", "postmaster"),
	later(str("error_notice_recipient", "postmaster")),
	str("smtp_helo_name", "$myhostname"),
	str("smtp_bind_address", ""),
	str("smtp_tcp_port", "smtp"),
	integer("smtp_line_length_limit", "998", 0), // 0: no limit
	// Outbound TLS (relay/tls.go). dane and dane-only parse, and check
	// refuses them until postgate has a DNSSEC-validating resolver.
	{name: "smtp_tls_security_level", kind: kindString, impl: true, canon: lower,
		check: oneOf("", "none", "may", "encrypt", "verify", "secure", "dane", "dane-only", "fingerprint")},
	boolean("smtp_use_tls", "no"),
	boolean("smtp_enforce_tls", "no"),
	list("smtp_tls_policy_maps", ""),
	str("smtp_tls_cert_file", ""),
	str("smtp_tls_key_file", "$smtp_tls_cert_file"),
	list("smtp_tls_chain_files", ""),
	str("smtp_tls_CAfile", ""),
	str("smtp_tls_CApath", ""),
	{name: "smtp_tls_loglevel", kind: kindInt, def: "0", impl: true, max: 4},
	str("smtp_tls_protocols", ">=TLSv1"),
	str("smtp_tls_mandatory_protocols", ">=TLSv1"),
	list("smtp_tls_verify_cert_match", "hostname"),
	list("smtp_tls_secure_cert_match", "nexthop, dot-nexthop"),
	// The SMTP client's login, address mapping and fallback, and the
	// resolver's sender-dependent tables (gateway/outbound.go,
	// relay/sasl.go, relay/generic.go, rules/route/sender.go).
	boolean("smtp_sasl_auth_enable", "no"),
	list("smtp_sasl_password_maps", ""),
	list("smtp_sasl_security_options", "noplaintext, noanonymous"),
	list("smtp_sasl_tls_security_options", "$smtp_sasl_security_options"),
	list("smtp_sasl_tls_verified_security_options", "$smtp_sasl_tls_security_options"),
	list("smtp_sasl_mechanism_filter", ""),
	boolean("smtp_sasl_auth_soft_bounce", "yes"),
	boolean("smtp_sender_dependent_authentication", "no"),
	list("smtp_generic_maps", ""),
	list("fallback_relay", ""),
	list("smtp_fallback_relay", "$fallback_relay"),
	list("sender_dependent_relayhost_maps", ""),
	list("sender_dependent_default_transport_maps", ""),
	integer("bounce_size_limit", "50000", 1),
	integer("postgate_queue_segment_size", "67108864", 65536), // bytes per queue log segment
	// Bytes of message content all sessions together hold in memory; past
	// it, content goes to spool files. 256 MB suits a 1-2 GB host: with Go's
	// soft memory limit at twice it (gateway/membudget.go) the process stays
	// near half a GB under any burst, leaving the rest to the OS page cache
	// that serves the queue log, and 50 sessions of 5 MB still fit.
	integer("postgate_memory_limit", "268435456", 1<<20),
}, clientParams()...)

// params indexes paramTable by name.
var params = sync.OnceValue(func() map[string]*param {
	m := make(map[string]*param, len(paramTable))
	for i := range paramTable {
		m[paramTable[i].name] = &paramTable[i]
	}
	return m
})

func lookupParam(name string) *param { return params()[name] }
