// Package txtzone is a TXT-only resolver from a map, for the tests of the
// mail authentication packages.
package txtzone

import (
	"context"
	"net"
)

// Temp is the value of a name whose lookup fails temporarily.
const Temp = "temp"

// Zone maps names to their one TXT record; a name it lacks does not exist.
type Zone map[string]string

// LookupTXT answers as gateway/resolver does: *net.DNSError for NXDOMAIN
// (IsNotFound) and for temporary failures (IsTemporary).
func (z Zone) LookupTXT(_ context.Context, name string) ([]string, error) {
	v, ok := z[name]
	switch {
	case !ok:
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	case v == Temp:
		return nil, &net.DNSError{Err: "server failure", Name: name, IsTemporary: true}
	}
	return []string{v}, nil
}
