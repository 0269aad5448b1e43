package test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestProxyFilter: the before-queue set-up (smtpd_proxy_filter), with a
// second postgate as the filter. The filter's replies are the client's:
// it refuses one recipient at RCPT (check_recipient_access) and one
// message at the end of DATA (header_checks REJECT), and the client gets
// those replies where it would have got 250. An accepted message goes
// through the filter, which reinjects it into the gateway's second
// listener (no proxy filter there), and reaches the sink exactly once,
// with the original client named to the filter through XFORWARD.
func TestProxyFilter(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	reinjectPort := harness.FreePort(t)
	filter := harness.Start(t, fmt.Sprintf(`myhostname = filter.gateway.test
relay_domains = relay.test
smtpd_authorized_xforward_hosts = 127.0.0.1
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access inline:{ {bad@relay.test=REJECT no such user here} }
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }
header_checks = regexp:{ {/^Subject: reject me/ REJECT 5.7.1 the filter says no} }
`, reinjectPort), "")
	gw := harness.Start(t, fmt.Sprintf(`relay_domains = relay.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }
`, sink.Port), fmt.Sprintf(`127.0.0.1:PORT inet n - n - - smtpd
  -o smtpd_proxy_filter=127.0.0.1:%d
  -o smtpd_proxy_ehlo=proxy.gateway.test
  -o smtpd_proxy_timeout=10s
127.0.0.1:%d inet n - n - - smtpd
`, filter.Port, reinjectPort))

	c := harness.Dial(t, gw.Addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	if code, text := c.Cmd("RCPT TO:<bad@relay.test>"); code != 554 || !strings.Contains(text, "<bad@relay.test>: Recipient address rejected: no such user here") {
		t.Errorf("RCPT refused by the filter: %d %s", code, text)
	}
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: reject me\r\n\r\nx\r\n.\r\n")
	if code, text := c.Reply(); code != 550 || text != "5.7.1 the filter says no" {
		t.Errorf("DATA refused by the filter: %d %s", code, text)
	}
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: pass\r\n\r\n.. a dot-stuffed line\r\n.\r\n")
	code, text := c.Reply()
	if code != 250 || !strings.HasPrefix(text, "2.0.0 Ok: queued as ") {
		t.Fatalf("DATA accepted by the filter: %d %s", code, text)
	}
	filterID := strings.TrimPrefix(text, "2.0.0 Ok: queued as ")
	// BDAT chunks reach the filter as one DATA; its reply ends the last.
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Send("BDAT 21\r\nSubject: chunked\r\n\r\n.")
	if code, text := c.Reply(); code != 250 || text != "2.0.0 Ok: 21 bytes" {
		t.Errorf("BDAT: %d %s", code, text)
	}
	c.Send("BDAT 7 LAST\r\nstart\r\n")
	if code, text := c.Reply(); code != 250 || !strings.HasPrefix(text, "2.0.0 Ok: queued as ") {
		t.Errorf("BDAT LAST accepted by the filter: %d %s", code, text)
	}

	sink.WaitMessages(2, 30*time.Second)
	time.Sleep(time.Second) // a second copy, if there were one, would be on its way
	msgs := sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("sink got %d messages, want 2\n%s\n%s", len(msgs), gw.Log(""), filter.Log(""))
	}
	if _, msg := harness.SinkBody(msgs[1]); !strings.Contains(msg, "Subject: chunked\n\n.start\n") {
		t.Errorf("chunked message:\n%s", msg)
	}
	_, msg := harness.SinkBody(msgs[0])
	for _, want := range []string{
		"Subject: pass\n",
		"\n. a dot-stuffed line\n",
		// The filter's header names the original client (XFORWARD).
		"Received: from client.test (unknown [127.0.0.5])\n\tby filter.gateway.test (postgate) with ESMTP id " + filterID,
		// The gateway's own has no queue ID: it queued nothing.
		"Received: from client.test (unknown [127.0.0.5])\n\tby mx.gateway.test (postgate) with ESMTP\n\tfor <u@relay.test>;",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, msg)
		}
	}
	log := gw.Log("proxy-accept")
	for _, want := range []string{
		"postgate/smtpd[", "proxy-reject: END-OF-MESSAGE: 550 5.7.1 the filter says no; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>",
		"proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as " + filterID + "; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>",
		`warning: proxy 127.0.0.1:` + fmt.Sprint(filter.Port) + ` rejected "RCPT TO:<bad@relay.test>": "554 5.7.1 <bad@relay.test>: Recipient address rejected: no such user here"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("gateway log lacks %q:\n%s", want, log)
		}
	}
	// smtpd_proxy_ehlo is what the gateway says to the filter.
	if flog := filter.Log("helo=<proxy.gateway.test>"); !strings.Contains(flog, "helo=<proxy.gateway.test>") {
		t.Errorf("the filter's log should show smtpd_proxy_ehlo:\n%s", flog)
	}
	if strings.Contains(log, "client=unknown[127.0.0.5]") {
		t.Errorf("the gateway queued before the filter:\n%s", log)
	}
}

// TestProxyFilterDown: with the filter down, a recipient gets Postfix's
// temporary reply and nothing is queued; the log says why. speed_adjust,
// which postgate does not support, is reported at start.
func TestProxyFilterDown(t *testing.T) {
	t.Parallel()
	dead := harness.FreePort(t)
	gw := harness.Start(t, fmt.Sprintf("smtpd_proxy_filter = inet:127.0.0.1:%d\nsmtpd_proxy_options = speed_adjust\n", dead), "")
	speed := "parameter smtpd_proxy_options: speed_adjust is not supported by postgate and is ignored"
	if log := gw.Log(speed); !strings.Contains(log, speed) {
		t.Errorf("no warning about speed_adjust:\n%s", log)
	}
	c := harness.Dial(t, gw.Addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	if code, text := c.Cmd("RCPT TO:<u@relay.test>"); code != 451 || text != "4.3.0 Error: queue file write error" {
		t.Errorf("RCPT with the filter down: %d %s", code, text)
	}
	if code, text := c.Cmd("DATA"); code != 554 {
		t.Errorf("DATA without recipients: %d %s", code, text)
	}
	want := fmt.Sprintf("warning: connect to proxy filter inet:127.0.0.1:%d: Connection refused", dead)
	if log := gw.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if n := len(queueJSON(t, gw)); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}

// TestProxyFilterTimeout: a filter that accepts the connection and never
// greets (a bare TCP listener) is given up after smtpd_proxy_timeout: the
// recipient gets Postfix's temporary reply.
func TestProxyFilterTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	gw := harness.Start(t, fmt.Sprintf("smtpd_proxy_filter = %s\nsmtpd_proxy_timeout = 2s\n", ln.Addr()), "")
	c := harness.Dial(t, gw.Addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	start := time.Now()
	code, text := c.Cmd("RCPT TO:<u@relay.test>")
	took := time.Since(start)
	if code != 451 || text != "4.3.0 Error: queue file write error" {
		t.Errorf("RCPT with a silent filter: %d %s", code, text)
	}
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("the reply came after %v, want smtpd_proxy_timeout (2s)", took)
	}
	want := "warning: timeout talking to proxy " + ln.Addr().String()
	if log := gw.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}
