// Package dmarc evaluates DMARC (RFC 7489) for a received message from
// its RFC5322.From domain and the SPF and DKIM results: the record is
// looked up (go-msgauth's dmarc parses it) at the From domain, else at
// its organizational domain (the public suffix list), identifiers are
// aligned strictly or relaxed as the record asks, and the policy that
// applies (p, or sp for a subdomain) is sampled by pct.
package dmarc

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"postgate/restrictions/internal/authdns"
)

// Resolver is what DMARC asks of the process's resolver: TXT records,
// with *net.DNSError errors (IsNotFound for NXDOMAIN and NODATA).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// The results of RFC 7489 section 11.2.
const (
	Pass      = "pass"
	Fail      = "fail"
	None      = "none"
	TempError = "temperror"
	PermError = "permerror"
)

// The policies and dispositions.
const (
	PolicyNone       = string(dmarc.PolicyNone)
	PolicyQuarantine = dmarc.PolicyQuarantine
	PolicyReject     = dmarc.PolicyReject
)

// Timeout bounds the record lookups of one evaluation (at most two
// queries, each bounded by the resolver's own timeout).
const Timeout = 10 * time.Second

// Input is what DMARC is evaluated on.
type Input struct {
	From      string   // the RFC5322.From domain
	SPFDomain string   // the domain SPF checked (MAIL FROM, or HELO for the null sender)
	SPFPass   bool     // SPF said pass for it
	DKIM      []string // the d= domains of the signatures that verified
}

// Result is the DMARC evaluation of one message.
type Result struct {
	Value  string // Pass, Fail, None, TempError or PermError
	Domain string // the RFC5322.From domain
	// Policy is the policy that applies (p=, or sp= for a subdomain):
	// PolicyNone, PolicyQuarantine or PolicyReject; "" without a record.
	Policy string
	// Disposition is what the receiver should do: Policy for a failure,
	// lowered one step when pct= sampled the message out; PolicyNone when
	// the message passes or has no applicable policy.
	Disposition string
	Problem     string // why temperror or permerror
}

// Evaluate looks the policy of in.From up and applies it.
func Evaluate(ctx context.Context, r Resolver, in Input) Result {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	from := strings.ToLower(strings.TrimSuffix(in.From, "."))
	res := Result{Value: None, Domain: from, Disposition: PolicyNone}
	org := OrganizationalDomain(from)
	rec, err := lookup(ctx, r, from)
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != from {
		rec, err = lookup(ctx, r, org)
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return res
	case dmarc.IsTempFail(err):
		res.Value, res.Problem = TempError, strings.TrimPrefix(err.Error(), "dmarc: ")
		return res
	case err != nil:
		res.Value, res.Problem = PermError, strings.TrimPrefix(err.Error(), "dmarc: ")
		return res
	}
	res.Policy = string(rec.Policy)
	if sub && rec.SubdomainPolicy != "" {
		res.Policy = string(rec.SubdomainPolicy)
	}
	res.Value = Fail
	if in.SPFPass && aligned(in.SPFDomain, from, rec.SPFAlignment) {
		res.Value = Pass
	}
	for _, d := range in.DKIM {
		if aligned(d, from, rec.DKIMAlignment) {
			res.Value = Pass
		}
	}
	if res.Value == Fail {
		res.Disposition = res.Policy
		if rec.Percent != nil && *rec.Percent < 100 && rand.IntN(100) >= *rec.Percent {
			res.Disposition = lower(res.Policy)
		}
	}
	return res
}

// lookup finds the DMARC record of domain.
func lookup(ctx context.Context, r Resolver, domain string) (*dmarc.Record, error) {
	return dmarc.LookupWithOptions(domain, &dmarc.LookupOptions{
		LookupTXT: authdns.TXT(ctx, r),
	})
}

// lower is the disposition of a failing message that pct= sampled out
// (RFC 7489 section 6.6.4): reject becomes quarantine, quarantine none.
func lower(policy string) string {
	if policy == PolicyReject {
		return PolicyQuarantine
	}
	return PolicyNone
}

// aligned says whether an authenticated domain is aligned with the From
// domain: the same domain (strict), or the same organizational domain
// (relaxed, the default).
func aligned(domain, from string, mode dmarc.AlignmentMode) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return false
	}
	if domain == from {
		return true
	}
	return mode != dmarc.AlignmentStrict && OrganizationalDomain(domain) == OrganizationalDomain(from)
}

// OrganizationalDomain is domain's registered domain: one label below its
// public suffix (RFC 7489 section 3.2); a public suffix is its own.
func OrganizationalDomain(domain string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}
