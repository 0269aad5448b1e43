package restrictions

import (
	"net/netip"
	"testing"

	"postgate/rules"
	"postgate/rules/route"
)

// TestResolve: the fallback resolver (Options without Route) built from
// mydestination and myorigin.
func TestResolve(t *testing.T) {
	mydest, err := rules.NewDomainList([]string{"local.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEval(t, Options{MyDestination: mydest, Myorigin: "local.test"})
	for _, c := range []struct {
		in          string
		addr        string
		routed, fin bool
	}{
		{"u@remote.test", "u@remote.test", false, false},
		{"User@Remote.Test", "user@remote.test", false, false},
		{"u@local.test", "u@local.test", false, true},
		{"u@LOCAL.test.", "u@local.test", false, true},
		{"u", "u@local.test", false, true},
		{"u%remote.test@local.test", "u@remote.test", false, false},
		{"remote.test!u@local.test", "u@remote.test", false, false},
		{"@local.test:u@remote.test", "@local.test:u@remote.test", true, false},
		{"u%v@remote.test", "u%v@remote.test", true, false},
		{"u%other@local.test", "u@other", false, false},
		{"u%local.test@local.test", "u@local.test", false, true},
		{"a%b%remote.test@local.test", "a%b@remote.test", true, false},
	} {
		r, err := e.resolve(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if r.addr != c.addr || r.routed != c.routed || r.class.Final() != c.fin {
			t.Errorf("resolve(%q) = %q routed=%v final=%v; want %q %v %v", c.in, r.addr, r.routed, r.class.Final(), c.addr, c.routed, c.fin)
		}
	}
}

// TestAuthDestinationRoute: with Options.Route, permit_auth_destination
// sees every class the resolver knows.
func TestAuthDestinationRoute(t *testing.T) {
	list := func(items ...string) *rules.DomainList {
		l, err := rules.NewDomainList(items, true)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	rt := route.New(route.Options{
		MyDestination:         list("mx.example.test"),
		RelayDomains:          list("relay.test"),
		VirtualAliasDomains:   list("alias.test"),
		VirtualMailboxDomains: list("mbox.test"),
		InetInterfaces:        []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		Myorigin:              "mx.example.test",
		Myhostname:            "mx.example.test",
	})
	// Options' own lists disagree: Route decides.
	e := newTestEval(t, Options{Route: rt, MyDestination: list("other.test")})
	for addr, want := range map[string]bool{
		"u@mx.example.test":            true,
		"u":                            true,
		"u@alias.test":                 true,
		"u@mbox.test":                  true,
		"u@relay.test":                 true,
		"u@sub.relay.test":             true,
		"u@[192.0.2.1]":                true,
		"u@[192.0.2.2]":                false,
		"u@other.test":                 false,
		"u@remote.test":                false,
		"u%remote.test@relay.test":     false,
		"u%relay.test@mx.example.test": true,
		"u@192.0.2.1":                  false,
		"-u@relay.test":                true, // Invalid is for delivery; the class is still relay
	} {
		got, err := e.authDestination(addr)
		if err != nil || got != want {
			t.Errorf("authDestination(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
}

// TestAuthDestinationNoOrigin: with nothing to qualify an address with,
// an unqualified recipient is this machine's (Postfix: no '@' is OK).
func TestAuthDestinationNoOrigin(t *testing.T) {
	e := newTestEval(t, Options{})
	for addr, want := range map[string]bool{"user": true, "u@remote.test": false, "u@": false} {
		if got, err := e.authDestination(addr); err != nil || got != want {
			t.Errorf("authDestination(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
}
