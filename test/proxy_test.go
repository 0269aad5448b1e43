package test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// proxyV2 builds a PROXY protocol v2 header for a TCP over IPv4 connection
// from src to dst.
func proxyV2(src, dst netip.AddrPort) []byte {
	var b bytes.Buffer
	b.WriteString("\r\n\r\n\x00\r\nQUIT\n")
	b.WriteByte(0x21) // version 2, PROXY
	b.WriteByte(0x11) // TCP over IPv4
	binary.Write(&b, binary.BigEndian, uint16(12))
	s, d := src.Addr().As4(), dst.Addr().As4()
	b.Write(s[:])
	b.Write(d[:])
	binary.Write(&b, binary.BigEndian, src.Port())
	binary.Write(&b, binary.BigEndian, dst.Port())
	return b.Bytes()
}

// TestUpstreamProxy: with smtpd_upstream_proxy_protocol = haproxy, the
// client named by a PROXY v1 or v2 header is the one restrictions and the
// log see, and a connection without a good header gets Postfix's 421 and
// is hung up. Each exchange runs against the real Postfix with the same
// settings and must get the same replies.
func TestUpstreamProxy(t *testing.T) {
	// replyLine is a reply as the client saw its last line.
	replyLine := func(code int, text string) string {
		lines := strings.Split(text, "\n")
		return fmt.Sprintf("%d %s", code, lines[len(lines)-1])
	}
	t.Parallel()
	settings := "smtpd_upstream_proxy_protocol = haproxy\nsmtpd_upstream_proxy_timeout = 1s\n" +
		"smtpd_client_restrictions = check_client_access inline:{ {198.51.100.7=REJECT listed client} }\n" +
		"smtpd_relay_restrictions = permit_mynetworks, reject\nmynetworks = 127.0.0.0/8\nsmtpd_banner = $myhostname ESMTP\n"
	pf := harness.StartPostfix(t, settings)
	pg := harness.Start(t, settings, "")

	// session sends header (nil: nothing) and then, if the greeting
	// comes, the commands; it returns every reply in order.
	session := func(addr string, header []byte, cmds ...string) []string {
		t.Helper()
		c := harness.DialRaw(t, addr, "127.0.0.1")
		if header != nil {
			if _, err := c.Conn.Write(header); err != nil {
				t.Fatal(err)
			}
		}
		code, text := c.Reply()
		replies := []string{replyLine(code, text)}
		if code != 220 {
			return replies
		}
		for _, cmd := range cmds {
			code, text := c.Cmd("%s", cmd)
			replies = append(replies, replyLine(code, text))
		}
		return replies
	}
	host := map[string]string{pf.Addr: "postfix.bench.test", pg.Addr: "mx.gateway.test"}
	same := func(name string, header []byte, cmds ...string) []string {
		t.Helper()
		want := session(pf.Addr, header, cmds...)
		got := session(pg.Addr, header, cmds...)
		norm := func(rs []string, addr string) string {
			return strings.ReplaceAll(strings.Join(rs, "\n"), host[addr], "HOST")
		}
		if norm(got, pg.Addr) != norm(want, pf.Addr) {
			t.Errorf("%s:\npostgate:\n%s\nPostfix:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		return got
	}

	listed := same("v1, listed client", []byte("PROXY TCP4 198.51.100.7 127.0.0.1 40001 25\r\n"),
		"EHLO client.test", "MAIL FROM:<a@src.test>", "RCPT TO:<b@elsewhere.test>", "QUIT")
	if !strings.Contains(listed[3], "554 5.7.1 <unknown[198.51.100.7]>: Client host rejected: listed client") {
		t.Errorf("proxied client not the one restrictions see: %q", listed)
	}
	// From the balancer's own (mynetworks) address, relaying is allowed; a
	// proxied outside client is not.
	outsideClient := same("v2, outside client", proxyV2(netip.MustParseAddrPort("203.0.113.9:40002"), netip.MustParseAddrPort("127.0.0.1:25")),
		"EHLO client.test", "MAIL FROM:<a@src.test>", "RCPT TO:<b@elsewhere.test>", "QUIT")
	if !strings.HasPrefix(outsideClient[3], "554 5.7.1 <b@elsewhere.test>: Recipient address rejected: Access denied") {
		t.Errorf("v2-proxied outside client relayed: %q", outsideClient)
	}
	// UNKNOWN would sidestep address-based access control: refused.
	same("v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"))
	// A v2 LOCAL header (a balancer's health check) keeps the socket's
	// own client, here in mynetworks: relaying allowed.
	local := []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
	if got := same("v2 LOCAL", local, "EHLO client.test", "MAIL FROM:<a@src.test>", "RCPT TO:<b@elsewhere.test>", "QUIT"); !strings.HasPrefix(got[3], "250 ") {
		t.Errorf("v2 LOCAL from mynetworks: %q", got)
	}
	same("no header in time", nil)
	same("not a header", []byte("EHLO client.test\r\n"))

	pg.Log("connect from unknown[198.51.100.7]")
	pg.Log("connect from unknown[203.0.113.9]")
	pg.Log("warning: haproxy read: timeout error")
	if log := pg.Log("warning: haproxy read: unrecognized protocol header"); !strings.Contains(log, "[127.0.0.1] commands=0/0") {
		t.Errorf("no disconnect line for the refused connection:\n%s", log)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(pf.Log(), "haproxy read: timeout error") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(pf.Log(), "warning: haproxy read: timeout error") {
		t.Errorf("Postfix's log has no timeout warning: the test's premise changed:\n%s", pf.Log())
	}
}
