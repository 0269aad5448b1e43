package route

import (
	"context"
	"testing"

	"postgate/rules"
)

// TestResolveFrom: the sender-dependent tables, in Postfix's precedence.
func TestResolveFrom(t *testing.T) {
	o := baseOptions(t)
	o.Relayhost = "[smarthost.test]"
	o.RecipientDelimiter = "+"
	o.SenderDependentRelayhostMaps = []rules.Table{table(t, "inline:{ {alice@src.test = [alice-hop.test]}, {@other.test = [other-hop.test]}, {<> = [bounce-hop.test]}, {dunno@src.test = DUNNO}, {user = [local-hop.test]} }")}
	o.SenderDependentDefaultTransportMaps = []rules.Table{table(t, "inline:{ {dave@src.test = relay:[dave-hop.test]} }")}
	o.TransportMaps = []rules.Table{table(t, "inline:{ {pinned.test = smtp:[pinned-hop.test]} }")}
	r := New(o)
	for _, c := range []struct {
		sender, rcpt, transport, nexthop string
	}{
		{"alice@src.test", "u@far.test", "smtp", "[alice-hop.test]"},
		{"alice+tag@src.test", "u@far.test", "smtp", "[alice-hop.test]"}, // the extension dropped
		{"bob@other.test", "u@relay.test", "relay", "[other-hop.test]"},  // relay class too
		{"", "u@far.test", "smtp", "[bounce-hop.test]"},
		{"dunno@src.test", "u@far.test", "smtp", "[smarthost.test]"},
		{"carol@src.test", "u@far.test", "smtp", "[smarthost.test]"},
		{"user@mx.example.test", "u@far.test", "smtp", "[local-hop.test]"}, // a local domain: the local part
		{"dave@src.test", "u@far.test", "relay", "[dave-hop.test]"},        // the transport's next hop wins
		{"dave@src.test", "u@relay.test", "relay", "[smarthost.test]"},     // default class only
		{"alice@src.test", "u@pinned.test", "smtp", "[pinned-hop.test]"},   // transport_maps wins
		{"alice@src.test", "u@mbox.test", "virtual", "mbox.test"},          // not off-host
	} {
		res, err := r.ResolveFrom(context.Background(), c.sender, c.rcpt)
		if err != nil {
			t.Fatalf("%s -> %s: %v", c.sender, c.rcpt, err)
		}
		if res.Transport != c.transport || res.Nexthop != c.nexthop {
			t.Errorf("%s -> %s: %s:%s, want %s:%s", c.sender, c.rcpt, res.Transport, res.Nexthop, c.transport, c.nexthop)
		}
	}
	// Resolve, with no sender, leaves the tables alone.
	if res, _ := r.Resolve(context.Background(), "u@far.test"); res.Nexthop != "[smarthost.test]" {
		t.Errorf("Resolve: next hop %s", res.Nexthop)
	}
}
