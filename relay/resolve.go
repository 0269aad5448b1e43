package relay

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// server is one address to try for a delivery.
type server struct {
	host    string // the name texts show: MX host, or the destination's host or address
	addr    netip.AddrPort
	pref    uint16
	best    bool   // among the most preferred MX hosts (loop detection)
	dest    string // the destination it came from, as written
	nexthop string // its host or domain, for certificate matching
	unix    string // LMTP: a socket path instead of addr
}

// resolve turns destinations into the addresses to try, in order, at most
// MXAddressLimit of them (smtp_addr.c). With several destinations a
// destination that fails is skipped; when all fail a soft failure wins
// over a hard one.
func (t *SMTP) resolve(ctx context.Context, dests []destination) ([]server, *failure) {
	var all []server
	var soft, hard *failure
	for _, d := range dests {
		srvs, f := t.resolveOne(ctx, d)
		if f != nil {
			if f.status == Deferred {
				soft = f
			} else {
				hard = f
			}
			continue
		}
		for i := range srvs {
			srvs[i].dest, srvs[i].nexthop = d.raw, d.host
		}
		all = append(all, srvs...)
	}
	if lim := t.opts.MXAddressLimit; lim > 0 && len(all) > lim {
		all = all[:lim]
	}
	switch {
	case len(all) > 0:
		return all, nil
	case soft != nil:
		return nil, soft
	}
	return nil, hard
}

func (t *SMTP) resolveOne(ctx context.Context, d destination) ([]server, *failure) {
	if d.unix != "" {
		path := d.unix
		if !filepath.IsAbs(path) {
			path = filepath.Join(t.opts.QueueDirectory, path)
		}
		host := t.opts.MyHostname
		if host == "" {
			host = "localhost"
		}
		return []server{{host: host, unix: path, best: true}}, nil
	}
	if d.addr.IsValid() {
		return []server{{host: d.host, addr: netip.AddrPortFrom(d.addr, d.port), best: true}}, nil
	}
	if !d.mx {
		return t.hostServers(ctx, d.host, d.port)
	}
	mxs, err := t.opts.Resolver.LookupMX(ctx, d.host)
	if err != nil {
		if isNotFound(err) {
			return nil, hardFail("5.4.4", "Host or domain name not found. Name service error for name=%s type=MX: Host not found", d.host)
		}
		return nil, softFail("4.4.3", "Host or domain name not found. Name service error for name=%s type=MX: Host not found, try again", d.host)
	}
	for _, mx := range mxs {
		if mx.Host == "." || mx.Host == "" {
			return nil, hardFail("5.1.0", "Domain %s does not accept mail (nullMX)", d.host)
		}
	}
	if len(mxs) == 0 {
		return t.hostServers(ctx, d.host, d.port)
	}
	mxs = slices.Clone(mxs)
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	var out []server
	var soft, hard *failure
	for _, mx := range mxs {
		host := strings.TrimSuffix(mx.Host, ".")
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			var f *failure
			if addrs, f = t.lookupHost(ctx, host); f != nil {
				if f.status == Deferred {
					soft = f
				} else {
					hard = f
				}
				continue
			}
		}
		for _, a := range addrs {
			out = append(out, server{host: host, addr: netip.AddrPortFrom(a.Unmap(), d.port), pref: mx.Pref, best: mx.Pref == mxs[0].Pref})
		}
	}
	if len(out) == 0 {
		// "no MX host for %s has a valid address record": the last lookup
		// error says why; a soft error dominates (smtp_addr.c).
		if soft != nil {
			return nil, soft
		}
		return nil, hard
	}
	shuffleEqualPreference(out)
	return out, nil
}

// hostServers looks up the addresses of a host that is used directly.
func (t *SMTP) hostServers(ctx context.Context, host string, port uint16) ([]server, *failure) {
	addrs, f := t.lookupHost(ctx, host)
	if f != nil {
		return nil, f
	}
	out := make([]server, len(addrs))
	for i, a := range addrs {
		out[i] = server{host: host, addr: netip.AddrPortFrom(a.Unmap(), port), best: true}
	}
	shuffleEqualPreference(out)
	return out, nil
}

// lookupHost is an A/AAAA lookup with dns_lookup.c's texts.
func (t *SMTP) lookupHost(ctx context.Context, host string) ([]netip.Addr, *failure) {
	addrs, err := t.opts.Resolver.LookupHost(ctx, host)
	switch {
	case err != nil && isNotFound(err):
		return nil, hardFail("5.4.4", "Host or domain name not found. Name service error for name=%s type=A: Host not found", host)
	case err != nil:
		return nil, softFail("4.4.3", "Host or domain name not found. Name service error for name=%s type=A: Host not found, try again", host)
	case len(addrs) == 0:
		return nil, hardFail("5.4.4", "Host or domain name not found. Name service error for name=%s type=A: Host found but no data record of requested type", host)
	}
	return addrs, nil
}

func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// shuffleEqualPreference randomizes the order of addresses with equal
// preference (smtp_randomize_addresses = yes); srvs is sorted by
// preference.
func shuffleEqualPreference(srvs []server) {
	for i := 0; i < len(srvs); {
		j := i + 1
		for j < len(srvs) && srvs[j].pref == srvs[i].pref {
			j++
		}
		run := srvs[i:j]
		rand.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
		i = j
	}
}
