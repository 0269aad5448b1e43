package bench

import (
	"fmt"
	"net"
	"testing"

	"postgate/test/harness"
)

// BenchmarkRelayRBL is BenchmarkRelayVsPostfix with both servers checking
// every client against two DNS lists (reject_rbl_client) that one real
// rbldnsd serves on a 127.53.x.y:53 address (Postfix's resolver asks port
// 53 only). The benchmark's client is listed in neither, so each message
// is relayed after the lookups; a listed client is refused by both first,
// which shows both really ask the lists. postgate's resolver caches the
// answers for their TTL, "not listed" ones too (the zones have an SOA,
// as public lists do); Postfix asks each time (sites usually put a
// caching resolver next to it). Run with -benchtime 1x.
func BenchmarkRelayRBL(b *testing.B) {
	ns := ""
	for i := 1; i < 250 && ns == ""; i++ {
		host := fmt.Sprintf("127.53.250.%d", i)
		if pc, err := net.ListenPacket("udp", host+":53"); err == nil {
			pc.Close()
			ns = host
		}
	}
	if ns == "" {
		b.Fatal("no free 127.53.250.x:53 for rbldnsd")
	}
	// With an SOA, as public lists have, "not listed" answers carry the
	// negative-caching TTL.
	soa := "$SOA 3600 ns.list.test. admin.list.test. 1 600 300 86400 300\n"
	harness.StartRbldnsd(b, ns+":53", map[string]string{
		"one.zone": soa + ":127.0.0.2:listed by one\n127.0.0.9\n127.1.0.0/16\n",
		"two.zone": soa + ":127.0.0.2:listed by two\n127.2.0.0/16\n",
	}, "one.test:ip4set:one.zone", "two.test:ip4set:two.zone")
	servers := startServersDNS(b, "smtpd_client_restrictions = reject_rbl_client one.test, reject_rbl_client two.test\n", ns)
	for _, s := range servers {
		c := harness.Dial(b, s.addr, "127.0.0.9")
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(554, "RCPT TO:<u@relay.test>")
		c.Conn.Close()
	}
	relayVsPostfix(b, servers)
}
