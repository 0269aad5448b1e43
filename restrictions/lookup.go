package restrictions

import (
	"strings"

	"postgate/rules"
)

// tableRef is an opened table of a check_*_access restriction.
type tableRef struct {
	spec  string
	t     rules.Table
	fixed bool // fixed-string table: partial keys and lowercased lookups
}

// find looks a key up. Partial keys (parent domains, user@, address
// prefixes) are only tried in fixed-string tables.
func (e *eval) find(tr *tableRef, key string, partial bool) (string, bool, error) {
	if partial && !tr.fixed {
		return "", false, nil
	}
	if tr.fixed {
		key = strings.ToLower(key)
	}
	return tr.t.Lookup(e.ctx, key)
}

// tableFailure is the value Postfix acts on when an access table lookup
// fails: "451 4.3.5 <name>: <class> rejected: Server configuration error".
const tableFailure = "451 4.3.5 Server configuration error"

// found acts on a lookup: the value if found, the failure value on error.
// done is false when the key was not found.
func (e *eval) found(tr *tableRef, key, value string, ok bool, err error, datum, name, class string) (st status, done bool) {
	if err != nil {
		e.warning("%s: table lookup problem for %q: %v", tr.spec, key, err)
		return e.accessResult(tr, tableFailure, datum, name, class), true
	}
	if ok {
		return e.accessResult(tr, value, datum, name, class), true
	}
	return dunno, false
}

// checkDomainAccess looks a host name up, then its parent domains
// ("example.com" or ".example.com" forms per smtpd_access_maps in
// parent_domain_matches_subdomains); an IP address gets no parent walk.
func (e *eval) checkDomainAccess(tr *tableRef, domain, name, class string) (status, bool) {
	partial, numerical := false, rules.ValidHostaddr(domain)
	for key := domain; key != ""; partial = true {
		v, ok, err := e.find(tr, key, partial)
		if st, done := e.found(tr, key, v, ok, err, domain, name, class); done {
			return st, true
		}
		if numerical {
			break
		}
		i := strings.IndexByte(key[1:], '.')
		if i < 0 {
			break
		}
		key = key[i+1:]
		if e.l.accessParent {
			key = key[1:]
		}
	}
	return dunno, false
}

// checkAddrAccess looks an address up, then its prefixes: 1.2.3.4, 1.2.3,
// 1.2, 1; 2001:db8::1, 2001:db8:, 2001:db8, 2001.
func (e *eval) checkAddrAccess(tr *tableRef, addr, name, class string) (status, bool) {
	delim := byte('.')
	if strings.Contains(addr, ":") {
		delim = ':'
	}
	partial := false
	for key := addr; key != ""; partial = true {
		v, ok, err := e.find(tr, key, partial)
		if st, done := e.found(tr, key, v, ok, err, addr, name, class); done {
			return st, true
		}
		i := strings.LastIndexByte(key, delim)
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return dunno, false
}

// checkNamadrAccess looks the host name up first, then the address; a
// domain entry can pre-empt a more specific address entry.
func (e *eval) checkNamadrAccess(tr *tableRef, host, addr, name, class string) status {
	if st, found := e.checkDomainAccess(tr, host, name, class); st != dunno || found {
		return st
	}
	st, _ := e.checkAddrAccess(tr, addr, name, class)
	return st
}

// checkMailAccess looks an address up in Postfix's order (§3.2):
// user+ext@domain, user@domain, domain and its parents, user+ext@, user@.
// An OK for a source-routed recipient is downgraded to DUNNO.
func (e *eval) checkMailAccess(tr *tableRef, addr, name, class string) status {
	r, err := e.resolve(addr)
	if err != nil {
		e.warning("%s: %v", addr, err)
		return e.dictRetry(addr)
	}
	if !r.qualified {
		e.warning("check_mail_access: no @domain in address: %s", r.addr)
		return dunno
	}
	for _, k := range e.mailKeys(r) {
		v, ok, err := e.find(tr, k.key, k.partial)
		if st, done := e.found(tr, k.key, v, ok, err, r.addr, name, class); done {
			if st == permit && r.routed && class == rcRecipient {
				return dunno
			}
			return st
		}
	}
	return dunno
}

type lookupKey struct {
	key     string
	partial bool
}

// mailKeys lists the lookup keys of a resolved address.
func (e *eval) mailKeys(r resolved) []lookupKey {
	base, ext := rules.SplitExtension(r.local, e.l.opts.RecipientDelimiter)
	keys := []lookupKey{{r.addr, false}}
	if ext != "" {
		keys = append(keys, lookupKey{base + "@" + r.domain, true})
	}
	keys = append(keys, e.domainKeys(r.domain)...)
	keys = append(keys, lookupKey{r.local + "@", true})
	if ext != "" {
		keys = append(keys, lookupKey{base + "@", true})
	}
	return keys
}

// domainKeys are the keys of a domain: itself, then its parents (".parent"
// or "parent" per parent_domain_matches_subdomains).
func (e *eval) domainKeys(domain string) []lookupKey {
	var keys []lookupKey
	for d := domain; d != ""; {
		keys = append(keys, lookupKey{d, true})
		i := strings.IndexByte(d[1:], '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
		if e.l.accessParent {
			d = d[1:]
		}
	}
	return keys
}

// defaultAccess is a bare type:table in a list: the check_*_access of the
// top-level list being evaluated (Postfix's def_acl).
func defaultAccess(tr *tableRef) runFunc {
	return func(e *eval) status {
		switch e.defACL {
		case accessClient:
			return e.clientAccess(tr)
		case accessHelo:
			return e.heloAccess(tr)
		case accessSender:
			return e.senderAccess(tr)
		case accessRecipient:
			return e.recipientAccess(tr)
		case accessEtrn:
			return e.etrnAccess(tr)
		}
		e.warning("specify one of (%s) before %s restriction %q", accessNames, e.replyClass, tr.spec)
		return e.serverError()
	}
}
