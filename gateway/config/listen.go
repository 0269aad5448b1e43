package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"postgate/rules"
)

// wellKnownPorts resolves the service names master.cf uses even where
// /etc/services is missing.
var wellKnownPorts = map[string]int{"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465, "lmtp": 24}

func resolvePort(p string) (string, error) {
	if rules.AllDigits(p) {
		if n, err := strconv.Atoi(p); err == nil && n <= 65535 {
			return strconv.Itoa(n), nil
		}
		return "", fmt.Errorf("bad port %q", p)
	}
	if n, ok := wellKnownPorts[p]; ok {
		return strconv.Itoa(n), nil
	}
	n, err := net.LookupPort("tcp", p)
	if err != nil {
		return "", fmt.Errorf("unknown service port %q", p)
	}
	return strconv.Itoa(n), nil
}

// ListenAddrs resolves the service name against inet_interfaces (of the
// service's view): "smtp" is port 25, a bare port or service name is that port
// on every inet_interfaces address ("all" gives the wildcard host "", or
// 0.0.0.0 / :: when inet_protocols allows one family), and "host:port" is used
// as it is (a port name becomes its number). The results are host:port strings
// for net.Listen.
func (c *Config) ListenAddrs(s Service) ([]string, error) {
	v := c.ForService(s)
	if strings.Contains(s.Name, ":") {
		host, port, err := net.SplitHostPort(s.Name)
		if err != nil {
			return nil, fmt.Errorf("service %q: %v", s.Name, err)
		}
		if port, err = resolvePort(port); err != nil {
			return nil, fmt.Errorf("service %q: %v", s.Name, err)
		}
		return []string{net.JoinHostPort(host, port)}, nil
	}
	port, err := resolvePort(s.Name)
	if err != nil {
		return nil, fmt.Errorf("service %q: %v", s.Name, err)
	}
	protos := parseProtocols(v.Get("inet_protocols"))
	var hosts []string
	for _, it := range v.List("inet_interfaces") {
		switch strings.ToLower(it) {
		case "all":
			switch {
			case protos.v4 && protos.v6:
				hosts = []string{""}
			case protos.v4:
				hosts = []string{"0.0.0.0"}
			default:
				hosts = []string{"::"}
			}
			return joinPort(hosts, port), nil
		case "loopback-only":
			if protos.v4 {
				hosts = append(hosts, "127.0.0.1")
			}
			if protos.v6 {
				hosts = append(hosts, "::1")
			}
		default:
			h := strings.TrimSuffix(strings.TrimPrefix(it, "["), "]")
			if ip := net.ParseIP(h); ip != nil && !protos.allows(ip) {
				return nil, fmt.Errorf("service %q: inet_interfaces address %s is not enabled by inet_protocols = %s",
					s.Name, it, v.Get("inet_protocols"))
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("service %q: inet_interfaces names no address to listen on", s.Name)
	}
	return joinPort(hosts, port), nil
}

func joinPort(hosts []string, port string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range hosts {
		if a := net.JoinHostPort(h, port); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
