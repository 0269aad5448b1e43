package route

import (
	"fmt"
	"net/netip"
	"strings"

	"postgate/rules"
)

// Class is an address class (Postfix's ADDRESS_CLASS_README): which list
// the recipient domain matched.
type Class int

const (
	// Local is mydestination, and [address] literals of inet_interfaces.
	Local Class = iota + 1
	// Alias is virtual_alias_domains: every address must be aliased away;
	// what is left resolves to error:User unknown.
	Alias
	// Virtual is virtual_mailbox_domains.
	Virtual
	// Relay is relay_domains.
	Relay
	// Default is everything else: unauthorized destinations.
	Default
)

// String is the class in Postfix's words.
func (c Class) String() string {
	switch c {
	case Local:
		return "local"
	case Alias:
		return "virtual alias"
	case Virtual:
		return "virtual mailbox"
	case Relay:
		return "relay"
	case Default:
		return "default"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Final reports whether mail for the class is delivered (or rejected) by
// this system: local, virtual alias and virtual mailbox domains
// (RESOLVE_CLASS_FINAL). permit_auth_destination accepts these and relay.
func (c Class) Final() bool {
	return c == Local || c == Alias || c == Virtual
}

// Options are the main.cf parameters address resolution uses. Values are
// expanded ($name already replaced). Zero values mean Postfix's defaults
// where Postfix has one.
type Options struct {
	// The domain lists of the address classes; nil matches nothing.
	// relay_domains is built with parent matching per
	// parent_domain_matches_subdomains; the others match exactly.
	MyDestination, RelayDomains, VirtualAliasDomains, VirtualMailboxDomains *rules.DomainList

	// Myorigin qualifies unqualified addresses (append_at_myorigin).
	// Myhostname is the domain of the null address (MAILER-DAEMON) and the
	// default local_transport next hop. Mydomain is used only with
	// AppendDotMydomain.
	Myorigin, Mydomain, Myhostname string
	// AppendDotMydomain is append_dot_mydomain (Postfix's default is no at
	// compatibility_level >= 1): user@host becomes user@host.$mydomain.
	AppendDotMydomain bool

	// InetInterfaces are the addresses of inet_interfaces (and
	// proxy_interfaces): user@[address] is local when the literal is one
	// of them.
	InetInterfaces []netip.Addr

	// TransportMaps is transport_maps, searched in order for each key.
	TransportMaps []rules.Table
	// RelocatedMaps is relocated_maps: "User has moved to" new locations.
	RelocatedMaps []rules.Table
	// ParentDomainMatchesSubdomains reports whether a feature is in
	// parent_domain_matches_subdomains; nil means Postfix's default, which
	// does not list "transport_maps" (so ".example.com" keys are needed
	// for subdomains).
	ParentDomainMatchesSubdomains func(feature string) bool

	// The transports of the classes, "transport" or "transport:nexthop"
	// as in main.cf. Empty means the default: "local:$myhostname",
	// "virtual", "relay", "smtp".
	LocalTransport, VirtualTransport, RelayTransport, DefaultTransport string
	// Relayhost is relayhost. A list keeps its first destination only.
	Relayhost string
	// SenderDependentRelayhostMaps (sender_dependent_relayhost_maps) and
	// SenderDependentDefaultTransportMaps
	// (sender_dependent_default_transport_maps) are searched by the
	// envelope sender in ResolveFrom (sender.go), the null sender as "<>"
	// (Postfix's empty_address_*_lookup_key defaults).
	SenderDependentRelayhostMaps, SenderDependentDefaultTransportMaps []rules.Table

	// RecipientDelimiter is recipient_delimiter: transport_maps also look
	// up user@domain for user+ext@domain.
	RecipientDelimiter string
	// HideUserUnknownTableName is show_user_unknown_table_name = no.
	HideUserUnknownTableName bool
}

// Result is a resolved address.
type Result struct {
	// Address is the canonical address: qualified with @myorigin when it
	// had no domain, local domains stripped from routed forms, one
	// trailing dot removed, the domain lowercased. The local part keeps
	// its case.
	Address string
	Class   Class
	// Transport is the master.cf service to deliver with ("smtp",
	// "relay", "local", "virtual", "lmtp", "error", "discard", ...).
	Transport string
	// Nexthop is where the transport delivers: a domain, "[host]:port",
	// "host:port" (see ParseNexthop); for the error transport, the text
	// of the bounce, which may start with a DSN ("5.1.1 User unknown in
	// virtual alias table").
	Nexthop string
	// Routed is set when, after resolution, the local part still has
	// routing operators (user%host@relay, host!user@relay, source routes):
	// the next hop is not the final destination, so such an address is
	// never an authorized destination.
	Routed bool
	// Invalid is set when the resolved domain has bad syntax (Postfix's
	// RESOLVE_FLAG_ERROR), or the address starts with '-'. Transport and
	// Nexthop then say what the queue manager does with it:
	// error:"5.1.3 bad address syntax". SMTP-side checks test Invalid
	// before acting on the transport.
	Invalid bool
}

// Domain is the domain of the resolved address ("" when unqualified).
func (r Result) Domain() string {
	if i := strings.LastIndexByte(r.Address, '@'); i >= 0 {
		return r.Address[i+1:]
	}
	return ""
}

// LocalPart is the resolved address before its last '@'.
func (r Result) LocalPart() string {
	if i := strings.LastIndexByte(r.Address, '@'); i >= 0 {
		return r.Address[:i]
	}
	return r.Address
}

// Resolver resolves addresses. It is safe for concurrent use.
type Resolver struct {
	opts          Options
	relayhost     string
	parentMatches bool // transport_maps in parent_domain_matches_subdomains
}

// New builds a resolver.
func New(opts Options) *Resolver {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	local := "local"
	if opts.Myhostname != "" {
		local += ":" + opts.Myhostname
	}
	def(&opts.LocalTransport, local)
	def(&opts.VirtualTransport, "virtual")
	def(&opts.RelayTransport, "relay")
	def(&opts.DefaultTransport, "smtp")
	r := &Resolver{opts: opts}
	if hops := SplitNexthops(opts.Relayhost); len(hops) > 0 {
		r.relayhost = hops[0]
	}
	if opts.ParentDomainMatchesSubdomains != nil {
		r.parentMatches = opts.ParentDomainMatchesSubdomains("transport_maps")
	}
	return r
}
