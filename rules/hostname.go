package rules

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Host name and address-literal syntax, as Postfix's valid_hostname,
// valid_hostaddr, valid_mailhost_addr and valid_mailhost_literal check it.
// Postfix reads C strings; here a NUL byte anywhere makes the text invalid
// (Postfix would have judged only the part before it).

// ValidHostname reports whether name is a host or domain name as Postfix's
// valid_hostname sees one: labels of ASCII letters, digits, '_' and inner
// '-', each at most 63 bytes, 255 bytes in all, no empty label (so no
// leading or trailing dot: strip one with TruncateDot first where Postfix
// does), and not all numeric.
//
// With utf8 set, bytes of a valid UTF-8 name at or above 0x80 count as
// letters. That stands in for Postfix's valid_utf8_hostname with SMTPUTF8
// on, which converts the name to an A-label first; without utf8 any
// non-ASCII byte is invalid, as in Postfix when the client did not ask for
// SMTPUTF8.
func ValidHostname(name string, utf8ok bool) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	if utf8ok && !utf8.ValidString(name) {
		return false
	}
	label, nonNumeric := 0, false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case hnDigit(c):
			label++
		case hnLetter(c) || c == '_' || utf8ok && c >= 0x80:
			label++
			nonNumeric = true
		case c == '.':
			if label == 0 || i+1 == len(name) {
				return false
			}
			label = 0
			continue
		case c == '-':
			label++
			nonNumeric = true
			if label == 1 || i+1 == len(name) || name[i+1] == '.' {
				return false
			}
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	return nonNumeric
}

// TruncateDot removes one trailing dot from a name, but not from "." or a
// name ending in "..", which stay invalid (Postfix's dup_if_truncate).
func TruncateDot(name string) string {
	if n := len(name); n > 1 && name[n-1] == '.' && name[n-2] != '.' {
		return name[:n-1]
	}
	return name
}

// ValidHostaddr reports whether addr is a bare IP address as Postfix's
// valid_hostaddr accepts one: IPv6 when it holds a ':', a dotted quad
// otherwise. No brackets, no "IPv6:" prefix.
func ValidHostaddr(addr string) bool {
	if strings.IndexByte(addr, ':') >= 0 {
		return ValidIPv6Hostaddr(addr)
	}
	return ValidIPv4Hostaddr(addr)
}

// ValidIPv4Hostaddr is Postfix's valid_ipv4_hostaddr: four decimal octets
// up to 255, leading zeros allowed (as many as you like), and a first
// octet of 0 only in 0.0.0.0.
func ValidIPv4Hostaddr(addr string) bool {
	inOctet, octets, value := false, 0, 0
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case hnDigit(c):
			if !inOctet {
				inOctet, value = true, 0
				octets++
			}
			if value = value*10 + int(c-'0'); value > 255 {
				return false
			}
		case c == '.':
			if !inOctet || i+1 == len(addr) {
				return false
			}
			if octets == 1 && value == 0 && strings.TrimLeft(addr, "0.") != "" {
				return false
			}
			inOctet = false
		default:
			return false
		}
	}
	return octets == 4
}

// ValidIPv6Hostaddr is Postfix's valid_ipv6_hostaddr. It is laxer than
// RFC 4291: it counts colons (2 to 7) and allows one "::" and fields of up
// to four hex digits, but does not insist on eight fields, so "1:2:3"
// passes; an IPv4 tail is allowed after 2 to 6 colons. Zones ("%eth0") are
// not.
func ValidIPv6Hostaddr(addr string) bool {
	nullField, field, length := 0, 0, 0
	for i := 0; ; {
		if i == len(addr) {
			return field >= 2 && (length != 0 || nullField == field-1)
		}
		switch addr[i] {
		case '.':
			if field < 2 || field > 6 {
				return false
			}
			return ValidIPv4Hostaddr(addr[i-length:])
		case ':':
			if field == 0 && length == 0 && i+1 < len(addr) && hnAlnum(addr[i+1]) {
				return false
			}
			if field++; field > 7 {
				return false
			}
			i++
			length = 0
			if i < len(addr) && addr[i] == ':' {
				if nullField > 0 {
					return false
				}
				nullField = field
			}
		default:
			length = 0
			for i+length < len(addr) && hnHex(addr[i+length]) {
				length++
			}
			if length == 0 || length > 4 {
				return false
			}
			i += length
		}
	}
}

// MailhostAddr checks the inside of an address literal as Postfix's
// valid_mailhost_addr does: "IPv6:" (any case) and an IPv6 address, or a
// dotted quad. The address is its value, octets read as decimal; it is
// the zero Addr for the few forms Postfix accepts that name no 128-bit
// address (such as "IPv6:1:2:3").
func MailhostAddr(s string) (netip.Addr, bool) {
	if len(s) >= 5 && strings.EqualFold(s[:5], "IPv6:") {
		if !ValidIPv6Hostaddr(s[5:]) {
			return netip.Addr{}, false
		}
		return hnParseIPv6(s[5:]), true
	}
	if !ValidIPv4Hostaddr(s) {
		return netip.Addr{}, false
	}
	return hnDecimalIPv4(s), true
}

// MailhostLiteral checks a bracketed address literal, "[192.0.2.1]" or
// "[IPv6:2001:db8::1]", as Postfix's valid_mailhost_literal does: the
// first ']' ends the text, and the inside is shorter than 46 bytes
// (INET6_ADDRSTRLEN) and passes MailhostAddr.
func MailhostLiteral(s string) (netip.Addr, bool) {
	if s == "" || s[0] != '[' {
		return netip.Addr{}, false
	}
	end := strings.IndexByte(s, ']')
	if end < 0 || end+1 != len(s) || end-1 >= 46 {
		return netip.Addr{}, false
	}
	return MailhostAddr(s[1:end])
}

// ValidMailhostLiteral is MailhostLiteral's verdict alone (Postfix's
// valid_mailhost_literal, as the ETRN command uses it).
func ValidMailhostLiteral(s string) bool {
	_, ok := MailhostLiteral(s)
	return ok
}

// hnDecimalIPv4 converts a dotted quad that passed ValidIPv4Hostaddr,
// leading zeros and all.
func hnDecimalIPv4(s string) netip.Addr {
	var b [4]byte
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			n++
			continue
		}
		b[n] = b[n]*10 + s[i] - '0'
	}
	return netip.AddrFrom4(b)
}

// hnParseIPv6 converts an address that passed ValidIPv6Hostaddr; an IPv4
// tail with leading zeros is read as decimal.
func hnParseIPv6(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i:], '.') >= 0 {
		if a, err := netip.ParseAddr(s[:i+1] + hnDecimalIPv4(s[i+1:]).String()); err == nil {
			return a
		}
	}
	return netip.Addr{}
}

func hnDigit(c byte) bool  { return c >= '0' && c <= '9' }
func hnLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func hnAlnum(c byte) bool  { return hnDigit(c) || hnLetter(c) }
func hnHex(c byte) bool    { return hnDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
