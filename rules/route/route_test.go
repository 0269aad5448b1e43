package route

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"postgate/rules"
)

func domains(t testing.TB, parent bool, items ...string) *rules.DomainList {
	t.Helper()
	l, err := rules.NewDomainList(items, parent)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func table(t testing.TB, spec string) rules.Table {
	t.Helper()
	tb, err := rules.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// baseOptions: mx.example.test is this host; relay.test (and subdomains)
// is relayed; alias.test and mbox.test are virtual domains.
func baseOptions(t testing.TB) Options {
	return Options{
		MyDestination:         domains(t, false, "mx.example.test", "localhost"),
		RelayDomains:          domains(t, true, "relay.test"),
		VirtualAliasDomains:   domains(t, false, "alias.test"),
		VirtualMailboxDomains: domains(t, false, "mbox.test"),
		Myhostname:            "mx.example.test",
		Myorigin:              "mx.example.test",
		Mydomain:              "example.test",
		InetInterfaces:        []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
	}
}

func resolve(t *testing.T, o Options, addr string) Result {
	t.Helper()
	res, err := New(o).Resolve(context.Background(), addr)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", addr, err)
	}
	return res
}

// TestClasses covers each address class with its transport parameter,
// with and without :nexthop, and relayhost.
func TestClasses(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*Options)
		addr string
		want Result
	}{
		{name: "local", addr: "u@mx.example.test",
			want: Result{Address: "u@mx.example.test", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "local other domain uses local_transport nexthop", addr: "u@localhost",
			want: Result{Address: "u@localhost", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "local_transport without nexthop: recipient domain", set: func(o *Options) { o.LocalTransport = "local" }, addr: "u@localhost",
			want: Result{Address: "u@localhost", Class: Local, Transport: "local", Nexthop: "localhost"}},
		{name: "local_transport lmtp", set: func(o *Options) { o.LocalTransport = "lmtp:unix:private/dovecot-lmtp" }, addr: "u@localhost",
			want: Result{Address: "u@localhost", Class: Local, Transport: "lmtp", Nexthop: "unix:private/dovecot-lmtp"}},
		{name: "local ignores relayhost", set: func(o *Options) { o.Relayhost = "[gw.test]" }, addr: "u@mx.example.test",
			want: Result{Address: "u@mx.example.test", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "local default transport without myhostname", set: func(o *Options) { o.Myhostname = "" }, addr: "u@localhost",
			want: Result{Address: "u@localhost", Class: Local, Transport: "local", Nexthop: "localhost"}},

		{name: "unqualified, nothing to qualify with", set: func(o *Options) { o.Myorigin, o.Myhostname = "", "" }, addr: "user",
			want: Result{Address: "user", Class: Local, Transport: "local"}},
		{name: "unqualified, no myorigin: myhostname", set: func(o *Options) { o.Myorigin = "" }, addr: "user",
			want: Result{Address: "user@mx.example.test", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},

		{name: "virtual alias", addr: "u@alias.test",
			want: Result{Address: "u@alias.test", Class: Alias, Transport: "error", Nexthop: "5.1.1 User unknown in virtual alias table"}},
		{name: "virtual alias, table name hidden", set: func(o *Options) { o.HideUserUnknownTableName = true }, addr: "u@alias.test",
			want: Result{Address: "u@alias.test", Class: Alias, Transport: "error", Nexthop: "5.1.1 User unknown"}},
		{name: "virtual alias beats relay_domains", set: func(o *Options) { o.RelayDomains = domains(t, true, "alias.test") }, addr: "u@alias.test",
			want: Result{Address: "u@alias.test", Class: Alias, Transport: "error", Nexthop: "5.1.1 User unknown in virtual alias table"}},
		{name: "mydestination beats virtual alias", set: func(o *Options) { o.VirtualAliasDomains = domains(t, false, "mx.example.test") }, addr: "u@mx.example.test",
			want: Result{Address: "u@mx.example.test", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},

		{name: "virtual mailbox", addr: "u@mbox.test",
			want: Result{Address: "u@mbox.test", Class: Virtual, Transport: "virtual", Nexthop: "mbox.test"}},
		{name: "virtual mailbox ignores relayhost", set: func(o *Options) { o.Relayhost = "[gw.test]" }, addr: "u@mbox.test",
			want: Result{Address: "u@mbox.test", Class: Virtual, Transport: "virtual", Nexthop: "mbox.test"}},
		{name: "virtual_transport with nexthop", set: func(o *Options) { o.VirtualTransport = "lmtp:[10.0.0.5]:24" }, addr: "u@mbox.test",
			want: Result{Address: "u@mbox.test", Class: Virtual, Transport: "lmtp", Nexthop: "[10.0.0.5]:24"}},

		{name: "relay", addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "relay", Nexthop: "relay.test"}},
		{name: "relay subdomain", addr: "u@Sub.Relay.Test",
			want: Result{Address: "u@sub.relay.test", Class: Relay, Transport: "relay", Nexthop: "sub.relay.test"}},
		{name: "relay with relayhost", set: func(o *Options) { o.Relayhost = "[gw.test]:587" }, addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "relay", Nexthop: "[gw.test]:587"}},
		{name: "relay_transport nexthop beats relayhost", set: func(o *Options) { o.Relayhost = "[gw.test]"; o.RelayTransport = "relay:[inbound.test]" }, addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "relay", Nexthop: "[inbound.test]"}},
		{name: "relay_transport with nexthop, no relayhost", set: func(o *Options) { o.RelayTransport = "smtp:[inbound.test]:2525" }, addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "smtp", Nexthop: "[inbound.test]:2525"}},
		{name: "relay_transport without nexthop, relayhost set", set: func(o *Options) { o.Relayhost = "gw.test"; o.RelayTransport = "smtp" }, addr: "u@relay.test",
			want: Result{Address: "u@relay.test", Class: Relay, Transport: "smtp", Nexthop: "gw.test"}},

		{name: "default", addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "remote.test"}},
		{name: "default with relayhost", set: func(o *Options) { o.Relayhost = "[10.0.0.1]:2525" }, addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[10.0.0.1]:2525"}},
		{name: "relayhost list: first destination", set: func(o *Options) { o.Relayhost = "mail1.test:587, mail2.test:587" }, addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "mail1.test:587"}},
		{name: "default_transport nexthop beats relayhost", set: func(o *Options) { o.Relayhost = "[gw.test]"; o.DefaultTransport = "smtp:[out.test]" }, addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "smtp", Nexthop: "[out.test]"}},
		{name: "default_transport error", set: func(o *Options) { o.DefaultTransport = "error:5.7.1 no outbound mail" }, addr: "u@remote.test",
			want: Result{Address: "u@remote.test", Class: Default, Transport: "error", Nexthop: "5.7.1 no outbound mail"}},

		{name: "literal of an interface", addr: "u@[192.0.2.1]",
			want: Result{Address: "u@[192.0.2.1]", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "IPv6 literal of an interface", addr: "u@[IPv6:2001:DB8::1]",
			want: Result{Address: "u@[ipv6:2001:db8::1]", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "literal listed in mydestination", set: func(o *Options) { o.MyDestination = domains(t, false, "[198.51.100.7]") }, addr: "u@[198.51.100.7]",
			want: Result{Address: "u@[198.51.100.7]", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "literal elsewhere", addr: "u@[192.0.2.9]",
			want: Result{Address: "u@[192.0.2.9]", Class: Default, Transport: "smtp", Nexthop: "[192.0.2.9]"}},
		{name: "IPv4 literal in IPv6 form is not IPv4", addr: "u@[IPv6:192.0.2.1]",
			want: Result{Address: "u@[ipv6:192.0.2.1]", Class: Default, Transport: "error", Nexthop: badSyntax, Invalid: true}},
		{name: "literal with leading zeros is that of an interface", addr: "u@[0192.000.2.01]",
			want: Result{Address: "u@[0192.000.2.01]", Class: Local, Transport: "local", Nexthop: "mx.example.test"}},
		{name: "literal of 46 bytes or more is bad syntax", addr: "u@[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]",
			want: Result{Address: "u@[ipv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", Class: Default, Transport: "error", Nexthop: badSyntax, Invalid: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions(t)
			if c.set != nil {
				c.set(&o)
			}
			if got := resolve(t, o, c.addr); got != c.want {
				t.Errorf("Resolve(%q)\n got %+v\nwant %+v", c.addr, got, c.want)
			}
		})
	}
}

// TestCanonical covers the address part: qualification, trailing dots,
// case, routing operators, the null address and syntax errors.
func TestCanonical(t *testing.T) {
	type want struct {
		addr    string
		class   Class
		routed  bool
		invalid bool
	}
	for _, c := range []struct {
		name string
		set  func(*Options)
		in   string
		want want
	}{
		{"unqualified gets myorigin", nil, "user", want{"user@mx.example.test", Local, false, false}},
		{"unqualified, remote myorigin", func(o *Options) { o.Myorigin = "example.test" }, "user", want{"user@example.test", Default, false, false}},
		{"postmaster", nil, "postmaster", want{"postmaster@mx.example.test", Local, false, false}},
		{"PostMaster keeps its case", nil, "PostMaster", want{"PostMaster@mx.example.test", Local, false, false}},
		{"MAILER-DAEMON", nil, "MAILER-DAEMON", want{"MAILER-DAEMON@mx.example.test", Local, false, false}},
		{"null address is MAILER-DAEMON@myhostname", func(o *Options) { o.Myorigin = "example.test" }, "", want{"MAILER-DAEMON@mx.example.test", Local, false, false}},
		{"empty local part", nil, "@mx.example.test", want{"MAILER-DAEMON@mx.example.test", Local, false, false}},
		{"no myorigin: myhostname", func(o *Options) { o.Myorigin = "" }, "user", want{"user@mx.example.test", Local, false, false}},
		{"nothing to qualify with", func(o *Options) { o.Myorigin, o.Myhostname = "", "" }, "user", want{"user", Local, false, false}},
		{"quoted local part unqualified", nil, "first last", want{"first last@mx.example.test", Local, false, false}},
		{"append_dot_mydomain", func(o *Options) { o.AppendDotMydomain = true }, "u@mx", want{"u@mx.example.test", Local, false, false}},
		{"append_dot_mydomain leaves dotted", func(o *Options) { o.AppendDotMydomain = true }, "u@remote.test", want{"u@remote.test", Default, false, false}},
		{"no append_dot_mydomain by default", nil, "u@mx", want{"u@mx", Default, false, false}},

		{"trailing dot", nil, "u@Remote.Test.", want{"u@remote.test", Default, false, false}},
		{"trailing dot, local", nil, "User@MX.EXAMPLE.TEST.", want{"User@mx.example.test", Local, false, false}},
		{"double trailing dot is kept", nil, "u@remote.test..", want{"u@remote.test..", Default, false, true}},

		{"percent through local domain", nil, "u%remote.test@mx.example.test", want{"u@remote.test", Default, false, false}},
		{"bang through local domain", nil, "remote.test!u@mx.example.test", want{"u@remote.test", Default, false, false}},
		{"bang path unqualified", nil, "remote.test!u", want{"u@remote.test", Default, false, false}},
		{"percent unqualified", nil, "u%relay.test", want{"u@relay.test", Relay, false, false}},
		{"percent to a local domain", nil, "u%localhost@mx.example.test", want{"u@localhost", Local, false, false}},
		{"rightmost percent first", nil, "a%b%remote.test@mx.example.test", want{"a%b@remote.test", Default, true, false}},
		{"percent at a relay domain stays routed", nil, "u%remote.test@relay.test", want{"u%remote.test@relay.test", Relay, true, false}},
		{"bang at a relay domain stays routed", nil, "remote.test!u@relay.test", want{"remote.test!u@relay.test", Relay, true, false}},
		{"quoted @ at a relay domain stays routed", nil, "u@remote.test@relay.test", want{"u@remote.test@relay.test", Relay, true, false}},
		{"quoted @ through local domain", nil, "u@remote.test@mx.example.test", want{"u@remote.test", Default, false, false}},
		{"quoted % through local domain", nil, "first last%relay.test@mx.example.test", want{"first last@relay.test", Relay, false, false}},
		{"source route to a relay domain stays", nil, "@mx.example.test:u@relay.test", want{"@mx.example.test:u@relay.test", Relay, true, false}},
		{"source route through local domain", nil, "@relay.test:u@mx.example.test", want{"@relay.test:u", Default, false, true}},

		{"numeric domain needs brackets", nil, "u@192.0.2.1", want{"u@192.0.2.1", Default, false, true}},
		{"bad literal", nil, "u@[192.0.2]", want{"u@[192.0.2]", Default, false, true}},
		{"bad host name", nil, "u@-bad.test", want{"u@-bad.test", Default, false, true}},
		{"empty domain", nil, "u@", want{"u@", Default, false, true}},
		{"leading hyphen (allow_min_user = no)", nil, "-oQ@remote.test", want{"-oQ@remote.test", Default, false, true}},
		{"UTF-8 domain", nil, "u@bücher.test", want{"u@bücher.test", Default, false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions(t)
			if c.set != nil {
				c.set(&o)
			}
			res := resolve(t, o, c.in)
			got := want{res.Address, res.Class, res.Routed, res.Invalid}
			if got != c.want {
				t.Errorf("Resolve(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if res.Invalid && (res.Transport != "error" || res.Nexthop != badSyntax) {
				t.Errorf("invalid address routed to %s:%s", res.Transport, res.Nexthop)
			}
		})
	}
}

func TestResultParts(t *testing.T) {
	r := Result{Address: "@a:u@b.test"}
	if r.Domain() != "b.test" || r.LocalPart() != "@a:u" {
		t.Errorf("Domain %q LocalPart %q", r.Domain(), r.LocalPart())
	}
	r = Result{Address: "user"}
	if r.Domain() != "" || r.LocalPart() != "user" {
		t.Errorf("Domain %q LocalPart %q", r.Domain(), r.LocalPart())
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{
		Local: "local", Alias: "virtual alias", Virtual: "virtual mailbox", Relay: "relay", Default: "default", 0: "Class(0)",
	} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want)
		}
	}
	for c, want := range map[Class]bool{Local: true, Alias: true, Virtual: true, Relay: false, Default: false, 0: false} {
		if c.Final() != want {
			t.Errorf("%v.Final() = %v", c, c.Final())
		}
	}
}

