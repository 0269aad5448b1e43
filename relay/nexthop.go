package relay

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// destination is one next-hop destination, parsed.
type destination struct {
	raw  string     // as written, for texts
	host string     // host or domain name, or IP address; no brackets, no final dot
	addr netip.Addr // valid when host is an IP address
	port uint16
	mx   bool   // look up MX records for host
	unix string // LMTP: the socket path of unix:/path
}

// servicePorts are the service names Postfix destinations commonly use.
var servicePorts = map[string]uint16{"smtp": 25, "lmtp": 24, "submission": 587, "submissions": 465, "smtps": 465}

// parseNexthop parses Postfix's destination syntax: "[host]:port",
// "[host]", "host:port", "host", or a list of them separated by commas or
// white space. A destination without a port gets defPort (smtp_tcp_port).
func parseNexthop(s string, defPort uint16) ([]destination, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty next-hop destination")
	}
	dests := make([]destination, 0, len(fields))
	for _, f := range fields {
		d, err := parseDestination(f, defPort)
		if err != nil {
			return nil, err
		}
		dests = append(dests, d)
	}
	return dests, nil
}

// CheckDestinations reports what is wrong with a list of destinations
// in next-hop syntax (smtp_fallback_relay).
func CheckDestinations(s string) error {
	_, err := parseNexthop(s, 25)
	return err
}

func parseDestination(s string, defPort uint16) (destination, error) {
	d := destination{raw: s, port: defPort, mx: true}
	// Postfix's LMTP forms: inet:host:port is host:port without MX
	// lookups; unix:/path a socket.
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		if rest == "" {
			return d, fmt.Errorf("empty socket path in destination %q", s)
		}
		d.unix, d.mx = rest, false
		return d, nil
	}
	inet := false
	if rest, ok := strings.CutPrefix(s, "inet:"); ok {
		s, inet = rest, true
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return d, fmt.Errorf("missing \"]\" in destination %q", s)
		}
		host, d.mx = s[1:end], false
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' {
				return d, fmt.Errorf("garbage after \"]\" in destination %q", s)
			}
			port = rest[1:]
		}
		if len(host) > 5 && strings.EqualFold(host[:5], "ipv6:") {
			host = host[5:]
		}
	} else if _, err := netip.ParseAddr(s); err != nil {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
	}
	if port != "" {
		p, ok := servicePorts[strings.ToLower(port)]
		if !ok {
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil || n == 0 {
				return d, fmt.Errorf("bad network port in destination %q", s)
			}
			p = uint16(n)
		}
		d.port = p
	}
	if a, err := netip.ParseAddr(host); err == nil {
		d.host, d.addr, d.mx = a.Unmap().String(), a.Unmap(), false
		return d, nil
	}
	d.host = strings.TrimSuffix(host, ".")
	if !validHostname(d.host) {
		return d, fmt.Errorf("bad host name in destination %q", s)
	}
	if inet {
		d.mx = false
	}
	return d, nil
}

// validHostname allows the characters of DNS host names (and '_', which
// some sites use).
func validHostname(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
