package ldaptable

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// results gathers one lookup's answer as dict_ldap_get_values does: the
// values of the result attributes, expanded with result_format, and the
// entries that special attributes name (DNs and LDAP URLs), searched in
// turn on the same connection.
type results struct {
	t   *Table
	c   *ldap.Conn
	key string
	out []string
}

// search runs req and adds what its entries give; depth counts the
// special-attribute indirections (1 for the lookup's own search).
func (r *results) search(ctx context.Context, req *ldap.SearchRequest, depth int) error {
	var res *ldap.SearchResult
	err := call(ctx, func() (err error) {
		res, err = r.c.Search(req)
		return err
	})
	if err != nil {
		return err
	}
	if r.t.sizeLimit > 0 && len(res.Entries) > r.t.sizeLimit {
		return fmt.Errorf("search for %q: size limit %d exceeded", req.Filter, r.t.sizeLimit)
	}
	for _, e := range res.Entries {
		if err := r.entry(ctx, e, depth); err != nil {
			return err
		}
	}
	return nil
}

// entry adds one entry's values. An entry with a terminal attribute gives
// only its terminal attributes; one with special attributes gives no leaf
// attributes.
func (r *results) entry(ctx context.Context, e *ldap.Entry, depth int) error {
	t := r.t
	terminal, leaf := false, true
	for _, a := range t.attrs[:t.numTerminal] {
		if len(e.GetEqualFoldAttributeValues(a)) > 0 {
			terminal = true
			break
		}
	}
	if !terminal && t.numLeaf > 0 {
		for _, a := range t.attrs[t.numAttribute:] {
			if len(e.GetEqualFoldAttributeValues(a)) > 0 {
				leaf = false
				break
			}
		}
	}
	for _, a := range e.Attributes {
		if len(a.Values) == 0 {
			continue
		}
		i := t.attrIndex(a.Name)
		switch {
		case i < t.numAttribute || terminal:
			if terminal && i >= t.numTerminal || !leaf && i < t.numTerminal+t.numLeaf {
				continue
			}
			for _, v := range a.Values {
				if x, ok := t.query.ExpandResult(v, r.key); ok {
					r.out = append(r.out, x)
					if t.expansionLimit > 0 && len(r.out) > t.expansionLimit {
						return fmt.Errorf("expansion limit %d exceeded for key %q", t.expansionLimit, r.key)
					}
				}
			}
		case i == len(t.attrs): // not asked for
		case depth >= t.recursionLimit:
			return fmt.Errorf("recursion limit %d exceeded for special attribute %s=%s", t.recursionLimit, a.Name, a.Values[0])
		default:
			for _, v := range a.Values {
				if err := r.follow(ctx, v, depth); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// follow searches the entry a special attribute's value names: a DN (the
// entry itself) or an LDAP URL (its base, scope and filter, and the result
// attributes it allows). A DN that does not exist gives nothing.
func (r *results) follow(ctx context.Context, v string, depth int) error {
	t := r.t
	req := t.request(v, ldap.ScopeBaseObject, "(objectClass=*)")
	if isLDAPURL(v) {
		u, err := parseLDAPURL(v)
		if err != nil {
			return fmt.Errorf("special result attribute value %q: %w", v, err)
		}
		if req.Attributes = t.urlAttrs(u.attrs); len(req.Attributes) == 0 {
			return nil
		}
		req.BaseDN, req.Scope, req.Filter = u.dn, u.scope, u.filter
	}
	err := r.search(ctx, req, depth+1)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	return err
}

// attrIndex is the position in t.attrs of the result attribute that name
// is (or is a subtype of: "mail;lang-en" is "mail"), len(t.attrs) if none.
func (t *Table) attrIndex(name string) int {
	for i, a := range t.attrs {
		if subtype(a, name) > 0 {
			return i
		}
	}
	return len(t.attrs)
}

// subtype compares attribute descriptions as Postfix's attrdesc_subtype:
// 1 when b is a or one of its subtypes (a plus ";options"), -1 when a is a
// subtype of b, 0 when they differ. Names ignore case (RFC 4512).
func subtype(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && lower(a[n]) == lower(b[n]) {
		n++
	}
	switch {
	case n == len(a) && (n == len(b) || b[n] == ';'):
		return 1
	case n == len(b) && a[n] == ';':
		return -1
	}
	return 0
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// urlAttrs are the result attributes an LDAP URL's attribute list allows
// (all when it names none), the more specific description of each pair.
func (t *Table) urlAttrs(urlAttrs []string) []string {
	if len(urlAttrs) == 0 {
		return t.attrs
	}
	var out []string
	for _, u := range urlAttrs {
		for _, a := range t.attrs {
			switch subtype(u, a) {
			case 1:
				out = append(out, a)
			case -1:
				out = append(out, u)
			}
		}
	}
	return out
}

// isLDAPURL: the value is an LDAP URL rather than a DN, as
// ldap_is_ldap_url decides (with or without "URL:" or <...>).
func isLDAPURL(v string) bool {
	v = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(v, "<"), "URL:"))
	return strings.HasPrefix(v, "ldap://") || strings.HasPrefix(v, "ldaps://") || strings.HasPrefix(v, "ldapi://")
}

// ldapURL is the search part of an RFC 4516 URL; the host is not used: the
// search goes to the table's server, as in Postfix.
type ldapURL struct {
	dn     string
	attrs  []string
	scope  int
	filter string
}

func parseLDAPURL(v string) (ldapURL, error) {
	v = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(v, "<"), "URL:"), ">")
	_, rest, _ := strings.Cut(v, "://")
	u := ldapURL{scope: ldap.ScopeBaseObject, filter: "(objectClass=*)"}
	_, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return u, nil
	}
	var parts [4]string // dn?attributes?scope?filter (extensions ignored)
	for i, p := range strings.SplitN(rest, "?", 5) {
		if i == len(parts) {
			break
		}
		s, err := url.PathUnescape(p)
		if err != nil {
			return u, err
		}
		parts[i] = s
	}
	u.dn = parts[0]
	if parts[1] != "" {
		u.attrs = strings.Split(parts[1], ",")
	}
	switch strings.ToLower(parts[2]) {
	case "", "base":
	case "one":
		u.scope = ldap.ScopeSingleLevel
	case "sub":
		u.scope = ldap.ScopeWholeSubtree
	default:
		return u, fmt.Errorf("unknown scope %q", parts[2])
	}
	if parts[3] != "" {
		u.filter = filter(parts[3])
	}
	return u, nil
}