// TestLookupFailures: a failing table is an error, never "not found".
func TestLookupFailures(t *testing.T) {
	fail := func(o *Options) *rules.DomainList { return domains(t, false, "fail:list") }
	for _, c := range []struct {
		name string
		set  func(*Options)
		addr string
		want string
	}{
		{"mydestination", func(o *Options) { o.MyDestination = fail(o) }, "u@remote.test", "fail:list: table lookup failed"},
		{"virtual_alias_domains", func(o *Options) { o.VirtualAliasDomains = fail(o) }, "u@remote.test", "fail:list: table lookup failed"},
		{"virtual_mailbox_domains", func(o *Options) { o.VirtualMailboxDomains = fail(o) }, "u@remote.test", "fail:list: table lookup failed"},
		{"relay_domains", func(o *Options) { o.RelayDomains = fail(o) }, "u@remote.test", "fail:list: table lookup failed"},
		{"transport_maps", func(o *Options) { o.TransportMaps = []rules.Table{table(t, "fail:transport")} }, "u@remote.test", "transport_maps fail:transport: table lookup failed"},
		{"transport_maps after a miss", func(o *Options) {
			o.TransportMaps = []rules.Table{table(t, "inline:{ other.test=x }"), table(t, "fail:transport")}
		}, "u@mx.example.test", "transport_maps fail:transport: table lookup failed"},
		{"null transport", func(o *Options) { o.DefaultTransport = ":[10.0.0.1]" }, "u@remote.test", "parameter default_transport: null transport is not allowed"},
		{"null relay transport", func(o *Options) { o.RelayTransport = ":" }, "u@relay.test", "parameter relay_transport: null transport is not allowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := baseOptions(t)
			c.set(&o)
			res, err := New(o).Resolve(context.Background(), c.addr)
			if err == nil || err.Error() != c.want {
				t.Errorf("Resolve(%q) = %+v, %v; want error %q", c.addr, res, err, c.want)
			}
		})
	}
}

// TestAliasClassOnlyError: a failing transport_maps does not matter for
// virtual alias domains, which transport_maps never override.
func TestAliasClassSkipsTransportMaps(t *testing.T) {
	o := baseOptions(t)
	o.TransportMaps = []rules.Table{table(t, "fail:transport")}
	if res := resolve(t, o, "u@alias.test"); res.Transport != "error" {
		t.Errorf("got %+v", res)
	}
}

func TestLoopLimit(t *testing.T) {
	// Every hop stays local: the loop ends when the operators run out.
	addr := strings.Repeat("mx.example.test!", 50) + "u@mx.example.test"
	res := resolve(t, baseOptions(t), addr)
	if res.Address != "u@mx.example.test" || res.Class != Local {
		t.Errorf("got %+v", res)
	}
}

func BenchmarkResolve(b *testing.B) {
	o := baseOptions(b)
	o.TransportMaps = []rules.Table{table(b, "inline:{ .remote.test=smtp:[gw.test], other.test=x: }")}
	r := New(o)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "User+ext@Sub.Remote.Test"); err != nil {
			b.Fatal(err)
		}
	}
}
