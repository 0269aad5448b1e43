package gateway

import (
	"context"
	"errors"
	"strings"

	"postgate/queue"
	"postgate/rules"
	"postgate/rules/route"
)

// Virtual aliasing, as Postfix's cleanup does it when a message is
// queued (cleanup_map1n): each recipient found in virtual_alias_maps is
// replaced by the addresses of its value, and those are looked up in turn,
// until none is found or an address expands to itself; an unqualified
// result gets @$myorigin; an extension the lookup stripped is carried to
// the results (propagate_unmatched_extensions); duplicates are dropped.

// virtualAliases is one service's virtual_alias_maps and its limits.
type virtualAliases struct {
	maps           []rules.Table
	recursionLimit int // virtual_alias_recursion_limit
	expansionLimit int // virtual_alias_expansion_limit
	propagateExt   bool
	delims         string
	myorigin       string
	route          *route.Resolver
}

// errAliasExpansion is an expansion past its limits: the message is
// deferred, as Postfix's "4.6.0 Alias expansion error".
var errAliasExpansion = errors.New("alias expansion error")

// expand returns the recipients after aliasing. A lookup failure or an
// expansion past the limits is an error (the message is not accepted).
func (v *virtualAliases) expand(ctx context.Context, rcpts []queue.Recipient) ([]queue.Recipient, error) {
	if len(v.maps) == 0 {
		return rcpts, nil
	}
	var out []queue.Recipient
	seen := map[string]bool{}
	for _, r := range rcpts {
		addrs, err := v.expandOne(ctx, r.Addr)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if key := strings.ToLower(a); !seen[key] {
				seen[key] = true
				r.Addr = a
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// expandOne is cleanup_map1n_internal for one address.
func (v *virtualAliases) expandOne(ctx context.Context, addr string) ([]string, error) {
	list := []string{addr}
	self := map[string]bool{} // addresses that expanded into themselves
	for i := 0; i < len(list); i++ {
		if len(list) > v.expansionLimit {
			return nil, errAliasExpansion
		}
		for count := 0; ; count++ {
			cur := list[i]
			if self[strings.ToLower(cur)] {
				break
			}
			if count >= v.recursionLimit {
				return nil, errAliasExpansion
			}
			res, ok, err := v.lookup(ctx, cur)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			for j, a := range res {
				if j == 0 {
					list[i] = a
				} else {
					list = append(list, a)
				}
				if strings.EqualFold(a, cur) {
					self[strings.ToLower(cur)] = true
				}
			}
		}
	}
	return list, nil
}

// lookup finds addr in the maps and returns the addresses of the value.
func (v *virtualAliases) lookup(ctx context.Context, addr string) ([]string, bool, error) {
	res, err := v.route.Resolve(ctx, addr)
	if err != nil {
		return nil, false, err
	}
	return rules.MapAddress(ctx, v.maps, addr, res.Class == route.Local, v.delims, v.myorigin, v.propagateExt)
}
