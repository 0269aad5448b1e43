package greylist

import (
	"net"
	"strings"
	"testing"
)

// FuzzParseURL: postgate_state_store is admin input; a URL that parses
// names at least one host:port, and its description never shows the
// password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "redis://:pw@h", "redis-sentinel://u:p@a,b:1/2?master=m&sentinel_password=x",
		"redis-cluster://[::1]:7000,h2", "redis://h?x=%zz", "redis-cluster://@,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		uo, desc, err := parseURL(spec)
		if err != nil {
			return
		}
		if len(uo.Addrs) == 0 {
			t.Fatalf("%q: no address", spec)
		}
		for _, a := range uo.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				t.Fatalf("%q: address %q: %v", spec, a, err)
			}
		}
		if uo.Password != "" && strings.Contains(desc, ":"+uo.Password+"@") {
			t.Fatalf("%q: description %q shows the password", spec, desc)
		}
	})
}
