package route

import (
	"context"
	"reflect"
	"testing"

	"postgate/rules"
)

// TestTransportMaps covers transport(5): the key order, partial values
// and the special transports, over the classes' defaults.
func TestTransportMaps(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries string // inline table body
		set     func(*Options)
		addr    string
		want    Result
	}{
		{name: "full address", entries: "u@remote.test=smtp:[full.test], remote.test=smtp:[domain.test]", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[full.test]"}},
		{name: "full address keeps extension", entries: "u+x@remote.test=smtp:[ext.test], u@remote.test=smtp:[bare.test]",
			set: func(o *Options) { o.RecipientDelimiter = "+" }, addr: "u+x@remote.test",
			want: Result{Address: "u+x@remote.test", Class: Default, Transport: "smtp", Nexthop: "[ext.test]"}},
		{name: "extension stripped", entries: "u@remote.test=smtp:[bare.test], remote.test=smtp:[domain.test]",
			set: func(o *Options) { o.RecipientDelimiter = "+" }, addr: "u+x@remote.test",
			want: Result{Address: "u+x@remote.test", Class: Default, Transport: "smtp", Nexthop: "[bare.test]"}},
		{name: "no delimiter, no stripping", entries: "u@remote.test=smtp:[bare.test]", addr: "u+x@remote.test",
			want: Result{Address: "u+x@remote.test", Class: Default, Transport: "smtp", Nexthop: "remote.test"}},
		{name: "domain", entries: "remote.test=smtp:[domain.test]", addr: "U@Remote.Test",
			want: Result{Address: "U@remote.test", Class: Default, Transport: "smtp", Nexthop: "[domain.test]"}},
		{name: ".parent matches subdomains", entries: ".remote.test=smtp:[parent.test]", addr: "u@a.b.remote.test",
			want: Result{Address: "u@a.b.remote.test", Class: Default, Transport: "smtp", Nexthop: "[parent.test]"}},
		{name: ".parent does not match the domain itself", entries: ".remote.test=smtp:[parent.test]", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "remote.test"}},
		{name: "bare parent needs parent_domain_matches_subdomains", entries: "remote.test=smtp:[parent.test]", addr: "u@sub.remote.test",
			want: Result{Address: "u@sub.remote.test", Class: Default, Transport: "smtp", Nexthop: "sub.remote.test"}},
		{name: "bare parent with transport_maps in parent_domain_matches_subdomains", entries: "remote.test=smtp:[parent.test], .remote.test=smtp:[dot.test]",
			set: func(o *Options) {
				o.ParentDomainMatchesSubdomains = func(f string) bool { return f == "transport_maps" }
			}, addr: "u@sub.remote.test",
			want: Result{Address: "u@sub.remote.test", Class: Default, Transport: "smtp", Nexthop: "[parent.test]"}},
		{name: "domain beats parent", entries: "sub.remote.test=smtp:[sub.test], .remote.test=smtp:[parent.test]", addr: "u@sub.remote.test",
			want: Result{Address: "u@sub.remote.test", Class: Default, Transport: "smtp", Nexthop: "[sub.test]"}},
		{name: "wildcard", entries: "*=smtp:[star.test], other.test=x:", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[star.test]"}},
		{name: "wildcard last", entries: "*=smtp:[star.test], .test=smtp:[tld.test]", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[tld.test]"}},

		{name: "transport only resets nexthop to the domain, over relayhost", entries: "remote.test=slow:",
			set: func(o *Options) { o.Relayhost = "[gw.test]" }, addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "slow", Nexthop: "remote.test"}},
		{name: "smtp: bypasses relayhost", entries: "relay.test=smtp:",
			set: func(o *Options) { o.Relayhost = "[gw.test]" }, addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "smtp", Nexthop: "relay.test"}},
		{name: "transport without colon", entries: "remote.test=lmtp", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "lmtp", Nexthop: "remote.test"}},
		{name: "nexthop only keeps the transport", entries: "relay.test=:[10.0.0.1]", addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "relay", Nexthop: "[10.0.0.1]"}},
		{name: "nexthop only over relay_transport nexthop", entries: "relay.test=:[10.0.0.1]:2525",
			set: func(o *Options) { o.RelayTransport = "smtp:[in.test]" }, addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "smtp", Nexthop: "[10.0.0.1]:2525"}},
		{name: "colon alone changes nothing", entries: "remote.test=:",
			set: func(o *Options) { o.Relayhost = "[gw.test]" }, addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[gw.test]"}},
		{name: "colon alone stops the search", entries: "u@remote.test=:, remote.test=smtp:[domain.test]", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "remote.test"}},

		{name: "error with text", entries: "{remote.test=error:5.1.1 no such user}", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "error", Nexthop: "5.1.1 no such user"}},
		{name: "error without text", entries: "remote.test=error:", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "error", Nexthop: "Address is undeliverable"}},
		{name: "discard", entries: "remote.test=discard:", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "discard", Nexthop: "remote.test"}},
		{name: "discard with text", entries: "{remote.test=discard:spam trap}", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "discard", Nexthop: "spam trap"}},
		{name: "lmtp inet nexthop", entries: "mbox.test=lmtp:inet:[10.0.0.2]:24", addr: "u@mbox.test",
			want: Result{Address: "u@mbox.test", Class: Virtual, Transport: "lmtp", Nexthop: "inet:[10.0.0.2]:24"}},
		{name: "smtp nexthop list", entries: "{remote.test=smtp:a.test, b.test}", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "a.test, b.test"}},

		{name: "local class routed elsewhere", entries: "mx.example.test=relay:[store.test]", addr: "u@mx.example.test",
			want: Result{Address: "u@mx.example.test", Class: Local, Transport: "relay", Nexthop: "[store.test]"}},
		{name: "local class by unqualified address", entries: "mx.example.test=lmtp:", addr: "user",
			want: Result{Address: "user@mx.example.test", Class: Local, Transport: "lmtp", Nexthop: "mx.example.test"}},
		{name: "virtual alias class is never overridden", entries: "*=smtp:[star.test]", addr: "u@alias.test",
			want: Result{Address: "u@alias.test", Class: Alias, Transport: "error", Nexthop: "5.1.1 User unknown in virtual alias table"}},
		{name: "routed address: key is the resolved address", entries: "u@remote.test=smtp:[full.test]", addr: "u%remote.test@mx.example.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[full.test]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions(t)
			o.TransportMaps = []rules.Table{table(t, "inline:{"+c.entries+"}")}
			if c.set != nil {
				c.set(&o)
			}
			if got := resolve(t, o, c.addr); got != c.want {
				t.Errorf("Resolve(%q)\n got %+v\nwant %+v", c.addr, got, c.want)
			}
		})
	}
}

