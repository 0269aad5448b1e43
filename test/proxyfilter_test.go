package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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
	// The filter delivers the two in either order.
	bySubject := map[string]string{}
	for _, m := range msgs {
		_, msg := harness.SinkBody(m)
		if sub := subjectRe.FindStringSubmatch(msg); sub != nil {
			bySubject[sub[1]] = msg
		}
	}
	// The reinjection listener's client, the filter, is local: cleanup's
	// missing headers are the gateway's (the filter was told SOURCE=REMOTE).
	if msg := bySubject["chunked"]; comparable(msg) != "Subject: chunked\nMessage-Id: <YYYYMMDDHHMMSS.QUEUEID@mx.gateway.test>\nDate: DATE\nFrom: a@src.test\n\n.start\n" {
		t.Errorf("chunked message:\n%s", msg)
	}
	msg := bySubject["pass"]
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

// proxyFilterConfig is the filter's main.cf in TestProxyFilterAgainstPostfix:
// it refuses bad@relay.test at RCPT and a "reject me" message at the end
// of DATA, and hands what it accepts to the reinjection port REINJECT.
const proxyFilterConfig = `myhostname = filter.gateway.test
relay_domains = relay.test
smtpd_authorized_xforward_hosts = 127.0.0.1
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access inline:{ {bad@relay.test=REJECT no such user here} }
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:REINJECT }
header_checks = regexp:{ {/^Subject: reject me/ REJECT 5.7.1 the filter says no} }
`

// TestProxyFilterAgainstPostfix runs one dialog through the real Postfix
// and through postgate, each with smtpd_proxy_filter to its own filter (a
// postgate) that reinjects into a second listener of its front, which
// relays to its own sink. The client's replies (the filter's refusals at
// RCPT and at the end of DATA, its 250 for DATA and for BDAT), the
// proxy-accept/proxy-reject log lines and the messages at the sinks
// (without Received: headers; the Message-Id:, Date: and From: that
// cleanup adds for the local client compared by their form) must be the
// same.
func TestProxyFilterAgainstPostfix(t *testing.T) {
	t.Parallel()
	type run struct {
		replies []string
		log     []string
		msgs    []string
	}
	dialog := func(addr string, sink *harness.Sink, log func() string) run {
		var r run
		c := harness.Dial(t, addr, outside)
		record := func(code int, text string) {
			r.replies = append(r.replies, fmt.Sprintf("%d %s", code, protocolQueueID.ReplaceAllString(text, "${1}QUEUEID")))
		}
		cmd := func(line string) { record(c.Cmd("%s", line)) }
		cmd("EHLO client.test")
		r.replies = r.replies[:0] // the EHLO keywords differ by configuration
		for _, m := range []struct{ subject, rcpt string }{{"reject me", "bad@relay.test"}, {"pass", ""}} {
			cmd("MAIL FROM:<a@src.test>")
			if m.rcpt != "" {
				cmd("RCPT TO:<" + m.rcpt + ">")
			}
			cmd("RCPT TO:<u@relay.test>")
			cmd("DATA")
			c.Send("Subject: " + m.subject + "\r\n\r\n..dotted\r\n.\r\n")
			record(c.Reply())
		}
		cmd("MAIL FROM:<a@src.test>")
		cmd("RCPT TO:<u@relay.test>")
		for _, chunk := range []string{"BDAT %d\r\nSubject: chunked\r\n", "BDAT %d LAST\r\n\r\n.start\r\n"} {
			body := chunk[strings.Index(chunk, "\n")+1:]
			c.Send(fmt.Sprintf(chunk[:len(chunk)-len(body)], len(body)) + body)
			record(c.Reply())
		}
		cmd("QUIT")
		for _, m := range sink.WaitMessages(2, 30*time.Second) {
			_, msg := harness.SinkBody(m)
			r.msgs = append(r.msgs, comparable(msg))
		}
		sort.Strings(r.msgs)
		for deadline := time.Now().Add(10 * time.Second); len(r.log) < 3 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			r.log = r.log[:0]
			for _, m := range proxyLogRe.FindAllStringSubmatch(log(), -1) {
				r.log = append(r.log, protocolQueueID.ReplaceAllString(m[1], "${1}QUEUEID"))
			}
		}
		return r
	}
	// start starts a filter reinjecting into a fresh port and returns its
	// port and the reinjection port.
	start := func() (filterPort, reinjectPort int) {
		reinjectPort = harness.FreePort(t)
		f := harness.Start(t, strings.ReplaceAll(proxyFilterConfig, "REINJECT", fmt.Sprint(reinjectPort)), "")
		return f.Port, reinjectPort
	}
	front := func(sink *harness.Sink) string {
		return fmt.Sprintf("myhostname = mx.gateway.test\nrelay_domains = relay.test\ntransport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\n", sink.Port)
	}

	postfixSink, postgateSink := harness.StartSink(t), harness.StartSink(t)
	fp, rp := start()
	pf := harness.StartPostfixWith(t, front(postfixSink), fmt.Sprintf("PORT inet n - n - - smtpd\n  -o smtpd_proxy_filter=127.0.0.1:%d\n127.0.0.1:%d inet n - n - - smtpd\n", fp, rp))
	fg, rg := start()
	pg := harness.Start(t, front(postgateSink), fmt.Sprintf("127.0.0.1:PORT inet n - n - - smtpd\n  -o smtpd_proxy_filter=127.0.0.1:%d\n127.0.0.1:%d inet n - n - - smtpd\n", fg, rg))

	want := dialog(pf.Addr, postfixSink, pf.Log)
	got := dialog(pg.Addr, postgateSink, func() string { return pg.Log("") })
	// The front adds them: the filter, told SOURCE=REMOTE by XFORWARD,
	// does not take its client (the front) as local.
	for _, m := range want.msgs {
		if !strings.Contains(m, "Message-Id: <YYYYMMDDHHMMSS.QUEUEID@mx.gateway.test>\nDate: DATE\nFrom: a@src.test\n") {
			t.Errorf("Postfix's front did not add the missing headers:\n%s", m)
		}
	}
	for _, v := range []struct {
		what      string
		got, want []string
	}{{"replies", got.replies, want.replies}, {"proxy log lines", got.log, want.log}, {"messages at the sink", got.msgs, want.msgs}} {
		if strings.Join(v.got, "\n") != strings.Join(v.want, "\n") || len(v.want) == 0 {
			t.Errorf("%s, postgate:\n%s\nPostfix:\n%s", v.what, strings.Join(v.got, "\n"), strings.Join(v.want, "\n"))
		}
	}
}

