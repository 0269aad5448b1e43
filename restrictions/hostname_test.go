package restrictions

import "testing"

func TestValidHostname(t *testing.T) {
	for name, want := range map[string]bool{
		"mail.example.com": true, "localhost": true, "a_b.example": true, "x-y.z": true,
		"": false, "-a.b": false, "a-.b": false, "a..b": false, "a.b.": false, ".a": false,
		"1.2.3.4": false, "123": false, "a b": false, "é.example": false,
		"a23456789012345678901234567890123456789012345678901234567890123.b":  true,
		"a234567890123456789012345678901234567890123456789012345678901234.b": false,
	} {
		if got := validHostname(name); got != want {
			t.Errorf("validHostname(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidHostaddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"1.2.3.4": true, "0.0.0.0": true, "255.255.255.255": true, "001.2.3.4": true,
		"256.1.1.1": false, "1.2.3": false, "1.2.3.4.5": false, "0.1.2.3": false, "1..2.3": false,
		"::1": true, "2001:db8::1": true, "fe80::1%eth0": false, "[::1]": false, "": false,
	} {
		if got := validHostaddr(addr); got != want {
			t.Errorf("validHostaddr(%q) = %v, want %v", addr, got, want)
		}
	}
	for addr, want := range map[string]bool{
		"192.0.2.1": true, "IPv6:2001:db8::1": true, "ipv6:::1": true, "2001:db8::1": false, "IPv6:1.2.3.4": false,
	} {
		if got := validMailhostAddr(addr); got != want {
			t.Errorf("validMailhostAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
