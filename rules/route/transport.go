package route

import (
	"context"
	"fmt"
	"strings"

	"postgate/rules"
)

// transportMaps applies transport_maps (transport(5)): the first key
// found in any table, in this order, overrides the transport and next
// hop: user+ext@domain, user@domain, domain, its parents (".parent", or
// "parent" when transport_maps is in parent_domain_matches_subdomains),
// and "*". Only the full address and "*" are looked up in pattern
// tables (regexp, pcre); partial keys go to fixed-string tables only.
func (r *Resolver) transportMaps(ctx context.Context, addr, domain string, res *Result) error {
	if len(r.opts.TransportMaps) == 0 {
		return nil
	}
	value, found, err := r.findTransport(ctx, addr, false)
	if !found && err == nil {
		if bare, ok := stripExtension(addr, r.opts.RecipientDelimiter); ok {
			value, found, err = r.findTransport(ctx, bare, true)
		}
	}
	for name := domain; !found && err == nil && name != ""; {
		if value, found, err = r.findTransport(ctx, name, true); found || err != nil {
			break
		}
		i := strings.IndexByte(name[1:], '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
		if r.parentMatches {
			name = name[1:]
		}
	}
	if !found && err == nil {
		value, found, err = r.findTransport(ctx, "*", false)
	}
	if err != nil {
		return err
	}
	if found {
		applyTransport(value, domain, res)
	}
	return nil
}

// applyTransport merges a transport_maps value "transport:nexthop" into
// the result, as transport(5) says: an empty transport keeps the one found
// so far (and an empty next hop then keeps the next hop too); a transport
// with an empty next hop resets the next hop to the recipient domain, or
// for the error transport to a generic text.
func applyTransport(value, domain string, res *Result) {
	transport, nexthop, _ := strings.Cut(value, ":")
	if transport == "" {
		if nexthop != "" {
			res.Nexthop = nexthop
		}
		return
	}
	res.Transport = transport
	switch {
	case nexthop != "":
		res.Nexthop = nexthop
	case transport == "error":
		res.Nexthop = "Address is undeliverable"
	default:
		res.Nexthop = domain
	}
}

// findTransport looks one key up in each table in order; the first table
// that has it answers. partial keys skip pattern tables. Fixed-string
// tables get lowercased keys.
func (r *Resolver) findTransport(ctx context.Context, key string, partial bool) (string, bool, error) {
	for _, t := range r.opts.TransportMaps {
		fixed := rules.IsFixedString(t)
		if partial && !fixed {
			continue
		}
		k := key
		if fixed {
			k = strings.ToLower(key)
		}
		v, ok, err := t.Lookup(ctx, k)
		if err != nil {
			if s, named := t.(fmt.Stringer); named {
				return "", false, fmt.Errorf("transport_maps %s: %w", s, err)
			}
			return "", false, fmt.Errorf("transport_maps: %w", err)
		}
		if ok {
			return v, true, nil
		}
	}
	return "", false, nil
}

// stripExtension removes the address extension: user+ext@domain gives
// user@domain (rules.SplitExtension).
func stripExtension(addr, delims string) (string, bool) {
	local, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain = addr[:i], addr[i:]
	}
	base, ext := rules.SplitExtension(local, delims)
	if ext == "" {
		return "", false
	}
	return base + domain, true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
