package route

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// dotString reports whether a local part is an RFC 822 dot-string: atoms
// separated by single dots. Anything else is a quoted string, whose '%'
// and '!' Postfix's rewriting does not see. 8-bit bytes are allowed.
func dotString(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>@,;:\"[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// validDomain is the syntax check of a resolved domain: an address
// literal [1.2.3.4] / [IPv6:...], or a host name (resolve_numeric_domain =
// no: a bare address is not a domain).
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") {
		if n := len(d); n < 2 || d[n-1] != ']' {
			return false
		}
		_, ok := mailhostAddr(d[1 : len(d)-1])
		return ok
	}
	return validHostname(d)
}

// validHostname is Postfix's valid_hostname: labels of letters, digits,
// '_' and inner '-', at most 63 bytes each and 255 in all, not all
// numeric. UTF-8 labels (SMTPUTF8) are allowed; their bytes count as
// letters.
func validHostname(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	if !utf8.ValidString(name) {
		return false
	}
	label, nonNumeric := 0, false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= '0' && c <= '9':
			label++
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80:
			label++
			nonNumeric = true
		case c == '-':
			label++
			nonNumeric = true
			if label == 1 || i+1 == len(name) || name[i+1] == '.' {
				return false
			}
		case c == '.':
			if label == 0 || i+1 == len(name) {
				return false
			}
			label = 0
			continue
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	return nonNumeric
}

// mailhostAddr is Postfix's valid_mailhost_addr: the inside of an address
// literal, "IPv6:" (any case) before an IPv6 address, a dotted quad
// otherwise.
func mailhostAddr(s string) (netip.Addr, bool) {
	if len(s) >= 5 && strings.EqualFold(s[:5], "IPv6:") {
		a, err := netip.ParseAddr(s[5:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	if !validIPv4(s) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		// Leading zeros: valid for Postfix, not for netip.
		var b [4]byte
		for i, p := range strings.Split(s, ".") {
			v := 0
			for _, c := range p {
				v = v*10 + int(c-'0')
			}
			b[i] = byte(v)
		}
		a = netip.AddrFrom4(b)
	}
	return a, true
}

// validIPv4 accepts four decimal octets up to 255; 0.0.0.0 is allowed but
// not 0.x.y.z (Postfix's valid_ipv4_hostaddr).
func validIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
		v := 0
		for _, c := range p {
			v = v*10 + int(c-'0')
		}
		if v > 255 || i == 0 && v == 0 && strings.Trim(s, "0.") != "" {
			return false
		}
	}
	return true
}
