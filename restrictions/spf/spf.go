// Package spf evaluates SPF (RFC 7208) for a mail transaction through the
// process's resolver, and writes the result as the Received-SPF: header
// policyd-spf prepends.
package spf

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	libspf "blitiri.com.ar/go/spf"
)

// Resolver is what SPF asks of the process's resolver; gateway/resolver
// answers it. Errors must be *net.DNSError, IsNotFound for NXDOMAIN and
// NODATA, IsTemporary otherwise: the library tells void lookups and
// temporary errors apart by that type.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]netip.Addr, error)
	LookupAddr(ctx context.Context, addr netip.Addr) ([]string, error)
}

// Timeout bounds one whole evaluation (RFC 7208 4.6.4 asks for at least
// 20 seconds); each query is bounded by the resolver's own timeout.
const Timeout = 20 * time.Second

// The lookup limits of RFC 7208 4.6.4: at most 10 mechanisms and
// modifiers that query DNS, and at most 2 of them answered with nothing.
const (
	LookupLimit     = 10
	VoidLookupLimit = 2
)

// Result is an SPF result (RFC 7208 section 8): none, neutral, pass,
// fail, softfail, temperror or permerror.
type Result string

const (
	None      = Result(libspf.None)
	Neutral   = Result(libspf.Neutral)
	Pass      = Result(libspf.Pass)
	Fail      = Result(libspf.Fail)
	SoftFail  = Result(libspf.SoftFail)
	TempError = Result(libspf.TempError)
	PermError = Result(libspf.PermError)
)

// The identities checked (RFC 7208 section 2).
const (
	MailFrom = "mailfrom"
	Helo     = "helo"
)

// Outcome is the SPF evaluation of one transaction.
type Outcome struct {
	Result   Result
	Identity string // MailFrom, or Helo for the null sender
	// Domain is the domain checked: the sender's, or the HELO name.
	Domain   string
	ClientIP netip.Addr
	Helo     string // the HELO/EHLO argument
	Sender   string // the MAIL FROM address, "" for the null sender
	// Problem says why the result is temperror or permerror (for the log).
	Problem string
}

// Check evaluates SPF for a client at ip that said helo and MAIL FROM
// sender: the MAIL FROM identity, or for the null sender the HELO
// identity (as postmaster@helo, RFC 7208 2.4), as policyd-spf does. An
// identity that has no domain to check (no HELO, an address literal) is
// none.
func Check(ctx context.Context, r Resolver, ip netip.Addr, helo, sender string) Outcome {
	o := Outcome{Identity: MailFrom, ClientIP: ip.Unmap(), Helo: helo, Sender: sender, Result: None}
	identity := sender
	if at := strings.LastIndexByte(sender, '@'); at >= 0 {
		o.Domain = sender[at+1:]
	} else if sender == "" {
		o.Identity, o.Domain, identity = Helo, helo, "postmaster@"+helo
	}
	if o.Domain == "" || strings.HasPrefix(o.Domain, "[") || !ip.IsValid() {
		return o
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	res, err := libspf.CheckHostWithSender(net.IP(o.ClientIP.AsSlice()), helo, identity,
		libspf.WithContext(ctx), libspf.WithResolver(adapter{r}),
		libspf.OverrideLookupLimit(LookupLimit), libspf.OverrideVoidLookupLimit(VoidLookupLimit))
	o.Result = Result(res)
	if err != nil && (o.Result == TempError || o.Result == PermError) {
		o.Problem = err.Error()
	}
	return o
}

// adapter gives the library the standard library's resolver shape.
type adapter struct{ r Resolver }

func (a adapter) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return a.r.LookupTXT(ctx, name)
}

func (a adapter) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return a.r.LookupMX(ctx, name)
}

func (a adapter) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := a.r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]net.IPAddr, 0, len(addrs))
	for _, ad := range addrs {
		out = append(out, net.IPAddr{IP: net.IP(ad.Unmap().AsSlice())})
	}
	return out, nil
}

func (a adapter) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	return a.r.LookupAddr(ctx, ip)
}
