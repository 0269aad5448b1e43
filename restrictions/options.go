package restrictions

import (
	"net/netip"
	"strings"
	"time"

	"postgate/greylist"
	"postgate/policyd"
	"postgate/rules"
	"postgate/rules/route"
)

// Options are the parameters the restrictions use besides the lists
// themselves. A zero reply code means Postfix's default.
type Options struct {
	Mynetworks *rules.AddrList // nil matches nothing
	// InetInterfaces are the addresses of inet_interfaces, for
	// permit_inet_interfaces.
	InetInterfaces []netip.Addr
	RelayDomains   *rules.DomainList // built with parent matching per parent_domain_matches_subdomains
	MyDestination  *rules.DomainList
	// Route resolves recipients (address class, routing operators) for
	// permit_auth_destination, reject_unauth_destination and the access
	// lookups: the same resolver the queue manager uses. nil builds one
	// from MyDestination, RelayDomains, Myorigin and RecipientDelimiter
	// (no virtual domains, no interface literals).
	Route *route.Resolver

	// RelayClientcerts (relay_clientcerts) holds the certificate and
	// public key fingerprints permit_tls_clientcerts accepts; AskCcert
	// (smtpd_tls_ask_ccert) says whether clients are asked for one at all.
	RelayClientcerts []rules.Table
	AskCcert         bool

	RejectCode                     int // reject_code (554)
	DeferCode                      int // defer_code (450)
	RelayDomainsRejectCode         int // relay_domains_reject_code (554)
	AccessMapRejectCode            int // access_map_reject_code (554)
	AccessMapDeferCode             int // access_map_defer_code (450)
	InvalidHostnameRejectCode      int // invalid_hostname_reject_code (501)
	NonFQDNRejectCode              int // non_fqdn_reject_code (504)
	UnknownClientRejectCode        int // unknown_client_reject_code (450)
	UnknownHostnameRejectCode      int // unknown_hostname_reject_code (450)
	UnknownAddressRejectCode       int // unknown_address_reject_code (450)
	MultiRecipientBounceRejectCode int // multi_recipient_bounce_reject_code (550)
	PlaintextRejectCode            int // plaintext_reject_code (450)

	// DNS lists (reject_rbl_client, reject_rhsbl_*, permit_dnswl_client,
	// permit_rhswl_client): their replies.
	MapsRBLRejectCode int      // maps_rbl_reject_code (554): $rbl_code
	DefaultRBLReply   string   // default_rbl_reply, unexpanded ("": Postfix's DefaultRBLReply)
	RBLReplyMaps      []string // rbl_reply_maps: tables of templates by list as written ("zen.test=127.0.0.2")
	// ExpandReply expands the $name macros of a reply template
	// (default_rbl_reply) with lookup; gateway/config.ExpandRequest.
	// nil: a listing answers 451 4.3.5 and logs why.
	ExpandReply func(template string, lookup func(name string) string) (string, error)

	// Recipient validation (reject_unlisted_recipient and its implicit
	// form): the tables of each address class, and their reply codes.
	LocalRecipientMaps              []rules.Table // local_recipient_maps
	VirtualMailboxMaps              []rules.Table // virtual_mailbox_maps
	RelayRecipientMaps              []rules.Table // relay_recipient_maps
	VirtualAliasMaps                []rules.Table // virtual_alias_maps: an address they rewrite is known
	CanonicalMaps                   []rules.Table // canonical_maps: the same
	RecipientCanonicalMaps          []rules.Table // recipient_canonical_maps: the same
	SenderCanonicalMaps             []rules.Table // sender_canonical_maps: the same, for reject_unlisted_sender
	UnknownLocalRecipientRejectCode int           // unknown_local_recipient_reject_code (550)
	UnknownVirtualMailboxRejectCode int           // unknown_virtual_mailbox_reject_code (550)
	UnknownRelayRecipientRejectCode int           // unknown_relay_recipient_reject_code (550)
	UnknownVirtualAliasRejectCode   int           // unknown_virtual_alias_reject_code (550)
	HideUserUnknownTableName        bool          // show_user_unknown_table_name = no
	RejectUnlistedRecipient         bool          // smtpd_reject_unlisted_recipient (Postfix default yes)
	RejectUnlistedSender            bool          // smtpd_reject_unlisted_sender

	SoftBounce           bool // soft_bounce
	DelayReject          bool // smtpd_delay_reject (Postfix default yes)
	RelayBeforeRecipient bool // smtpd_relay_before_recipient_restrictions (Postfix default yes)

	SASLEnabled     bool          // smtpd_sasl_auth_enable: the sender login checks work only with it
	SenderLoginMaps []rules.Table // smtpd_sender_login_maps: sender address → owning login names

	// Classes maps each smtpd_restriction_classes name to its list value.
	Classes map[string]string
	// ParentDomainMatchesSubdomains reports whether a feature (e.g.
	// "smtpd_access_maps") is in parent_domain_matches_subdomains; nil
	// means Postfix's default list.
	ParentDomainMatchesSubdomains func(feature string) bool
	// OpenTable opens the tables of check_*_access; nil means rules.Open.
	// Tables are opened once at Compile and shared by spec.
	OpenTable func(spec string) (rules.Table, error)

	// DNS answers the DNS-based restrictions (reject_unknown_*_domain,
	// reject_unknown_helo_hostname; the DNS lists when it is also a
	// dnsbl.Resolver); nil: they answer as for a temporary failure.
	DNS Resolver
	// InetIPv4 and InetIPv6 are the families inet_protocols enables: the
	// check_*_{a,mx,ns}_access restrictions look up only server addresses
	// of these. Both false means both.
	InetIPv4, InetIPv6 bool

	// Policy holds the smtpd_policy_service_* parameters, the defaults of
	// every check_policy_service.
	Policy policyd.Options

	// StateStore keeps what check_greylist has seen (memory or Redis);
	// nil: check_greylist answers 451 4.3.5.
	StateStore greylist.Store
	Greylist   GreylistOptions
	// Verify configures reject_unverified_recipient and
	// reject_unverified_sender; their cache is StateStore.
	Verify VerifyOptions

	Myorigin               string   // qualifies unqualified addresses in access lookups
	RecipientDelimiter     string   // recipient_delimiter: user+ext@domain also looks up user@domain, user+ext@, user@
	NullAccessLookupKey    string   // smtpd_null_access_lookup_key ("<>")
	LogAccessPermitActions []string // smtpd_log_access_permit_actions: names, or type:table items
}

