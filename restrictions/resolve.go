package restrictions

import (
	"strings"

	"postgate/rules/route"
)

// resolved is an address as the restrictions see it after rules/route
// (Postfix's smtpd_resolve_addr): the canonical address, lowercased as
// smtpd folds it, its parts, whether it is still routed (routing
// operators or a source route left in the local part) and its class.
type resolved struct {
	addr      string // lowercased canonical address: the access lookup key
	local     string
	domain    string
	qualified bool // has an '@'; false only when there is no myorigin
	routed    bool
	class     route.Class
	transport string // "error" for an address known to be undeliverable
	nexthop   string // for the error transport: "5.1.1 text"
}

// resolveMemo is the last address resolved in one Check: a recipient is
// resolved by every access lookup and relay test of its lists.
type resolveMemo struct {
	in  string
	out resolved
	ok  bool
}

func (e *eval) resolve(addr string) (resolved, error) {
	if e.memo.ok && e.memo.in == addr {
		return e.memo.out, nil
	}
	res, err := e.l.opts.Route.Resolve(e.ctx, addr)
	if err != nil {
		return resolved{}, err
	}
	a := strings.ToLower(res.Address)
	r := resolved{addr: a, local: a, routed: res.Routed, class: res.Class, transport: res.Transport, nexthop: res.Nexthop}
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		r.local, r.domain, r.qualified = a[:i], a[i+1:], true
	}
	e.memo = resolveMemo{in: addr, out: r, ok: true}
	return r, nil
}

// authDestination is permit_auth_destination's test: the recipient
// resolves to a final class (mydestination or our interface literals,
// virtual alias or virtual mailbox domains) or to relay_domains, and is
// not routed (allow_untrusted_routing = no).
func (e *eval) authDestination(rcpt string) (bool, error) {
	r, err := e.resolve(rcpt)
	if err != nil {
		return false, err
	}
	switch {
	case !r.qualified:
		return true, nil
	case r.routed:
		return false, nil
	}
	return r.class.Final() || r.class == route.Relay, nil
}
