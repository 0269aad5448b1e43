package harness

import (
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"postgate/test/dnstest"
)

// dnsNext numbers the 127.53.x.y addresses DNSAt hands out in this
// process; it starts at a place given by the PID, so that test processes
// running at once (other packages, other checkouts) mostly try different
// addresses.
var (
	dnsMu   sync.Mutex
	dnsNext = uint32(os.Getpid()) * 97
)

// DNSAt starts a test DNS server (dnstest) with zone on port 53 of a
// loopback address of its own, 127.53.x.y: the C library's resolver (the
// real Postfix's) asks port 53 only, and several servers run at once. An
// address is taken only when nothing answers a query there and both UDP
// and TCP port 53 bind. Its IP is what Postfix's resolv.conf names
// (StartPostfixDNS); Addr() is what postgate_dns_servers takes.
func DNSAt(t testing.TB, zone string) *dnstest.Server {
	t.Helper()
	for range 64 {
		dnsMu.Lock()
		n := dnsNext % (254 * 254)
		dnsNext++
		dnsMu.Unlock()
		addr := fmt.Sprintf("127.53.%d.%d:53", n/254+1, n%254+1)
		if dnsAnswers(addr) {
			continue
		}
		if s, err := dnstest.StartAt(t, zone, addr); err == nil {
			return s
		}
	}
	t.Fatal("no free 127.53.x.y address with port 53 for a test DNS server")
	return nil
}

// dnsAnswers reports whether a DNS server already answers at addr.
func dnsAnswers(addr string) bool {
	m := new(dns.Msg)
	m.SetQuestion("probe.invalid.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 150 * time.Millisecond}
	_, _, err := c.Exchange(m, addr)
	if err == nil {
		return true
	}
	conn, err := net.DialTimeout("tcp", addr, 150*time.Millisecond)
	if err == nil {
		conn.Close()
		return true
	}
	return false
}