var proxyLogRe = regexp.MustCompile(`/smtpd\[\d+\]: (proxy-(?:accept|reject): .*)`)

// TestProxyFilterUnix: smtpd_proxy_filter = unix:/path, with smtp-sink on
// a unix socket as the filter: the client's reply at the end of DATA is
// the filter's, and the filter got the message with our Received: header.
func TestProxyFilterUnix(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "postgate-proxyunix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil { // smtp-sink writes its dumps as nobody
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "filter.sock")
	args := []string{"-d", filepath.Join(dir, "%M.")}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	sink := exec.Command(harness.Need(t, "smtp-sink", "postfix"), append(args, "unix:"+sock, "64")...)
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Process.Kill(); sink.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not listen on %s", sock)
		}
	}
	gw := harness.Start(t, "smtpd_proxy_filter = unix:"+sock+"\n", "")
	if code, text := sendThrough(t, gw.Addr, "a@src.test", "u@relay.test", "Subject: over unix\r\n\r\nx\r\n"); code != 250 || text != "2.0.0 Ok" {
		t.Errorf("DATA: %d %s, want smtp-sink's 250 2.0.0 Ok", code, text)
	}
	var dump []byte
	for deadline := time.Now().Add(10 * time.Second); len(dump) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.*"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "Subject: over unix") {
				dump = b
			}
		}
	}
	if !strings.Contains(string(dump), "Received: from client.test (unknown [127.0.0.5])\n\tby mx.gateway.test (postgate) with ESMTP\n\tfor <u@relay.test>;") {
		t.Errorf("the filter got:\n%s", dump)
	}
	if n := len(queueJSON(t, gw)); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}
