package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"postgate/restrictions"
	"postgate/rules"
)

// dnsResolver is what the session needs of the process's resolver: the
// client's name, the DNS-based restrictions, and DKIM keys and DMARC
// records (auth.go).
type dnsResolver interface {
	LookupAddr(ctx context.Context, addr netip.Addr) ([]string, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	restrictions.Resolver
}

// peerLookupTimeout bounds the reverse and forward lookups of one client.
const peerLookupTimeout = 10 * time.Second

// lookupPeer finds the client's name as Postfix's smtpd_peer does: the
// reverse name (PTR, a valid non-numeric host name, lowercased), then
// the verified name, which must resolve back to the client's address
// (among addresses of its family); else the name is "unknown" and the
// status says why: a temporary failure, none, or a forged name.
func (s *service) lookupPeer(ctx context.Context, addr netip.Addr) (name, reverse string, nameStatus, reverseStatus restrictions.PeerStatus) {
	unknown := "unknown"
	if !s.peernameLookup || s.dns == nil || !addr.IsValid() {
		return unknown, unknown, restrictions.PeerPerm, restrictions.PeerPerm
	}
	ctx, cancel := context.WithTimeout(ctx, peerLookupTimeout)
	defer cancel()
	names, err := s.dns.LookupAddr(ctx, addr)
	if err != nil || len(names) == 0 {
		st := dnsStatus(err)
		return unknown, unknown, st, st
	}
	ptr := strings.ToLower(strings.TrimSuffix(names[0], "."))
	if !rules.ValidHostname(ptr, false) || rules.AllDigits(strings.ReplaceAll(ptr, ".", "")) {
		return unknown, unknown, restrictions.PeerPerm, restrictions.PeerPerm
	}
	addrs, err := s.dns.LookupHost(ctx, ptr)
	if err != nil {
		reason := "Name or service not known"
		if dnsStatus(err) == restrictions.PeerTemp {
			reason = "Temporary failure in name resolution"
			nameStatus = restrictions.PeerTemp
		} else {
			nameStatus = restrictions.PeerForged
		}
		s.log.Logf("smtpd", "warning: hostname %s does not resolve to address %s: %s", ptr, addr.Unmap(), reason)
		return unknown, ptr, nameStatus, restrictions.PeerOK
	}
	for _, a := range addrs {
		if a.Unmap() == addr.Unmap() {
			return ptr, ptr, restrictions.PeerOK, restrictions.PeerOK
		}
	}
	s.log.Logf("smtpd", "warning: hostname %s does not resolve to address %s", ptr, addr.Unmap())
	return unknown, ptr, restrictions.PeerForged, restrictions.PeerOK
}

// dnsStatus classifies a failed lookup: not found is permanent, anything
// else (timeouts, server failures) temporary.
func dnsStatus(err error) restrictions.PeerStatus {
	var de *net.DNSError
	if err == nil || errors.As(err, &de) && de.IsNotFound {
		return restrictions.PeerPerm
	}
	return restrictions.PeerTemp
}
