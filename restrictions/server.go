package restrictions

import (
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"postgate/rules"
)

// serverType is the record type of a check_*_{a,mx,ns}_access restriction:
// which servers of a domain are looked up in the access table.
type serverType string

const (
	serverA  serverType = "A"
	serverMX serverType = "MX"
	serverNS serverType = "NS"
)

// buildServerAccess makes check_{client,reverse_client_hostname,helo,
// sender,recipient}_{a,mx,ns}_access: Postfix's check_server_access on
// the name the restriction's class gives, with an OK refused as in
// forbid_allowlist.
func buildServerAccess(subject string, typ serverType) builder {
	return func(_ *compiler, name, _ string, tr *tableRef) runFunc {
		return func(e *eval) status {
			var target, replyName, class string
			switch subject {
			case "client":
				// The verified name; the reply names the client as name[addr].
				if e.req.ClientName == "" || strings.EqualFold(e.req.ClientName, "unknown") {
					return dunno
				}
				target, replyName, class = e.req.ClientName, e.req.namaddr(), rcClient
			case "reverse_client":
				if e.req.ReverseName == "" || strings.EqualFold(e.req.ReverseName, "unknown") {
					return dunno
				}
				target, replyName, class = e.req.ReverseName, e.req.ReverseName, rcReverseClient
			case "helo":
				if e.req.Helo == "" {
					return dunno
				}
				target, replyName, class = e.req.Helo, e.req.Helo, rcHelo
			case "sender":
				if !e.hasSender || e.req.Sender == "" {
					return dunno
				}
				target, replyName, class = e.req.Sender, e.req.Sender, rcSender
			case "recipient":
				if !e.hasRecipient || e.recipient == "" {
					return dunno
				}
				target, replyName, class = e.recipient, e.recipient, rcRecipient
			}
			st := e.checkServerAccess(tr, target, typ, replyName, class)
			return e.forbidAllowlist(name, st, target)
		}
	}
}

// checkServerAccess is Postfix's check_server_access: the domain of name
// (after any "@") gives a list of servers (its MX hosts, its NS hosts,
// or for A the domain itself); each server's name (not for A) and then
// each of its addresses is looked up in the table, and the first entry
// found decides. DNS trouble is logged and decides nothing.
func (e *eval) checkServerAccess(tr *tableRef, name string, typ serverType, replyName, class string) status {
	domain := name
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		domain = name[i+1:]
	}
	// An address literal is its own MX (and A) server; it has no NS.
	if strings.HasPrefix(domain, "[") {
		if typ == serverNS || !strings.HasSuffix(domain, "]") {
			return dunno
		}
		bare := domain[1 : len(domain)-1]
		if _, ok := rules.MailhostAddr(bare); !ok {
			return dunno
		}
		if len(bare) > 5 && strings.EqualFold(bare[:5], "IPv6:") {
			bare = bare[5:]
		}
		st, _ := e.checkAddrAccess(tr, bare, replyName, class)
		return st
	}
	// A UTF-8 domain is looked up in its ASCII form (Postfix's
	// midna_domain_to_ascii); one that has none stays as it is.
	if strings.IndexFunc(domain, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		if a, err := idna.Lookup.ToASCII(domain); err == nil {
			domain = a
		}
	}
	servers, ok := e.serverList(domain, typ, name)
	if !ok {
		return dunno
	}
	for _, host := range servers {
		if rules.ValidHostaddr(host) {
			if st, found := e.checkAddrAccess(tr, host, replyName, class); st != dunno || found {
				return st
			}
			continue
		}
		if typ != serverA {
			if st, found := e.checkDomainAccess(tr, host, replyName, class); st != dunno || found {
				return st
			}
		}
		addrs, err := e.l.opts.DNS.LookupHost(e.ctx, host)
		if err != nil || len(addrs) == 0 {
			if typ != serverA {
				e.warning("Unable to look up %s host %s for %s %s: %s", typ, host, class, replyName, hostErrorText(err))
			}
			continue
		}
		for _, a := range addrs {
			if !e.l.opts.inetFamily(a) {
				continue
			}
			if st, found := e.checkAddrAccess(tr, a.Unmap().String(), replyName, class); st != dunno || found {
				return st
			}
		}
	}
	return dunno
}

// serverList gives the servers of domain, trailing dots removed: for A the
// domain itself; for MX its MX hosts, or the domain itself when it has
// none (nor even exists); for NS its NS hosts or those of the closest
// parent that has some. ok is false, with a warning, when the lookup
// failed, and (without one) for a null MX.
func (e *eval) serverList(domain string, typ serverType, name string) (hosts []string, ok bool) {
	r := e.l.opts.DNS
	if r == nil {
		e.warning("Unable to look up %s host for %s: no DNS resolver", typ, domain)
		return nil, false
	}
	if typ == serverA {
		return []string{domain}, true
	}
	lookup := func(d string) ([]string, error) {
		if rules.ValidHostaddr(d) {
			// Postfix's dns_lookup does not ask for a numeric name.
			return nil, &net.DNSError{Err: "invalid host or domain name", Name: d, IsNotFound: true}
		}
		var out []string
		if typ == serverMX {
			mxs, err := r.LookupMX(e.ctx, d)
			for _, mx := range mxs {
				out = append(out, mx.Host)
			}
			return out, err
		}
		nss, err := r.LookupNS(e.ctx, d)
		for _, ns := range nss {
			out = append(out, ns.Host)
		}
		return out, err
	}
	hosts, err := lookup(domain)
	if err == nil && typ == serverMX && len(hosts) == 1 && hosts[0] == "." {
		return nil, false // null MX
	}
	if err != nil && notFound(err) {
		if typ == serverMX {
			return []string{domain}, true
		}
		// NS: the parents, up to and including the top-level domain. When
		// none has NS records, Postfix's warning names the whole target.
		for d := domain; err != nil && notFound(err); {
			i := strings.IndexByte(d, '.')
			if i < 0 || i == len(d)-1 {
				domain = name
				break
			}
			d = d[i+1:]
			domain = d
			hosts, err = lookup(d)
		}
	}
	if err != nil {
		e.warning("Unable to look up %s host for %s: %s", typ, domain, dnsErrorText(err))
		return nil, false
	}
	for i, h := range hosts {
		hosts[i] = strings.TrimSuffix(h, ".")
	}
	return hosts, true
}

// dnsErrorText is Postfix's dns_strerror text for a failed lookup.
func dnsErrorText(err error) string {
	if notFound(err) {
		return "Host not found"
	}
	return "Host not found, try again"
}

// hostErrorText is the getaddrinfo text Postfix logs for a server name
// that gave no address.
func hostErrorText(err error) string {
	if err == nil || notFound(err) {
		return "Name or service not known"
	}
	return "Temporary failure in name resolution"
}

// inetFamily reports whether inet_protocols enables a's family.
func (o *Options) inetFamily(a netip.Addr) bool {
	if !o.InetIPv4 && !o.InetIPv6 {
		return true
	}
	if a.Unmap().Is4() {
		return o.InetIPv4
	}
	return o.InetIPv6
}
