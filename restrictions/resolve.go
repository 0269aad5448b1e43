package restrictions

import "strings"

// resolved is an address after the part of Postfix's trivial-rewrite the
// restrictions need: unqualified addresses get @myorigin, a source route
// (@a,@b:user@c) is dropped, routing operators in the local part of a local
// address are followed (user%host@local, host!user@local), and the result
// says whether the address is routed (its final local part still has
// routing operators, or it had a source route) and whether its domain is
// local (mydestination).
//
// TODO: replace with rules/route when address resolution lands there.
type resolved struct {
	addr   string // canonical address for lookups
	local  string
	domain string // "" only when unqualified and myorigin is empty
	routed bool   // source-routed
	final  bool   // the domain matches mydestination
}

// maxRouteHops bounds rewriting of routing operators.
const maxRouteHops = 10

func (e *eval) resolve(addr string) (resolved, error) {
	var r resolved
	local, domain, hasAt := cutLast(addr, '@')
	if !hasAt {
		local, domain = addr, e.l.opts.Myorigin
	}
	if strings.HasPrefix(local, "@") {
		if i := strings.IndexByte(local, ':'); i >= 0 {
			local, r.routed = local[i+1:], true
		}
	}
	for hop := 0; ; hop++ {
		domain = stripDot(domain)
		final := domain == ""
		if !final {
			var err error
			if final, err = e.l.opts.MyDestination.Match(e.ctx, domain); err != nil {
				return r, err
			}
		}
		r.final = final
		if !final || hop >= maxRouteHops {
			break
		}
		if l, d, ok := cutLast(local, '@'); ok {
			local, domain = l, d
		} else if i := strings.IndexByte(local, '!'); i >= 0 {
			local, domain = local[i+1:], local[:i]
		} else if l, d, ok := cutLast(local, '%'); ok {
			local, domain = l, d
		} else {
			break
		}
	}
	if strings.ContainsAny(local, "@!%") {
		r.routed = true
	}
	r.local, r.domain, r.addr = local, domain, local
	if domain != "" {
		r.addr = local + "@" + domain
	}
	return r, nil
}

// authDestination is permit_auth_destination's test: the recipient's
// domain is local (mydestination) or matches relay_domains, and the
// address is not source-routed.
func (e *eval) authDestination(rcpt string) (bool, error) {
	r, err := e.resolve(rcpt)
	if err != nil {
		return false, err
	}
	switch {
	case r.domain == "":
		return true, nil
	case r.routed:
		return false, nil
	case r.final:
		return true, nil
	}
	return e.l.opts.RelayDomains.Match(e.ctx, r.domain)
}

func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// stripDot removes one trailing dot, but not from "x.." or "@.".
func stripDot(d string) string {
	if len(d) > 1 && d[len(d)-1] == '.' && d[len(d)-2] != '.' {
		return d[:len(d)-1]
	}
	return d
}
