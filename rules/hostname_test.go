package rules

import (
	"net/netip"
	"strings"
	"testing"
)

// The expected values were checked against Postfix 3.7's own
// valid_hostname, valid_*_hostaddr and valid_mailhost_* (libpostfix-util
// and libpostfix-global), except the utf8 column, which is ours.

var (
	label63 = strings.Repeat("a", 63)
	long255 = strings.Repeat(label63+".", 4)[:255] // labels of 63 bytes
)

var hostnameTests = []struct {
	name       string
	ascii, utf bool // utf8 off, on
}{
	{"mail.example.com", true, true},
	{"localhost", true, true},
	{"a_b.example", true, true},
	{"_dmarc.example", true, true},
	{"x-y.z", true, true},
	{"x--y.z", true, true},
	{"MiXeD.CaSe", true, true},
	{"1a.example", true, true},
	{"123.example", true, true},
	{"example.123", true, true},
	{"", false, false},
	{"-a.b", false, false},
	{"a-.b", false, false},
	{"a.-b", false, false},
	{"a-", false, false},
	{"a..b", false, false},
	{"a.b.", false, false},
	{".a", false, false},
	{".", false, false},
	{"1.2.3.4", false, false},
	{"123", false, false},
	{"1-2", true, true},
	{"a b", false, false},
	{"a*b", false, false},
	{"*.example", false, false},
	{"a\x00b", false, false},
	{"[1.2.3.4]", false, false},
	{"é.example", false, true},
	{"bücher.example", false, true},
	{"\xff.example", false, false},
	{"\xc3.example", false, false},
	{label63 + ".b", true, true},
	{label63 + "a.b", false, false},
	{strings.Repeat("é", 31) + "a.b", false, true}, // 63 bytes
	{strings.Repeat("é", 32) + ".b", false, false}, // 64 bytes
	{long255, true, true},
	{long255 + "a", false, false},
}

func TestValidHostname(t *testing.T) {
	for _, tc := range hostnameTests {
		if got := ValidHostname(tc.name, false); got != tc.ascii {
			t.Errorf("ValidHostname(%q, false) = %v, want %v", tc.name, got, tc.ascii)
		}
		if got := ValidHostname(tc.name, true); got != tc.utf {
			t.Errorf("ValidHostname(%q, true) = %v, want %v", tc.name, got, tc.utf)
		}
	}
}

func TestTruncateDot(t *testing.T) {
	for in, want := range map[string]string{
		"a.b.": "a.b", "a.b": "a.b", "a..": "a..", ".": ".", "": "", "a.": "a", "..": "..", "@.": "@",
	} {
		if got := TruncateDot(in); got != want {
			t.Errorf("TruncateDot(%q) = %q, want %q", in, got, want)
		}
	}
}

var hostaddrTests = []struct {
	addr     string
	v4, v6   bool // ValidIPv4Hostaddr, ValidIPv6Hostaddr
	hostaddr bool // ValidHostaddr
}{
	{"1.2.3.4", true, false, true},
	{"0.0.0.0", true, false, true},
	{"00.0.0.0", true, false, true},
	{"255.255.255.255", true, false, true},
	{"001.2.3.4", true, false, true},
	{"0001.02.003.0004", true, false, true},
	{"256.1.1.1", false, false, false},
	{"1.2.3.256", false, false, false},
	{"1.2.3", false, false, false},
	{"1.2.3.4.5", false, false, false},
	{"0.1.2.3", false, false, false},
	{"0.0.0.1", false, false, false},
	{"1..2.3", false, false, false},
	{".1.2.3", false, false, false},
	{"1.2.3.4.", false, false, false},
	{"1.2.3.a", false, false, false},
	{"", false, false, false},
	{"::1", false, true, true},
	{"::", false, true, true},
	{"2001:db8::1", false, true, true},
	{"2001:DB8::", false, true, true},
	{"1:2:3:4:5:6:7:8", false, true, true},
	{"1:2:3:4:5:6:7:8:9", false, false, false},
	{"1::2::3", false, false, false},
	{":1::2", false, false, false},
	{"1:2:3:4:5:6:7:", false, false, false},
	{"12345::", false, false, false},
	{"::ffff:1.2.3.4", false, true, true},
	{"::1.2.3.04", false, true, true},
	{"1:2:3:4:5:6:1.2.3.4", false, true, true},
	{"1:2:3:4:5:6:7:1.2.3.4", false, false, false},
	{"1:1.2.3.4", false, false, false},
	{"1:2", false, false, false},
	{"1:2:3", false, true, true}, // Postfix does not count fields
	{"fe80::1%eth0", false, false, false},
	{"[::1]", false, false, false},
	{"IPv6:::1", false, false, false},
	{"g::1", false, false, false},
}

