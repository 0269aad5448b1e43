// Package dnsbl asks DNS-based lists about clients and domains: DNSBL and
// DNSWL lists of addresses, RHSBL and RHSWL lists of names, with Postfix's
// query names, reply filters and TXT texts.
//
// It takes the process's resolver through a small interface, so it never
// imports the gateway and can be tested alone.
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Resolver is what dnsbl asks of the process's resolver. Failures are
// *net.DNSError values; IsNotFound marks NXDOMAIN and NODATA (not listed),
// anything else is a temporary failure.
type Resolver interface {
	// LookupIP with network "ip4" gives the A records of host.
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Site is one list as a restriction names it: "domain[=filter]".
type Site struct {
	Arg    string  // as written: rbl_reply_maps is looked up with it
	Domain string  // the list's DNS domain
	Filter *Filter // nil: any A record means listed
}

// ParseSite parses "domain[=filter]". A bad filter is an error worded as
// Postfix words it ("RBL reply error: ...").
func ParseSite(arg string) (Site, error) {
	s := Site{Arg: arg, Domain: arg}
	if domain, pattern, ok := strings.Cut(arg, "="); ok {
		f, err := ParseFilter(pattern)
		if err != nil {
			return Site{}, fmt.Errorf("RBL reply error: %v", err)
		}
		s.Domain, s.Filter = domain, f
	}
	return s, nil
}

// Options configure a Client.
type Options struct {
	// Resolver answers the queries; nil fails every lookup as a temporary
	// failure (postgate check builds lists without one).
	Resolver Resolver
}

// Client asks lists. It is safe for concurrent use; answers are cached
// by the resolver, not here.
type Client struct {
	r Resolver
}

// New builds a Client.
func New(opts Options) *Client { return &Client{r: opts.Resolver} }

// Status is what a list said.
type Status int

const (
	// NotListed: no A record, none that passes the filter, or a name
	// lists are not asked about.
	NotListed Status = iota
	// Listed: an A record passes the filter.
	Listed
	// Failed: the list did not answer (timeout, SERVFAIL): Postfix gives
	// the client the benefit of the doubt.
	Failed
)

// Result is one list's answer.
type Result struct {
	Status Status
	Query  string       // the name asked, "" when none was
	Addrs  []netip.Addr // the A records, when Listed
	// TXT is the list's TXT records for the name, joined with " / " and
	// cut to 500 bytes, as Postfix's $rbl_reason; "" when it has none.
	TXT string
	// Err says why the lookup failed, when Failed.
	Err error
}

// LookupError is a list lookup that failed. Its text is Postfix's
// warning for the case, so admins' log searches keep working.
type LookupError struct {
	Query string
	Err   error // the resolver's error
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("%s: RBL lookup error: Host or domain name not found. Name service error for name=%s type=A: Host not found, try again", e.Query, e.Query)
}

func (e *LookupError) Unwrap() error { return e.Err }

// CheckAddr asks site about a client address: the reversed octets of an
// IPv4 address, or the 32 reversed nibbles of an IPv6 one, under the
// list's domain.
func (c *Client) CheckAddr(ctx context.Context, site Site, addr netip.Addr) Result {
	return c.check(ctx, site, AddrQuery(addr, site.Domain))
}

// CheckDomain asks site about a host name, or the domain of an address
// user@domain. Names Postfix does not ask about are NotListed without a
// query: an address literal, a name ending in a numeric label, an empty
// or invalid name (see DomainQuery).
func (c *Client) CheckDomain(ctx context.Context, site Site, what string) Result {
	q, ok := DomainQuery(what, site.Domain)
	if !ok {
		return Result{}
	}
	return c.check(ctx, site, q)
}

// rblTXTLimit bounds the TXT text of a listing, as Postfix's RBL_TXT_LIMIT.
const rblTXTLimit = 500

func (c *Client) check(ctx context.Context, site Site, query string) Result {
	res := Result{Query: query}
	if c.r == nil {
		res.Status, res.Err = Failed, &LookupError{Query: query, Err: errors.New("no resolver")}
		return res
	}
	ips, err := c.r.LookupIP(ctx, "ip4", query)
	if err != nil {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			res.Status, res.Err = Failed, &LookupError{Query: query, Err: err}
		}
		return res
	}
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if site.Filter == nil || site.Filter.Match(a) {
			res.Addrs = append(res.Addrs, a)
		}
	}
	if len(res.Addrs) == 0 {
		return res
	}
	res.Status = Listed
	// The text is only for the reply: a list without TXT records, or
	// one that fails to give them, still lists.
	if txts, err := c.r.LookupTXT(ctx, query); err == nil {
		res.TXT = joinTXT(txts)
	}
	return res
}

// joinTXT joins TXT records with " / " up to rblTXTLimit bytes; a
// separator that no longer fits is left out. As in Postfix, a byte that
// is not printable ASCII (control characters, each byte of UTF-8) becomes
// a space: the text comes from whoever runs the list and goes into our
// reply.
func joinTXT(txts []string) string {
	var b strings.Builder
	for i, t := range txts {
		t = printableASCII(t)
		left := rblTXTLimit - b.Len()
		if left <= 0 {
			break
		}
		b.WriteString(t[:min(len(t), left)])
		if i+1 < len(txts) && rblTXTLimit-b.Len() > 3 {
			b.WriteString(" / ")
		}
	}
	return b.String()
}

func printableASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = ' '
		}
	}
	return string(b)
}
