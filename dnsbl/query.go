package dnsbl

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"postgate/rules"
)

// AddrQuery is the name a DNSBL is asked about addr: "4.3.2.1.domain"
// for 1.2.3.4, and for IPv6 the 32 nibbles of the address, lowest first.
func AddrQuery(addr netip.Addr, domain string) string {
	addr = addr.Unmap()
	var b strings.Builder
	if addr.Is4() {
		a := addr.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
	} else {
		const hex = "0123456789abcdef"
		a := addr.As16()
		for i := 15; i >= 0; i-- {
			b.WriteByte(hex[a[i]&0xf])
			b.WriteByte('.')
			b.WriteByte(hex[a[i]>>4])
			b.WriteByte('.')
		}
	}
	b.WriteString(domain)
	return b.String()
}

// DomainQuery is the name an RHSBL is asked about what, a host name or an
// address (its domain is asked). ok is false where Postfix asks nothing:
// an address literal, an empty name, a name whose last label is numeric
// (some lists refuse what looks like an IP address), or a name that is not
// a valid host name once converted to ASCII.
func DomainQuery(what, domain string) (query string, ok bool) {
	name := what
	if i := strings.LastIndexByte(what, '@'); i >= 0 {
		name = what[i+1:]
		if strings.HasPrefix(name, "[") {
			return "", false
		}
	}
	if name == "" {
		return "", false
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last != "" && rules.AllDigits(last) {
		return "", false
	}
	if !isASCII(name) {
		if a, err := idna.Lookup.ToASCII(name); err == nil {
			name = a
		}
	}
	if !rules.ValidHostname(name, false) {
		return "", false
	}
	return name + "." + domain, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
