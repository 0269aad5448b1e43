package rules

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// AddrList is a Postfix network match list (mynetworks): addresses,
// network/mask (IPv6 in brackets: [2001:db8::]/32, [::1]/128),
// type:table (matched when the address is a key), /file/name, and !pattern
// exclusions; the first matching item decides. Host name patterns are not
// supported.
type AddrList struct {
	items []addrItem
}

type addrItem struct {
	negate bool
	prefix netip.Prefix
	spec   string
	table  Table
}

// NewAddrList compiles an address list.
func NewAddrList(items []string, opts ...ListOption) (*AddrList, error) {
	cfg := newListConfig(opts)
	expanded, err := expandItems(items, false, 0)
	if err != nil {
		return nil, err
	}
	l := &AddrList{}
	for _, it := range expanded {
		a := addrItem{negate: it.negate, spec: it.pattern}
		if isTableItem(it.pattern) {
			if _, perr := netip.ParsePrefix(it.pattern); perr == nil || isAddr(it.pattern) {
				return nil, fmt.Errorf("IPv6 address %q must be enclosed in []: for example [::1]/128", it.pattern)
			}
			if a.table, err = cfg.open(it.pattern); err != nil {
				return nil, err
			}
		} else if a.prefix, err = parseNetwork(it.pattern); err != nil {
			return nil, err
		}
		l.items = append(l.items, a)
	}
	return l, nil
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// parseNetwork parses addr, addr/len, [addr] or [addr]/len.
func parseNetwork(p string) (netip.Prefix, error) {
	s := p
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && s[end+1] != '/') {
			return netip.Prefix{}, fmt.Errorf("bad network pattern %q", p)
		}
		s = s[1:end] + s[end+1:]
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("unsupported item %q: expected an address, network/mask, /file/name or type:table (host names are not supported)", p)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad network pattern %q", p)
	}
	if pfx.Masked() != pfx {
		fix := pfx.Masked().Addr().String()
		if pfx.Addr().Is6() {
			fix = "[" + fix + "]"
		}
		return netip.Prefix{}, fmt.Errorf("non-null host address bits in %q, perhaps you should use \"%s/%d\" instead", p, fix, pfx.Bits())
	}
	return pfx, nil
}

// Match reports whether addr is in the list. A table lookup failure is
// returned as an error, never as "no match". A nil list matches nothing.
func (l *AddrList) Match(ctx context.Context, addr netip.Addr) (bool, error) {
	if l == nil || !addr.IsValid() {
		return false, nil
	}
	addr = addr.Unmap().WithZone("")
	for _, it := range l.items {
		ok := false
		if it.table != nil {
			var err error
			if _, ok, err = it.table.Lookup(ctx, addr.String()); err != nil {
				return false, fmt.Errorf("%s: %w", it.spec, err)
			}
		} else {
			ok = it.prefix.Contains(addr)
		}
		if ok {
			return !it.negate, nil
		}
	}
	return false, nil
}
