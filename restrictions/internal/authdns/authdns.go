// Package authdns gives go-msgauth's lookups (which take no context) the
// process's resolver, bound to a context.
package authdns

import (
	"context"
	"errors"
	"net"
)

// Resolver answers TXT lookups with *net.DNSError errors.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// TXT is the lookup function for go-msgauth over r, bound to ctx. A
// *net.DNSError keeps its type (the library tells not-found from
// temporary by it) but loses the server's address: the text goes into
// Authentication-Results: headers, and our resolver's address is no
// business of the recipients.
func TXT(ctx context.Context, r Resolver) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		txts, err := r.LookupTXT(ctx, name)
		var de *net.DNSError
		if errors.As(err, &de) && de.Server != "" {
			c := *de
			c.Server = ""
			return txts, &c
		}
		return txts, err
	}
}
