package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// The texts of the standard library's resolver errors, so logs read the same.
const (
	errNoSuchHost = "no such host"
	errTimeout    = "i/o timeout"
)

// query resolves name and type and gives the records, or a *net.DNSError.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fqdn := dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(fqdn); !ok || name == "" || len(fqdn) > 254 {
		return nil, &net.DNSError{Err: errNoSuchHost, Name: name, IsNotFound: true}
	}
	ans, err := r.resolve(ctx, fqdn, qtype)
	if err != nil {
		return nil, dnsError(name, err)
	}
	if len(ans.rrs) == 0 {
		return nil, &net.DNSError{Err: errNoSuchHost, Name: name, Server: ans.server, IsNotFound: true}
	}
	return ans.rrs, nil
}

// dnsError turns a failed resolve into the *net.DNSError callers type-assert.
func dnsError(name string, err error) *net.DNSError {
	var f *failure
	switch {
	case errors.As(err, &f):
		de := &net.DNSError{Err: f.reason, Name: name, Server: f.server, IsTemporary: true, IsTimeout: f.timeout}
		if f.timeout {
			de.Err = errTimeout
		}
		return de
	case errors.Is(err, context.DeadlineExceeded):
		return &net.DNSError{Err: errTimeout, Name: name, IsTimeout: true, IsTemporary: true, UnwrapErr: err}
	default: // the caller's context was canceled
		return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true, UnwrapErr: err}
	}
}

// LookupMX gives the MX records of name, sorted by preference; records of equal preference
// keep the server's order. A null MX (RFC 7505, "MX 0 .") comes back as one record with
// Host ".". Hosts are absolute names with the trailing dot.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	mxs := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		mxs = append(mxs, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return mxs, nil
}

// LookupNS gives the NS records of name, in the server's order. Hosts are absolute names with
// the trailing dot.
func (r *Resolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	rrs, err := r.query(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	nss := make([]*net.NS, 0, len(rrs))
	for _, rr := range rrs {
		nss = append(nss, &net.NS{Host: rr.(*dns.NS).Ns})
	}
	return nss, nil
}

// LookupTXT gives the TXT records of name, the strings of each record joined without
// separator (as net.LookupTXT and SPF, DKIM and DMARC want them).
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	txts := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		txts = append(txts, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return txts, nil
}

// LookupAddr gives the PTR names of addr (absolute, with the trailing dot). An IPv4-mapped
// IPv6 address is looked up as IPv4.
func (r *Resolver) LookupAddr(ctx context.Context, addr netip.Addr) ([]string, error) {
	if !addr.IsValid() {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr.String()}
	}
	arpa, err := dns.ReverseAddr(addr.Unmap().WithZone("").String())
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr.String()}
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		names = append(names, rr.(*dns.PTR).Ptr)
	}
	return names, nil
}

// LookupHost gives the addresses of host: its A records, then its AAAA records, asked at the
// same time. A literal address is returned as is. When one family has addresses, a failure of
// the other is not reported; when neither has, a temporary failure wins over "not found".
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return r.lookupHost(ctx, host, true, true)
}

// LookupIP is LookupHost in the standard library's shape, for libraries that want it: network
// "ip" asks both families, "ip4" only A, "ip6" only AAAA.
func (r *Resolver) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	var want4, want6 bool
	switch network {
	case "ip":
		want4, want6 = true, true
	case "ip4":
		want4 = true
	case "ip6":
		want6 = true
	default:
		return nil, &net.DNSError{Err: "unsupported network " + network, Name: host}
	}
	addrs, err := r.lookupHost(ctx, host, want4, want6)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, net.IP(a.AsSlice()))
	}
	return ips, nil
}

func (r *Resolver) lookupHost(ctx context.Context, host string, want4, want6 bool) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if (a.Unmap().Is4() && !want4) || (!a.Unmap().Is4() && !want6) {
			return nil, &net.DNSError{Err: "no suitable address", Name: host, IsNotFound: true}
		}
		return []netip.Addr{a}, nil
	}
	if !want6 {
		return r.addrs(ctx, host, dns.TypeA)
	}
	if !want4 {
		return r.addrs(ctx, host, dns.TypeAAAA)
	}

	type result struct {
		addrs []netip.Addr
		err   error
	}
	six := make(chan result, 1)
	go func() {
		a, err := r.addrs(ctx, host, dns.TypeAAAA)
		six <- result{a, err}
	}()
	v4, err4 := r.addrs(ctx, host, dns.TypeA)
	v6 := <-six
	addrs := append(v4, v6.addrs...)
	if len(addrs) > 0 {
		return addrs, nil
	}
	// Neither family has an address: a temporary failure says more than "not found".
	switch {
	case err4 == nil && v6.err == nil:
		return nil, &net.DNSError{Err: errNoSuchHost, Name: host, IsNotFound: true}
	case err4 == nil || (isNotFound(err4) && v6.err != nil):
		return nil, v6.err
	default:
		return nil, err4
	}
}

func isNotFound(err error) bool {
	de, ok := err.(*net.DNSError)
	return ok && de.IsNotFound
}

// addrs gives the A or AAAA records of host.
func (r *Resolver) addrs(ctx context.Context, host string, qtype uint16) ([]netip.Addr, error) {
	rrs, err := r.query(ctx, host, qtype)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(rrs))
	for _, rr := range rrs {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A.To4()
		case *dns.AAAA:
			ip = rr.AAAA.To16()
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a)
		}
	}
	return out, nil
}
