package route

import (
	"context"
	"fmt"
	"strings"

	"postgate/rules"
)

// emptyAddressRecipient is empty_address_recipient: the local part the
// null address (and an empty local part) resolves to.
const emptyAddressRecipient = "MAILER-DAEMON"

// badSyntax is what the queue manager does with an address whose domain
// has bad syntax (Postfix's qmgr: error:5.1.3 bad address syntax).
const badSyntax = "5.1.3 bad address syntax"

// address is an address in Postfix's internal (unquoted) form, split at
// its last '@'. at is false when there is no '@'; with at, domain may be
// empty ("user@").
type address struct {
	local  string
	domain string
	at     bool
}

func splitAddress(s string) address {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return address{local: s[:i], domain: s[i+1:], at: true}
	}
	return address{local: s}
}

// Resolve resolves a recipient address (internal form, no angle
// brackets; "" is the null address) to its canonical form, address class,
// transport and next hop, as Postfix's smtpd and qmgr do: the address is
// first rewritten in the "local" context (unqualified gets @myorigin,
// site!user and user%site become user@site), then every local domain is
// stripped while routing operators remain (user%remote@local resolves as
// user@remote), then the domain's class picks the transport, and
// transport_maps may override it. The error is a table lookup failure or
// a null transport parameter; the caller answers 451 or defers.
//
// The sender-dependent tables do not apply: see ResolveFrom.
func (r *Resolver) Resolve(ctx context.Context, addr string) (Result, error) {
	return r.resolve(ctx, addr, nil)
}

// resolve is Resolve, with the envelope sender when it is known.
func (r *Resolver) resolve(ctx context.Context, addr string, sender *string) (Result, error) {
	a, remote, err := r.canonical(ctx, addr)
	if err != nil {
		return Result{}, err
	}
	// Without '@' (nothing to qualify with: no myorigin, no myhostname)
	// the address means this machine.
	res, domain := Result{Address: a.local}, ""
	if a.at {
		domain = strings.ToLower(a.domain)
		res.Address += "@" + domain
		if !validDomain(domain) {
			// Postfix's RESOLVE_FLAG_ERROR: class default, no routing.
			res.Class, res.Invalid = Default, true
			res.Transport, res.Nexthop = "error", badSyntax
			return res, nil
		}
	}
	// Routing operators left in the local part, whether or not this
	// system would honour them: the next MX host might.
	res.Routed = strings.ContainsAny(a.local, "@!%")

	var param string
	if remote {
		if param, err = r.remoteClass(ctx, domain, sender, &res); err != nil {
			return Result{}, err
		}
	} else {
		res.Class, res.Transport, res.Nexthop, param = Local, r.opts.LocalTransport, domain, "local_transport"
	}
	// An explicit transport:nexthop in main.cf overrides the next hop.
	transport, nexthop, _ := strings.Cut(res.Transport, ":")
	if res.Transport = transport; nexthop != "" {
		res.Nexthop = nexthop
	}
	if res.Transport == "" {
		return Result{}, fmt.Errorf("parameter %s: null transport is not allowed", param)
	}
	if res.Class != Alias && a.at {
		if err := r.transportMaps(ctx, res.Address, domain, &res); err != nil {
			return Result{}, err
		}
	}
	// relocated_maps: a recipient that has moved bounces whatever its
	// class, as in Postfix's resolver (last, after transport_maps).
	if len(r.opts.RelocatedMaps) > 0 {
		newloc, _, found, err := rules.FindAddress(ctx, r.opts.RelocatedMaps, res.Address, res.Class == Local, r.opts.RecipientDelimiter)
		if err != nil {
			return Result{}, fmt.Errorf("relocated_maps lookup failure: %w", err)
		}
		if found {
			res.Transport, res.Nexthop = "error", "5.1.6 User has moved to "+newloc
		}
	}
	// allow_min_user = no: an address that a command could take for an
	// option is not delivered.
	if strings.HasPrefix(res.Address, "-") {
		res.Invalid = true
		res.Transport, res.Nexthop = "error", badSyntax
	}
	return res, nil
}

// remoteClass sets the class, transport parameter value and default next
// hop of a domain that is not local.
func (r *Resolver) remoteClass(ctx context.Context, domain string, sender *string, res *Result) (param string, err error) {
	o := &r.opts
	if ok, err := o.VirtualAliasDomains.Match(ctx, domain); err != nil {
		return "", err
	} else if ok {
		res.Class, res.Transport, res.Nexthop = Alias, "error", "5.1.1 User unknown"
		if !o.HideUserUnknownTableName {
			res.Nexthop += " in virtual alias table"
		}
		return "virtual_alias_domains", nil
	}
	if ok, err := o.VirtualMailboxDomains.Match(ctx, domain); err != nil {
		return "", err
	} else if ok {
		res.Class, res.Transport, res.Nexthop = Virtual, o.VirtualTransport, domain
		return "virtual_transport", nil
	}
	ok, err := o.RelayDomains.Match(ctx, domain)
	if err != nil {
		return "", err
	}
	if ok {
		res.Class, res.Transport, param = Relay, o.RelayTransport, "relay_transport"
	} else {
		res.Class, res.Transport, param = Default, o.DefaultTransport, "default_transport"
		if sender != nil {
			if t, found, err := r.senderDependent(ctx, o.SenderDependentDefaultTransportMaps, *sender); err != nil {
				return "", fmt.Errorf("sender_dependent_default_transport_maps lookup failure: %w", err)
			} else if found {
				res.Transport, param = t, "sender_dependent_default_transport_maps"
			}
		}
	}
	// Off-host delivery: the sender-dependent relayhost overrides
	// relayhost, which overrides the recipient domain (and a nexthop in
	// the transport overrides them all).
	res.Nexthop = domain
	if r.relayhost != "" {
		res.Nexthop = r.relayhost
	}
	if sender != nil {
		if h, found, err := r.senderDependent(ctx, o.SenderDependentRelayhostMaps, *sender); err != nil {
			return "", fmt.Errorf("sender_dependent_relayhost_maps lookup failure: %w", err)
		} else if found {
			res.Nexthop = h
		}
	}
	return param, nil
}

