package restrictions

import (
	"net/netip"
	"strings"
)

// validHostname is Postfix's valid_hostname: labels of letters, digits,
// '_' and inner '-', at most 63 bytes each and 255 in all, not all-numeric.
func validHostname(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	labelLen, nonNumeric := 0, false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isAlnum(c) || c == '_':
			labelLen++
			if labelLen > 63 {
				return false
			}
			if c < '0' || c > '9' {
				nonNumeric = true
			}
		case c == '.':
			if labelLen == 0 || i+1 == len(name) {
				return false
			}
			labelLen = 0
		case c == '-':
			nonNumeric = true
			labelLen++
			if labelLen == 1 || i+1 == len(name) || name[i+1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return nonNumeric
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validHostaddr is Postfix's valid_hostaddr: a dotted-quad IPv4 address or
// an IPv6 address (no brackets, no "IPv6:" prefix).
func validHostaddr(addr string) bool {
	if strings.Contains(addr, ":") {
		return validIPv6(addr)
	}
	return validIPv4(addr)
}

func validIPv6(addr string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Is6() && a.Zone() == ""
}

// validIPv4 accepts four decimal octets up to 255; 0.0.0.0 is allowed but
// not 0.x.y.z.
func validIPv4(addr string) bool {
	parts := strings.Split(addr, ".")
	if len(parts) != 4 {
		return false
	}
	for i, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
		v := 0
		for _, c := range p {
			if v = v*10 + int(c-'0'); v > 255 {
				return false
			}
		}
		if i == 0 && v == 0 && strings.Trim(addr, "0.") != "" {
			return false
		}
	}
	return true
}

// validMailhostAddr is Postfix's valid_mailhost_addr: the inside of an
// address literal, "IPv6:" prefix for IPv6.
func validMailhostAddr(addr string) bool {
	if len(addr) >= 5 && strings.EqualFold(addr[:5], "IPv6:") {
		return validIPv6(addr[5:])
	}
	return validIPv4(addr)
}

// truncateDot removes a trailing dot, but not a double one (dup_if_truncate).
func truncateDot(name string) string {
	return stripDot(name)
}