// DefaultRelayRestrictions is smtpd_relay_restrictions' default at
// compatibility_level >= 1.
const DefaultRelayRestrictions = "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"

// defaultParentFeatures is parent_domain_matches_subdomains' default.
var defaultParentFeatures = []string{
	"debug_peer_list", "fast_flush_domains", "mynetworks", "permit_mx_backup_networks",
	"qmqpd_authorized_clients", "relay_domains", "smtpd_access_maps",
}

// DefaultParentDomainMatchesSubdomains reports whether feature is in the
// default parent_domain_matches_subdomains.
func DefaultParentDomainMatchesSubdomains(feature string) bool {
	for _, f := range defaultParentFeatures {
		if strings.EqualFold(f, feature) {
			return true
		}
	}
	return false
}

func (o Options) withDefaults() Options {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.RejectCode, 554)
	def(&o.DeferCode, 450)
	def(&o.RelayDomainsRejectCode, 554)
	def(&o.AccessMapRejectCode, 554)
	def(&o.AccessMapDeferCode, 450)
	def(&o.InvalidHostnameRejectCode, 501)
	def(&o.NonFQDNRejectCode, 504)
	def(&o.UnknownClientRejectCode, 450)
	def(&o.UnknownHostnameRejectCode, 450)
	def(&o.UnknownAddressRejectCode, 450)
	def(&o.MultiRecipientBounceRejectCode, 550)
	def(&o.PlaintextRejectCode, 450)
	def(&o.MapsRBLRejectCode, 554)
	def(&o.Verify.PollCount, 3)
	if o.Verify.PollDelay <= 0 {
		o.Verify.PollDelay = 3 * time.Second
	}
	for _, r := range []*VerifyReplies{&o.Verify.Recipient, &o.Verify.Sender} {
		def(&r.RejectCode, 450)
		def(&r.DeferCode, 450)
	}
	vp := &o.Verify.Policy
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&vp.PositiveExpire, 31 * 24 * time.Hour}, {&vp.PositiveRefresh, 7 * 24 * time.Hour},
		{&vp.NegativeExpire, 3 * 24 * time.Hour}, {&vp.NegativeRefresh, 3 * time.Hour}} {
		if *d.p <= 0 {
			*d.p = d.v
		}
	}
	def(&o.Greylist.IPv4Prefix, 24)
	def(&o.Greylist.IPv6Prefix, 64)
	if o.DefaultRBLReply == "" {
		o.DefaultRBLReply = DefaultRBLReply
	}
	if o.ExpandReply == nil {
		o.ExpandReply = func(string, func(string) string) (string, error) { return "", errNoExpander }
	}
	def(&o.UnknownLocalRecipientRejectCode, 550)
	def(&o.UnknownVirtualMailboxRejectCode, 550)
	def(&o.UnknownRelayRecipientRejectCode, 550)
	def(&o.UnknownVirtualAliasRejectCode, 550)
	if o.NullAccessLookupKey == "" {
		o.NullAccessLookupKey = "<>"
	}
	if o.ParentDomainMatchesSubdomains == nil {
		o.ParentDomainMatchesSubdomains = DefaultParentDomainMatchesSubdomains
	}
	if o.OpenTable == nil {
		o.OpenTable = rules.Open
	}
	if o.Route == nil {
		o.Route = route.New(route.Options{
			MyDestination:                 o.MyDestination,
			RelayDomains:                  o.RelayDomains,
			Myorigin:                      o.Myorigin,
			Myhostname:                    o.Myorigin, // Postfix's default myorigin is $myhostname
			RecipientDelimiter:            o.RecipientDelimiter,
			ParentDomainMatchesSubdomains: o.ParentDomainMatchesSubdomains,
		})
	}
	return o
}
