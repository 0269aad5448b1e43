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
// Local aliases (alias_maps) expand the same way, after it.

// virtualAliases is one service's virtual_alias_maps and alias_maps, and
// the limits of their expansion.
type virtualAliases struct {
	maps           []rules.Table
	aliases        []rules.Table // alias_maps, for local-class recipients
	recursionLimit int           // virtual_alias_recursion_limit
	expansionLimit int           // virtual_alias_expansion_limit
	propagateExt   bool
	delims         string
	myorigin       string
	route          *route.Resolver
}

// errAliasExpansion is an expansion past its limits: the message is
// deferred, as Postfix's "4.6.0 Alias expansion error".
var errAliasExpansion = errors.New("alias expansion error")

// lookupFunc finds an address and returns the addresses it expands to.
type lookupFunc func(ctx context.Context, addr string) ([]string, bool, error)

// expand returns the recipients after virtual aliasing.
func (v *virtualAliases) expand(ctx context.Context, rcpts []queue.Recipient) ([]queue.Recipient, error) {
	if len(v.maps) == 0 {
		return rcpts, nil
	}
	return v.expandWith(ctx, rcpts, v.lookup)
}

// expandLocal returns the recipients after local aliasing: a recipient
// of the local class (mydestination) whose name alias_maps lists is
// replaced by the addresses of the alias, as Postfix's local(8) does, so
// that postmaster@ and abuse@ reach the internal addresses an admin's
// aliases file names (postgate does no mailbox delivery).
// Destinations it cannot deliver to (|command, /file, :include:) are
// left out with a warning.
func (v *virtualAliases) expandLocal(ctx context.Context, rcpts []queue.Recipient, warn func(string, ...any)) ([]queue.Recipient, error) {
	if len(v.aliases) == 0 {
		return rcpts, nil
	}
	return v.expandWith(ctx, rcpts, func(ctx context.Context, addr string) ([]string, bool, error) {
		return v.lookupAlias(ctx, addr, warn)
	})
}

func (v *virtualAliases) expandWith(ctx context.Context, rcpts []queue.Recipient, lookup lookupFunc) ([]queue.Recipient, error) {
	var out []queue.Recipient
	seen := map[string]bool{}
	for _, r := range rcpts {
		addrs, err := v.expandOne(ctx, r.Addr, lookup)
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
func (v *virtualAliases) expandOne(ctx context.Context, addr string, lookup lookupFunc) ([]string, error) {
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
			res, ok, err := lookup(ctx, cur)
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

// lookupAlias finds the local part of a local-class address in alias_maps
// (the whole name, then without its extension, as local(8) does) and
// returns the addresses of the alias; an unqualified one gets @$myorigin.
func (v *virtualAliases) lookupAlias(ctx context.Context, addr string, warn func(string, ...any)) ([]string, bool, error) {
	res, err := v.route.Resolve(ctx, addr)
	if err != nil || res.Class != route.Local {
		return nil, false, err
	}
	name := strings.ToLower(res.LocalPart())
	keys := []string{name}
	if base, ext := rules.SplitExtension(name, v.delims); ext != "" {
		keys = append(keys, base)
	}
	for _, k := range keys {
		for _, t := range v.aliases {
			value, found, err := t.Lookup(ctx, k)
			if err != nil {
				return nil, false, err
			}
			if !found {
				continue
			}
			var out []string
			for _, a := range strings.Split(value, ",") {
				a = strings.Trim(strings.TrimSpace(a), "<>")
				switch {
				case a == "":
					continue
				case a[0] == '|' || a[0] == '/' || strings.HasPrefix(a, ":include:"):
					warn("alias %s: destination %s skipped: postgate does no local delivery to commands, files or :include: lists", k, a)
					continue
				case !strings.Contains(a, "@"):
					a += "@" + v.myorigin
				}
				out = append(out, a)
			}
			return out, len(out) > 0, nil
		}
	}
	return nil, false, nil
}
