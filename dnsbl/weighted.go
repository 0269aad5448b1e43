package dnsbl

import (
	"fmt"
	"strconv"
	"strings"

	"postgate/rules"
)

// WeightedSite is one entry of postscreen_dnsbl_sites:
// "domain[=filter][*weight]". A negative weight allowlists.
type WeightedSite struct {
	Site
	Weight int
}

// ParseWeightedSite parses a postscreen_dnsbl_sites entry. Errors read as
// Postfix's postscreen words them.
func ParseWeightedSite(entry string) (WeightedSite, error) {
	s := entry
	w := WeightedSite{Weight: 1}
	if rest, weight, ok := strings.Cut(s, "*"); ok {
		n, err := strconv.Atoi(weight)
		if err != nil || weight == "" {
			return WeightedSite{}, fmt.Errorf("bad DNSBL weight factor \"%s\" in \"%s\"", weight, entry)
		}
		s, w.Weight = rest, n
	}
	w.Arg, w.Domain = s, s
	if domain, pattern, ok := strings.Cut(s, "="); ok {
		f, err := ParseFilter(pattern)
		if err != nil {
			return WeightedSite{}, fmt.Errorf("bad DNSBL filter syntax: %v", err)
		}
		w.Domain, w.Filter = domain, f
	}
	if !rules.ValidHostname(w.Domain, false) {
		return WeightedSite{}, fmt.Errorf("bad DNSBL domain name \"%s\" in \"%s\"", w.Domain, entry)
	}
	return w, nil
}

// ParseWeightedSites parses the entries of postscreen_dnsbl_sites (the
// list already split).
func ParseWeightedSites(entries []string) ([]WeightedSite, error) {
	var out []WeightedSite
	for _, e := range entries {
		w, err := ParseWeightedSite(e)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}