// canonical is the address part of trivial-rewrite: the "local" context
// rewrite, then the loop that strips local domains and follows routing
// operators. remote is true when the loop stopped at a domain that is not
// local; otherwise the result carries the last local domain stripped.
func (r *Resolver) canonical(ctx context.Context, addr string) (a address, remote bool, err error) {
	a = r.rewrite(splitAddress(addr))
	saved, hasSaved := "", false
	for loop, limit := 0, len(addr)+100; ; loop++ {
		if loop > limit {
			return a, false, fmt.Errorf("resolve <%s>: giving up after %d iterations", addr, loop)
		}
		if a.at {
			a.domain = rules.TruncateDot(a.domain)
			if a.domain != "" {
				local, err := r.isLocal(ctx, a.domain)
				if err != nil {
					return a, false, err
				}
				if !local {
					return a, true, nil
				}
			}
			saved, hasSaved = a.domain, true
			a = address{local: a.local}
		}
		quoted := !dotString(a.local)
		switch {
		case !quoted && strings.ContainsAny(a.local, "!%"):
			// user%site or site!user after a local domain: follow it.
			a = r.rewrite(a)
			continue
		case quoted && strings.ContainsAny(a.local, "@%!"):
			// A local part that needs quoting still has its routing
			// operators looked at (resolve_dequoted_address = yes), or
			// "user@remote"@local would relay.
			a = r.crackQuoted(a.local)
			continue
		case a.local == "":
			a = splitAddress(emptyAddressRecipient)
			continue
		case !hasSaved && r.opts.Myhostname != "":
			// Never had a domain: this machine.
			a = address{local: a.local, domain: r.opts.Myhostname, at: true}
			continue
		}
		if hasSaved {
			a = address{local: a.local, domain: saved, at: true}
		}
		return a, false, nil
	}
}

// crackQuoted opens a quoted local part at its rightmost '@', else its
// rightmost '%' (which becomes '@'), else its first '!'.
func (r *Resolver) crackQuoted(local string) address {
	i := strings.LastIndexByte(local, '@')
	if i < 0 {
		i = strings.LastIndexByte(local, '%')
	}
	if i >= 0 {
		return r.rewrite(address{local: local[:i], domain: local[i+1:], at: true})
	}
	i = strings.IndexByte(local, '!')
	return r.finishRewrite(address{local: local[i+1:], domain: local[:i], at: true})
}

// rewrite is trivial-rewrite's rewrite in the "local" context for an
// address without a source route (a source route is always inside a
// quoted local part in internal form, where Postfix leaves it): without
// '@', site!user becomes user@site, else user%site becomes user@site,
// else @myorigin is appended; operators inside a local part that needs
// quoting are not seen.
func (r *Resolver) rewrite(a address) address {
	if a.at || a.local == "" {
		return r.finishRewrite(a)
	}
	if dotString(a.local) {
		if i := strings.IndexByte(a.local, '!'); i >= 0 {
			return r.finishRewrite(address{local: a.local[i+1:], domain: a.local[:i], at: true})
		}
		if i := strings.LastIndexByte(a.local, '%'); i >= 0 {
			return r.finishRewrite(address{local: a.local[:i], domain: a.local[i+1:], at: true})
		}
	}
	if r.opts.Myorigin != "" {
		a = address{local: a.local, domain: r.opts.Myorigin, at: true}
	}
	return r.finishRewrite(a)
}

// finishRewrite appends .$mydomain (append_dot_mydomain) and strips one
// trailing dot from the domain.
func (r *Resolver) finishRewrite(a address) address {
	if !a.at {
		return a
	}
	if r.opts.AppendDotMydomain && r.opts.Mydomain != "" && a.domain != "" && !strings.ContainsAny(a.domain, "[.") {
		a.domain += "." + r.opts.Mydomain
	}
	a.domain = rules.TruncateDot(a.domain)
	return a
}

// isLocal is Postfix's resolve_local: the domain matches mydestination,
// or is an address literal of one of our interfaces.
func (r *Resolver) isLocal(ctx context.Context, domain string) (bool, error) {
	d := strings.ToLower(domain)
	if strings.HasSuffix(d, ".") {
		d = d[:len(d)-1]
	}
	if d == "" || strings.HasSuffix(d, ".") {
		return false, nil
	}
	if ok, err := r.opts.MyDestination.Match(ctx, d); err != nil || ok {
		return ok, err
	}
	if n := len(d); n > 2 && d[0] == '[' && d[n-1] == ']' {
		if ip, ok := rules.MailhostAddr(d[1 : n-1]); ok {
			for _, a := range r.opts.InetInterfaces {
				if a.Unmap() == ip.Unmap() {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
