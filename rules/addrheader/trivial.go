package addrheader

import "strings"

// Qualify is what Postfix's trivial-rewrite does to a header address in a
// rewriting context before the canonical maps: a source route is
// stripped; an address without a domain becomes user@host from host!user
// or user%host, else gets @domain ($myorigin in the local context,
// remote_header_rewrite_domain in the remote one); one trailing dot of the
// domain goes. addr is the internal form; only the external form tells
// whether there is a domain (see Rewrite).
func Qualify(addr, external, domain string) string {
	if strings.HasPrefix(addr, "@") {
		if i := strings.IndexByte(addr, ':'); i >= 0 && i < len(addr)-1 {
			addr = addr[i+1:]
		}
	}
	if addr != "" && !hasDomain(external) {
		if host, user, ok := strings.Cut(addr, "!"); ok {
			addr = user + "@" + host
		} else if i := strings.LastIndexByte(addr, '%'); i >= 0 {
			addr = addr[:i] + "@" + addr[i+1:]
		} else {
			addr += "@" + domain
		}
	}
	if strings.HasSuffix(addr, ".") && !strings.HasSuffix(addr, "..") && !strings.HasSuffix(addr, "@.") {
		addr = addr[:len(addr)-1]
	}
	return addr
}

// hasDomain tells whether an external address has an '@' outside quoted
// strings and domain literals, as trivial-rewrite's token search does.
func hasDomain(external string) bool {
	quoted, literal := false, false
	for i := 0; i < len(external); i++ {
		switch c := external[i]; {
		case c == '\\':
			i++
		case c == '"' && !literal:
			quoted = !quoted
		case c == '[' && !quoted:
			literal = true
		case c == ']' && !quoted:
			literal = false
		case c == '@' && !quoted && !literal:
			return true
		}
	}
	return false
}
