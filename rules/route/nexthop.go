package route

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"postgate/rules"
)

// ParseNexthop parses one SMTP or LMTP next-hop destination, as smtp(8)
// and lmtp(8) read relayhost, a transport's :nexthop and transport_maps
// values:
//
//	[host]:port, [host]       no MX lookup (mx=false); an IP address needs
//	                          the brackets: [192.0.2.1], [ipv6:2001:db8::1]
//	host:port, host           MX lookup of host (mx=true)
//	inet:host:port            LMTP's explicit form, same syntax
//
// host comes back without brackets and "ipv6:" prefix. port is 0 when not
// given (the transport's default: 25, LMTP 24); a service name
// ("submission") is allowed. A list ("a, b") is an error: split it with
// SplitNexthops first.
func ParseNexthop(s string) (host string, port int, mx bool, err error) {
	orig := s
	if hasPrefixFold(s, "inet:") {
		s = s[len("inet:"):]
	}
	bad := func(format string, args ...any) (string, int, bool, error) {
		return "", 0, false, fmt.Errorf("bad next hop %q: %s", orig, fmt.Sprintf(format, args...))
	}
	switch {
	case s == "":
		return bad("empty destination")
	case strings.ContainsAny(s, " \t\r\n,"):
		return bad("a list of destinations; split it first")
	case hasPrefixFold(s, "unix:"):
		return bad("UNIX-domain sockets are not supported")
	}
	var portText string
	hasPort := false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("missing ']'")
		}
		host, mx = s[1:end], false
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' {
				return bad("unexpected %q after ']'", rest)
			}
			portText, hasPort = rest[1:], true
		}
		if hasPrefixFold(host, "ipv6:") {
			a, err := netip.ParseAddr(host[len("ipv6:"):])
			if err != nil || !a.Is6() || a.Zone() != "" {
				return bad("invalid IPv6 address")
			}
			host = a.String()
		} else if a, ok := rules.MailhostAddr(host); ok {
			host = a.String()
		} else if a, err := netip.ParseAddr(host); err == nil && a.Is6() && a.Zone() == "" {
			host = a.String() // [2001:db8::1]: unambiguous, accepted without "ipv6:"
		} else if !validNexthopName(host) {
			return bad("invalid host name %q", host)
		}
	} else {
		host, mx = s, true
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, portText, hasPort = s[:i], s[i+1:], true
			if strings.Contains(portText, ":") {
				return bad("an IPv6 address needs the [ipv6:address] form")
			}
		}
		if _, err := netip.ParseAddr(host); err == nil || rules.ValidIPv4Hostaddr(host) {
			return bad("an IP address needs the [address] form")
		}
		if !validNexthopName(host) {
			return bad("invalid host name %q", host)
		}
	}
	if hasPort {
		if port, err = parsePort(portText); err != nil {
			return bad("%v", err)
		}
	}
	return host, port, mx, nil
}

// validNexthopName accepts a host or domain name (UTF-8 labels allowed)
// with an optional trailing dot.
func validNexthopName(name string) bool {
	return rules.ValidHostname(strings.TrimSuffix(name, "."), true)
}

// wellKnownPorts spares a services lookup for the common names.
var wellKnownPorts = map[string]int{"smtp": 25, "lmtp": 24, "submission": 587, "submissions": 465, "smtps": 465}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty port")
	}
	if strings.Trim(s, "0123456789") == "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("port %s out of range", s)
		}
		return n, nil
	}
	if n, ok := wellKnownPorts[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := net.LookupPort("tcp", s)
	if err != nil {
		return 0, fmt.Errorf("unknown service %q", s)
	}
	return n, nil
}

// SplitNexthops splits a destination list (relayhost, a transport's
// nexthop; Postfix 3.5+) at commas and whitespace.
func SplitNexthops(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}
