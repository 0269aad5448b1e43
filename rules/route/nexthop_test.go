package route

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestParseNexthop(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port int
		mx   bool
		err  string // substring of the error; "" = no error
	}{
		{in: "example.test", host: "example.test", mx: true},
		{in: "mx.example.test:26", host: "mx.example.test", port: 26, mx: true},
		{in: "example.test.", host: "example.test.", mx: true},
		{in: "[mail.example.test]", host: "mail.example.test"},
		{in: "[mail.example.test]:2525", host: "mail.example.test", port: 2525},
		{in: "[10.0.0.1]", host: "10.0.0.1"},
		{in: "[10.0.0.1]:2525", host: "10.0.0.1", port: 2525},
		{in: "[ipv6:2001:db8::1]", host: "2001:db8::1"},
		{in: "[IPv6:2001:DB8::1]:24", host: "2001:db8::1", port: 24},
		{in: "[2001:db8::1]:25", host: "2001:db8::1", port: 25},
		{in: "inet:[10.0.0.2]:24", host: "10.0.0.2", port: 24},
		{in: "inet:lmtp.example.test:24", host: "lmtp.example.test", port: 24, mx: true},
		{in: "relay.example.test:submission", host: "relay.example.test", port: 587, mx: true},
		{in: "[relay.example.test]:smtp", host: "relay.example.test", port: 25},
		{in: "[010.0.0.1]", host: "10.0.0.1"},
		{in: "[0010.0.0.01]", host: "10.0.0.1"},

		{in: "", err: "empty destination"},
		{in: "a.test, b.test", err: "a list of destinations"},
		{in: "a.test b.test", err: "a list of destinations"},
		{in: "unix:private/lmtp", err: "UNIX-domain"},
		{in: "[10.0.0.1", err: "missing ']'"},
		{in: "[10.0.0.1]x", err: `unexpected "x"`},
		{in: "[10.0.0.1]:", err: "empty port"},
		{in: "[10.0.0.1]:0", err: "out of range"},
		{in: "[10.0.0.1]:65536", err: "out of range"},
		{in: "host.test:no-such-service-here", err: "unknown service"},
		{in: "10.0.0.1", err: "needs the [address] form"},
		{in: "10.0.0.1:25", err: "needs the [address] form"},
		{in: "2001:db8::1", err: "[ipv6:address]"},
		{in: "[ipv6:10.0.0.1]", err: "invalid IPv6"},
		{in: "[ipv6:fe80::1%eth0]", err: "invalid IPv6"},
		{in: "[]", err: "invalid host name"},
		{in: "[bad_host!]", err: "invalid host name"},
		{in: ":25", err: "invalid host name"},
		{in: "-bad.test", err: "invalid host name"},
	} {
		t.Run(c.in, func(t *testing.T) {
			host, port, mx, err := ParseNexthop(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseNexthop(%q) = %q, %d, %v, %v; want error with %q", c.in, host, port, mx, err, c.err)
				}
				return
			}
			if err != nil || host != c.host || port != c.port || mx != c.mx {
				t.Errorf("ParseNexthop(%q) = %q, %d, %v, %v; want %q, %d, %v", c.in, host, port, mx, err, c.host, c.port, c.mx)
			}
		})
	}
}

func TestSplitNexthops(t *testing.T) {
	for in, want := range map[string][]string{
		"":                           nil,
		"[gw.test]":                  {"[gw.test]"},
		"mail1.test:587, mail2.test": {"mail1.test:587", "mail2.test"},
		" a,b\tc ,, d ":              {"a", "b", "c", "d"},
	} {
		if got := SplitNexthops(in); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Errorf("SplitNexthops(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every next hop the resolver produces from ordinary settings parses.
func TestResolvedNexthopsParse(t *testing.T) {
	o := baseOptions(t)
	o.Relayhost = "[gw.test]:587"
	for _, addr := range []string{"u@remote.test", "u@relay.test", "u@[192.0.2.9]"} {
		res := resolve(t, o, addr)
		if _, _, _, err := ParseNexthop(res.Nexthop); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func FuzzParseNexthop(f *testing.F) {
	for _, s := range []string{"example.test", "[10.0.0.1]:25", "[ipv6:2001:db8::1]", "inet:h:24", "a, b", "[x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, _, err := ParseNexthop(s)
		if err != nil {
			return
		}
		if host == "" || port < 0 || port > 65535 {
			t.Errorf("ParseNexthop(%q) = %q, %d", s, host, port)
		}
	})
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "u", "u@mx.example.test", "a%b!c@mx.example.test", "@a:b@c", "u@[IPv6:2001:db8::1]", "x@y..", "\"@\"@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		o := baseOptions(t)
		res, err := New(o).Resolve(context.Background(), addr)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", addr, err)
		}
		if res.Class < Local || res.Class > Default || res.Transport == "" {
			t.Errorf("Resolve(%q) = %+v", addr, res)
		}
		if !strings.Contains(res.Address, "@") {
			t.Errorf("Resolve(%q) = %+v: unqualified", addr, res)
		}
	})
}
