package rules

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MynetworksFromStyle computes the default mynetworks from mynetworks_style
// and the prefixes of the interfaces postgate listens on (with
// inet_interfaces = all: every interface, see InterfacePrefixes):
//
//   - host: each address alone (/32, IPv6 [addr]/128);
//   - subnet: each interface's network;
//   - class: the whole class A/B/C (D) network of each IPv4 address; IPv6
//     networks as with subnet.
//
// Duplicates are dropped; order follows the interfaces.
func MynetworksFromStyle(style string, ifaces []netip.Prefix) ([]string, error) {
	style = strings.ToLower(strings.TrimSpace(style))
	var out []string
	seen := map[string]bool{}
	for _, p := range ifaces {
		a := p.Addr().Unmap().WithZone("")
		var n netip.Prefix
		switch style {
		case "host":
			n = netip.PrefixFrom(a, a.BitLen())
		case "subnet":
			n = netip.PrefixFrom(a, p.Bits()).Masked()
		case "class":
			n = netip.PrefixFrom(a, classBits(a, p.Bits())).Masked()
		default:
			return nil, fmt.Errorf("unknown mynetworks_style parameter value: %s", style)
		}
		s := formatNetwork(n)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// classBits is the classful prefix length of an IPv4 address; IPv6 keeps
// the interface's own prefix length.
func classBits(a netip.Addr, ifaceBits int) int {
	if !a.Is4() {
		return ifaceBits
	}
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	case b < 224:
		return 24
	default:
		return 4
	}
}

// formatNetwork writes a network the way mynetworks wants it.
func formatNetwork(n netip.Prefix) string {
	if n.Addr().Is6() {
		return fmt.Sprintf("[%s]/%d", n.Addr(), n.Bits())
	}
	return n.String()
}

// InterfacePrefixes returns the address and prefix of every interface
// address of this host (what inet_interfaces = all listens on).
func InterfacePrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && ones > 32 {
			ones -= 96
		}
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}