func TestValidHostaddr(t *testing.T) {
	for _, tc := range hostaddrTests {
		if got := ValidIPv4Hostaddr(tc.addr); got != tc.v4 {
			t.Errorf("ValidIPv4Hostaddr(%q) = %v, want %v", tc.addr, got, tc.v4)
		}
		if got := ValidIPv6Hostaddr(tc.addr); got != tc.v6 {
			t.Errorf("ValidIPv6Hostaddr(%q) = %v, want %v", tc.addr, got, tc.v6)
		}
		if got := ValidHostaddr(tc.addr); got != tc.hostaddr {
			t.Errorf("ValidHostaddr(%q) = %v, want %v", tc.addr, got, tc.hostaddr)
		}
	}
}

var mailhostAddrTests = []struct {
	in   string
	ok   bool
	addr string // "" for the zero Addr
}{
	{"192.0.2.1", true, "192.0.2.1"},
	{"010.0.0.1", true, "10.0.0.1"},
	{"IPv6:2001:db8::1", true, "2001:db8::1"},
	{"ipv6:::1", true, "::1"},
	{"IPV6:::ffff:1.2.3.004", true, "::ffff:1.2.3.4"},
	{"IPv6:1:2:3", true, ""},
	{"2001:db8::1", false, ""},
	{"IPv6:1.2.3.4", false, ""},
	{"IPv6:", false, ""},
	{"IPv6:fe80::1%eth0", false, ""},
	{"0.1.2.3", false, ""},
	{"[192.0.2.1]", false, ""},
	{"", false, ""},
}

func TestMailhostAddr(t *testing.T) {
	for _, tc := range mailhostAddrTests {
		a, ok := MailhostAddr(tc.in)
		if ok != tc.ok || ok && a != parseOrZero(tc.addr) {
			t.Errorf("MailhostAddr(%q) = %v, %v; want %q, %v", tc.in, a, ok, tc.addr, tc.ok)
		}
	}
}

var mailhostLiteralTests = []struct {
	in   string
	ok   bool
	addr string
}{
	{"[192.0.2.1]", true, "192.0.2.1"},
	{"[IPv6:2001:db8::1]", true, "2001:db8::1"},
	{"[ipv6:::1]", true, "::1"},
	{"192.0.2.1", false, ""},
	{"[192.0.2.1", false, ""},
	{"[192.0.2.1]]", false, ""},
	{"[192.0.2.1]x", false, ""},
	{"[]", false, ""},
	{"[", false, ""},
	{"[2001:db8::1]", false, ""},
	{"[IPv6:1:2:3:4:5:6:1.2.3.4]", true, "1:2:3:4:5:6:102:304"},
	// Valid inside, but 46 bytes or more: too long for Postfix.
	{"[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", false, ""},
	{"[" + strings.Repeat("0", 38) + "1.2.3.4]", true, "1.2.3.4"},
	{"[" + strings.Repeat("0", 39) + "1.2.3.4]", false, ""},
}

func TestMailhostLiteral(t *testing.T) {
	for _, tc := range mailhostLiteralTests {
		a, ok := MailhostLiteral(tc.in)
		if ok != tc.ok || ok && a != parseOrZero(tc.addr) {
			t.Errorf("MailhostLiteral(%q) = %v, %v; want %q, %v", tc.in, a, ok, tc.addr, tc.ok)
		}
		if got := ValidMailhostLiteral(tc.in); got != tc.ok {
			t.Errorf("ValidMailhostLiteral(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

func parseOrZero(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

// FuzzHostname checks how the syntax checks relate: a host name is never
// an address, ASCII validity implies UTF-8 validity, and a literal is its
// inside in brackets.
func FuzzHostname(f *testing.F) {
	for _, tc := range hostnameTests {
		f.Add(tc.name)
	}
	for _, tc := range hostaddrTests {
		f.Add(tc.addr)
	}
	for _, tc := range mailhostAddrTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, hostaddr := ValidHostname(s, false), ValidHostaddr(s)
		if host && hostaddr {
			t.Fatalf("%q is both a host name and an address", s)
		}
		if host && !ValidHostname(s, true) {
			t.Fatalf("%q is valid in ASCII only", s)
		}
		if ValidHostname(TruncateDot(s), true) && strings.HasSuffix(TruncateDot(s), ".") {
			t.Fatalf("%q: valid name ending in a dot", s)
		}
		a, ok := MailhostAddr(s)
		if ok && !strings.Contains(s, ":") && (!a.Is4() || a != hnDecimalIPv4(s)) {
			t.Fatalf("MailhostAddr(%q) = %v", s, a)
		}
		la, lok := MailhostLiteral("[" + s + "]")
		if want := ok && len(s) < 46 && !strings.Contains(s, "]"); lok != want || lok && la != a {
			t.Fatalf("MailhostLiteral([%s]) = %v, %v; MailhostAddr = %v, %v", s, la, lok, a, ok)
		}
	})
}
