package rules

import (
	"context"
	"fmt"
	"strings"
)

// DomainList is a Postfix domain match list (relay_domains, mydestination):
// literal names, type:table (matched when the name or, per the parent
// style, a parent domain is a key), /file/name, and !pattern exclusions;
// the first matching item decides.
type DomainList struct {
	items  []domainItem
	parent bool
}

type domainItem struct {
	negate bool
	name   string // lowercased literal, or the table spec
	table  Table
}

// NewDomainList compiles a domain list. With parentMatchesSubdomains (the
// feature is in parent_domain_matches_subdomains), "example.com" also
// matches "sub.example.com"; otherwise ".example.com" is needed for that.
func NewDomainList(items []string, parentMatchesSubdomains bool, opts ...ListOption) (*DomainList, error) {
	cfg := newListConfig(opts)
	expanded, err := expandItems(items, false, 0)
	if err != nil {
		return nil, err
	}
	l := &DomainList{parent: parentMatchesSubdomains}
	for _, it := range expanded {
		d := domainItem{negate: it.negate, name: strings.ToLower(it.pattern)}
		if isTableItem(it.pattern) {
			d.name = it.pattern
			if d.table, err = cfg.open(it.pattern); err != nil {
				return nil, err
			}
		}
		l.items = append(l.items, d)
	}
	return l, nil
}

// Match reports whether domain is in the list. A table lookup failure is
// returned as an error, never as "no match". A nil list matches nothing.
func (l *DomainList) Match(ctx context.Context, domain string) (bool, error) {
	if l == nil || domain == "" {
		return false, nil
	}
	domain = strings.ToLower(domain)
	for _, it := range l.items {
		var ok bool
		if it.table != nil {
			var err error
			if ok, err = l.matchTable(ctx, it, domain); err != nil {
				return false, err
			}
		} else {
			ok = matchHostname(domain, it.name, l.parent)
		}
		if ok {
			return !it.negate, nil
		}
	}
	return false, nil
}

// matchTable looks the name up, then its parent domains ("example.com" or
// ".example.com" forms per the parent style).
func (l *DomainList) matchTable(ctx context.Context, it domainItem, name string) (bool, error) {
	for entry := name; entry != ""; {
		_, found, err := it.table.Lookup(ctx, entry)
		if err != nil {
			return false, fmt.Errorf("%s: %w", it.name, err)
		}
		if found {
			return true, nil
		}
		i := strings.IndexByte(entry[1:], '.')
		if i < 0 {
			break
		}
		entry = entry[i+1:]
		if l.parent {
			entry = entry[1:]
		}
	}
	return false, nil
}

// matchHostname is Postfix's match_hostname for a literal pattern.
func matchHostname(name, pattern string, parent bool) bool {
	if name == pattern {
		return true
	}
	if len(pattern) == 0 || len(pattern) >= len(name) {
		return false
	}
	pd := len(name) - len(pattern)
	if name[pd:] != pattern {
		return false
	}
	if parent {
		return name[pd-1] == '.'
	}
	return pattern[0] == '.'
}