// TestTransportMapsOrder: for each key every table is asked in order;
// a more specific key in a later table beats a less specific one in an
// earlier table.
func TestTransportMapsOrder(t *testing.T) {
	o := baseOptions(t)
	o.TransportMaps = []rules.Table{
		table(t, "inline:{ remote.test=smtp:[first-domain.test], other.test=smtp:[first-other.test] }"),
		table(t, "inline:{ u@remote.test=smtp:[second-full.test], other.test=smtp:[second-other.test] }"),
	}
	if got := resolve(t, o, "u@remote.test"); got.Nexthop != "[second-full.test]" {
		t.Errorf("full address in the second table: got %+v", got)
	}
	if got := resolve(t, o, "u@other.test"); got.Nexthop != "[first-other.test]" {
		t.Errorf("same key in both tables: got %+v", got)
	}
}

// patternTable stands for a regexp/pcre table: not fixed-string, it
// records the keys it is asked.
type patternTable struct {
	keys  []string
	match map[string]string
}

func (p *patternTable) Lookup(_ context.Context, key string) (string, bool, error) {
	p.keys = append(p.keys, key)
	v, ok := p.match[key]
	return v, ok, nil
}

// recordingTable is a fixed-string table that records its keys.
type recordingTable struct{ patternTable }

func (*recordingTable) FixedString() bool { return true }

func TestTransportMapsKeys(t *testing.T) {
	pattern := &patternTable{}
	fixed := &recordingTable{}
	o := baseOptions(t)
	o.RecipientDelimiter = "+"
	o.TransportMaps = []rules.Table{pattern, fixed}
	resolve(t, o, "User+Ext@Sub.Remote.Test")
	if want := []string{"User+Ext@sub.remote.test", "*"}; !reflect.DeepEqual(pattern.keys, want) {
		t.Errorf("pattern table keys = %q, want %q", pattern.keys, want)
	}
	want := []string{"user+ext@sub.remote.test", "user@sub.remote.test", "sub.remote.test", ".remote.test", ".test", "*"}
	if !reflect.DeepEqual(fixed.keys, want) {
		t.Errorf("fixed table keys = %q, want %q", fixed.keys, want)
	}

	fixed.keys = nil
	o.ParentDomainMatchesSubdomains = func(f string) bool { return f == "transport_maps" }
	resolve(t, o, "u@sub.remote.test")
	want = []string{"u@sub.remote.test", "sub.remote.test", "remote.test", "test", "*"}
	if !reflect.DeepEqual(fixed.keys, want) {
		t.Errorf("parent style keys = %q, want %q", fixed.keys, want)
	}
}

func TestStripExtension(t *testing.T) {
	for _, c := range []struct{ addr, delims, want string }{
		{"user+foo@d", "+", "user@d"},
		{"user+foo+bar@d", "+", "user@d"},
		{"user-foo@d", "+-", "user@d"},
		{"user@d", "+", ""},
		{"+foo@d", "+", ""},
		{"user+foo@d", "", ""},
		{"owner-list@d", "-", ""},
		{"list-request@d", "-", ""},
		{"owner-list+x@d", "+", "owner-list@d"},
		{"-request@d", "-", ""},
		{"postmaster+x@d", "+", "postmaster@d"},
		{"postmaster@d", "t", ""},
		{"MAILER-DAEMON@d", "-", ""},
		{"double-bounce@d", "-", ""},
		{"user+foo", "+", "user"},
		{"user@my-domain.test", "-", ""},
	} {
		got, ok := stripExtension(c.addr, c.delims)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("stripExtension(%q, %q) = %q, %v; want %q", c.addr, c.delims, got, ok, c.want)
		}
	}
}
