package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"postgate/rules"
)

// env is what computed defaults learn from the host; tests pass fakes.
type env struct {
	hostname func() (string, error)
	addrs    func() ([]ifaceAddr, error)
}

// ifaceAddr is one address of a network interface.
type ifaceAddr struct {
	net      *net.IPNet
	loopback bool
}

func systemEnv() env { return env{hostname: os.Hostname, addrs: systemAddrs} }

func systemAddrs() ([]ifaceAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []ifaceAddr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				out = append(out, ifaceAddr{net: n, loopback: ifc.Flags&net.FlagLoopback != 0})
			}
		}
	}
	return out, nil
}

// computeDefault builds the defaults that Postfix computes at run time.
func (v *view) computeDefault(name string) (string, error) {
	switch name {
	case "config_directory":
		return v.f.dir, nil
	case "myhostname":
		return v.defaultMyhostname()
	case "mydomain":
		// The domain part of myhostname, as Postfix's check_mydomainname.
		h, err := v.value("myhostname")
		if err != nil {
			return "", err
		}
		if _, domain, ok := strings.Cut(h, "."); ok {
			return domain, nil
		}
		return "localdomain", nil
	case "mynetworks":
		return v.defaultMynetworks()
	}
	return "", nil
}

// defaultMyhostname is the host name, made fully qualified with an explicit
// mydomain (else "localdomain") when it has no dot.
func (v *view) defaultMyhostname() (string, error) {
	h, err := v.f.env.hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	if strings.Contains(h, ".") {
		return h, nil
	}
	domain := "localdomain"
	if _, ok := v.explicit("mydomain"); ok {
		d, err := v.value("mydomain")
		if err != nil {
			return "", err
		}
		if d != "" {
			domain = d
		}
	}
	return h + "." + domain, nil
}

// defaultMynetworks lists the networks of the addresses postgate listens on
// (inet_interfaces), per mynetworks_style: host (the addresses themselves),
// subnet (their interface subnets) or class (their class A/B/C networks).
// IPv4 networks come first, then IPv6 ones, as Postfix prints them.
func (v *view) defaultMynetworks() (string, error) {
	style, err := v.value("mynetworks_style")
	if err != nil {
		return "", err
	}
	ifaces, err := v.value("inet_interfaces")
	if err != nil {
		return "", err
	}
	protos, err := v.value("inet_protocols")
	if err != nil {
		return "", err
	}
	sys, _ := v.f.env.addrs()
	own := ownAddrs(sys, rules.SplitList(ifaces), parseProtocols(protos))
	var v4, v6 []string
	seen := map[string]bool{}
	for _, a := range own {
		n := networkOf(a, strings.ToLower(style))
		if seen[n] {
			continue
		}
		seen[n] = true
		if a.net.IP.To4() != nil {
			v4 = append(v4, n)
		} else {
			v6 = append(v6, n)
		}
	}
	return strings.Join(append(v4, v6...), " "), nil
}

type protocols struct{ v4, v6 bool }

// InetProtocols reports the address families inet_protocols enables.
func (c *Config) InetProtocols() (ipv4, ipv6 bool) {
	p := parseProtocols(c.Get("inet_protocols"))
	return p.v4, p.v6
}

func parseProtocols(s string) protocols {
	var p protocols
	for _, it := range rules.SplitList(strings.ToLower(s)) {
		p.v4 = p.v4 || it == "all" || it == "ipv4"
		p.v6 = p.v6 || it == "all" || it == "ipv6"
	}
	return p
}

func (p protocols) allows(ip net.IP) bool {
	if ip.To4() != nil {
		return p.v4
	}
	return p.v6
}

var (
	loopback4 = ifaceAddr{net: &net.IPNet{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(8, 32)}, loopback: true}
	loopback6 = ifaceAddr{net: &net.IPNet{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)}, loopback: true}
)

// InterfaceAddrs are the addresses postgate receives mail on:
// inet_interfaces ("all": every interface; "loopback-only" and "localhost":
// the loopback ones) of the families in inet_protocols. The default
// mynetworks is computed from them, and they are the address literals that
// name this host. A host name in inet_interfaces is an error: loading the
// configuration does no DNS.
func (c *Config) InterfaceAddrs() ([]netip.Addr, error) {
	sys, err := c.f.env.addrs()
	if err != nil {
		return nil, fmt.Errorf("inet_interfaces: %w", err)
	}
	items := c.List("inet_interfaces")
	for _, it := range items {
		switch strings.ToLower(it) {
		case "all", "loopback-only", "localhost":
		default:
			if net.ParseIP(strings.Trim(it, "[]")) == nil {
				return nil, fmt.Errorf("inet_interfaces: %q is not an address (host names are not supported)", it)
			}
		}
	}
	var out []netip.Addr
	for _, a := range ownAddrs(sys, items, parseProtocols(c.Get("inet_protocols"))) {
		if ip, ok := netip.AddrFromSlice(a.net.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// ownAddrs resolves inet_interfaces to interface addresses (sys: every
// interface's). Host names other than localhost are skipped.
func ownAddrs(sys []ifaceAddr, ifaces []string, p protocols) []ifaceAddr {
	var out []ifaceAddr
	add := func(a ifaceAddr) {
		if p.allows(a.net.IP) {
			out = append(out, a)
		}
	}
	loopbacks := func() {
		n := len(out)
		for _, a := range sys {
			if a.loopback {
				add(a)
			}
		}
		if len(out) == n {
			add(loopback4)
			add(loopback6)
		}
	}
	for _, it := range ifaces {
		switch low := strings.ToLower(it); {
		case low == "all":
			for _, a := range sys {
				add(a)
			}
		case low == "loopback-only" || low == "localhost":
			loopbacks()
		default:
			ip := net.ParseIP(strings.Trim(it, "[]"))
			if ip == nil {
				continue
			}
			a := ifaceAddr{net: &net.IPNet{IP: ip, Mask: net.CIDRMask(8*len(ip), 8*len(ip))}}
			if ip.To4() != nil {
				a.net = &net.IPNet{IP: ip.To4(), Mask: net.CIDRMask(32, 32)}
			}
			for _, s := range sys {
				if s.net.IP.Equal(ip) {
					a = s
				}
			}
			add(a)
		}
	}
	return out
}

// networkOf renders one mynetworks entry; IPv6 in brackets, as mynetworks wants.
func networkOf(a ifaceAddr, style string) string {
	ip, ones := a.net.IP, 0
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
		switch style {
		case "subnet":
			ones, _ = a.net.Mask.Size()
		case "class":
			switch {
			case ip[0] < 128:
				ones = 8
			case ip[0] < 192:
				ones = 16
			case ip[0] < 224:
				ones = 24
			default:
				ones = 32
			}
		default:
			ones = 32
		}
		return (&net.IPNet{IP: ip.Mask(net.CIDRMask(ones, 32)), Mask: net.CIDRMask(ones, 32)}).String()
	}
	ones = 128
	if style == "subnet" || style == "class" {
		ones, _ = a.net.Mask.Size()
	}
	return "[" + ip.Mask(net.CIDRMask(ones, 128)).String() + "]/" + strconv.Itoa(ones)
}
