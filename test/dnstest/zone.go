package dnstest

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// zone is the parsed data the server answers from; it is never changed after parseZone.
type zone struct {
	records map[string][]dns.RR // by canonical owner name
	exists  map[string]bool     // owners and their ancestors (empty non-terminals exist too)
	soas    []*dns.SOA
}

// parseZone reads master-file text. Names are absolute unless an $ORIGIN says otherwise.
func parseZone(text string) (*zone, error) {
	z := &zone{records: map[string][]dns.RR{}, exists: map[string]bool{}}
	zp := dns.NewZoneParser(strings.NewReader(text), ".", "zone")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		owner := dns.CanonicalName(rr.Header().Name)
		rr.Header().Name = owner
		z.records[owner] = append(z.records[owner], rr)
		for off, end := 0, false; !end; off, end = dns.NextLabel(owner, off) {
			z.exists[owner[off:]] = true
		}
		if soa, ok := rr.(*dns.SOA); ok {
			z.soas = append(z.soas, soa)
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("zone: %v", err)
	}
	if len(z.soas) == 0 {
		z.soas = append(z.soas, z.madeUpSOA())
	}
	return z, nil
}

// madeUpSOA is the SOA of negative answers for a zone that has none: at the longest suffix
// common to every owner name.
func (z *zone) madeUpSOA() *dns.SOA {
	apex := ""
	first := true
	for owner := range z.records {
		if first {
			apex, first = owner, false
			continue
		}
		labels := dns.CompareDomainName(apex, owner)
		idx := dns.Split(apex)
		if labels == 0 {
			apex = "."
		} else {
			apex = apex[idx[len(idx)-labels]:]
		}
	}
	apex = strings.TrimPrefix(apex, "*.")
	if apex == "" {
		apex = "."
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:      "ns." + strings.TrimPrefix(apex, "."),
		Mbox:    "hostmaster." + strings.TrimPrefix(apex, "."),
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  60,
	}
}

// soaFor is the SOA whose owner is the closest ancestor of name (or the first one).
func (z *zone) soaFor(name string) *dns.SOA {
	best := z.soas[0]
	bestLabels := -1
	for _, soa := range z.soas {
		if dns.IsSubDomain(soa.Hdr.Name, name) {
			if n := dns.CountLabel(soa.Hdr.Name); n > bestLabels {
				best, bestLabels = soa, n
			}
		}
	}
	return best
}

// lookup gives the records at name, expanding a wildcard when name does not exist.
func (z *zone) lookup(name string) (rrs []dns.RR, exists bool) {
	if z.exists[name] {
		return z.records[name], true
	}
	// The closest encloser is the longest existing ancestor; only its wildcard applies.
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		encloser := name[off:]
		if !z.exists[encloser] {
			continue
		}
		wild, ok := z.records["*."+encloser]
		if !ok {
			return nil, false
		}
		out := make([]dns.RR, len(wild))
		for i, rr := range wild {
			out[i] = dns.Copy(rr)
			out[i].Header().Name = name
		}
		return out, true
	}
	return nil, false
}

// answer fills resp for a query of name and qtype, following CNAMEs inside the zone.
func (z *zone) answer(resp *dns.Msg, name string, qtype uint16) {
	cur := name
	for range 8 {
		rrs, exists := z.lookup(cur)
		if !exists {
			resp.Rcode = dns.RcodeNameError
			resp.Ns = append(resp.Ns, z.negativeSOA(cur))
			return
		}
		var cname *dns.CNAME
		found := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == qtype {
				resp.Answer = append(resp.Answer, dns.Copy(rr))
				found = true
			}
			if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if found {
			return
		}
		if cname == nil || qtype == dns.TypeCNAME {
			resp.Ns = append(resp.Ns, z.negativeSOA(cur)) // NODATA
			return
		}
		resp.Answer = append(resp.Answer, dns.Copy(cname))
		cur = dns.CanonicalName(cname.Target)
	}
}

// negativeSOA is the SOA for the authority section of a negative answer, its TTL the lesser of
// its own and its minimum (RFC 2308).
func (z *zone) negativeSOA(name string) dns.RR {
	soa := dns.Copy(z.soaFor(name)).(*dns.SOA)
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}
