package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postgate/greylist/redistest"
	"postgate/test/harness"
)

// Postfix's anvil limits shared by the nodes of a pool through one Redis
// (postgate_state_store), and what a Redis outage does to them.

// anvilNodes starts n postgate nodes sharing redis, one service name in
// the store, the limits of each extra, delivering corp.test to a sink.
func anvilNodes(t *testing.T, redis *redistest.Server, extra ...string) ([]*harness.Postgate, *harness.Sink) {
	t.Helper()
	sink := harness.StartSink(t)
	base := rejectUnauth + "relay_domains = corp.test\n" + routes("corp.test", sink) +
		"postgate_state_store = redis://" + redis.Addr + "/4\npostgate_anvil_service_name = smtp\nanvil_rate_time_unit = 1h\n"
	var out []*harness.Postgate
	for _, e := range extra {
		out = append(out, harness.Start(t, base+e, ""))
	}
	return out, sink
}

// TestAnvilSharedRedis: the N+1-th connection, message and recipient of
// a client within the window is refused with Postfix's reply, counted
// across two nodes; mynetworks is never counted.
func TestAnvilSharedRedis(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	limits := `smtpd_client_connection_count_limit = 2
smtpd_client_connection_rate_limit = 4
smtpd_client_message_rate_limit = 2
smtpd_client_recipient_rate_limit = 3
`
	nodes, _ := anvilNodes(t, redis, limits, limits)
	a, b := nodes[0], nodes[1]
	refused := func(p *harness.Postgate, src, want, logLine string) {
		t.Helper()
		c := harness.DialRaw(t, p.Addr, src)
		if code, text := c.Reply(); fmt.Sprintf("%d %s", code, text) != want {
			t.Errorf("%s on %s: %d %s, want %s", src, p.Addr, code, text, want)
		}
		if !c.Closed() {
			t.Errorf("%s on %s: the refused connection was left open", src, p.Addr)
		}
		if log := p.Log(logLine); !strings.Contains(log, logLine) {
			t.Errorf("no line %q in %s's log:\n%s", logLine, p.Addr, log)
		}
	}

	// Open connections: one on each node, the third refused.
	held := []*harness.Client{harness.Dial(t, a.Addr, "127.0.0.5"), harness.Dial(t, b.Addr, "127.0.0.5")}
	refused(a, "127.0.0.5", "421 4.7.0 mx.gateway.test Error: too many connections from 127.0.0.5",
		"warning: Connection concurrency limit exceeded: 3 from unknown[127.0.0.5] for service 127.0.0.1:"+fmt.Sprint(a.Port))
	held[1].Expect(221, "QUIT")
	dialWhenFree(t, a.Addr, "127.0.0.5").Expect(221, "QUIT")

	// Connection rate: four in the window, on either node, the fifth refused.
	for _, p := range []*harness.Postgate{a, b, a, b} {
		harness.Dial(t, p.Addr, "127.0.0.6").Expect(221, "QUIT")
	}
	refused(b, "127.0.0.6", "421 4.7.0 mx.gateway.test Error: too many connections from 127.0.0.6",
		"warning: Connection rate limit exceeded: 5 from unknown[127.0.0.6] for service 127.0.0.1:"+fmt.Sprint(b.Port))

	// Messages: one MAIL on A, one on B, the third refused.
	c := harness.Dial(t, a.Addr, "127.0.0.7")
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	c.Expect(221, "QUIT")
	c = harness.Dial(t, b.Addr, "127.0.0.7")
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	c.Expect(250, "RSET")
	if code, text := c.Cmd("MAIL FROM:<s@src.test>"); code != 450 || text != "4.7.1 Error: too much mail from 127.0.0.7" {
		t.Errorf("third MAIL: %d %s", code, text)
	}
	if want := "warning: Message delivery request rate limit exceeded: 3 from unknown[127.0.0.7] for service 127.0.0.1:" + fmt.Sprint(b.Port); !strings.Contains(b.Log(want), want) {
		t.Errorf("no line %q in B's log", want)
	}

	// Recipients: two on A, one on B, the fourth refused.
	c = harness.Dial(t, a.Addr, "127.0.0.8")
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	c.Expect(250, "RCPT TO:<u1@corp.test>")
	c.Expect(250, "RCPT TO:<u2@corp.test>")
	c = harness.Dial(t, b.Addr, "127.0.0.8")
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	c.Expect(250, "RCPT TO:<u3@corp.test>")
	if code, text := c.Cmd("RCPT TO:<u4@corp.test>"); code != 450 || text != "4.7.1 Error: too many recipients from 127.0.0.8" {
		t.Errorf("fourth RCPT: %d %s", code, text)
	}
	if want := "warning: Recipient address rate limit exceeded: 4 from unknown[127.0.0.8] for service 127.0.0.1:" + fmt.Sprint(b.Port); !strings.Contains(b.Log(want), want) {
		t.Errorf("no line %q in B's log", want)
	}

	// mynetworks (smtpd_client_event_limit_exceptions): not counted.
	for _, p := range []*harness.Postgate{a, b, a, b, a} {
		c := harness.Dial(t, p.Addr, "127.0.0.1")
		c.Expect(250, "EHLO inside.test")
		for i := range 3 {
			c.Expect(250, "MAIL FROM:<s@gateway.test>")
			c.Expect(250, "RCPT TO:<u%d@corp.test>", i)
			c.Expect(250, "RSET")
		}
	}
}

// TestAnvilRedisDown: with Redis stopped, node A (the default failure
// action) lets connections, messages and recipients through and warns
// once; node B (defer) still lets connections in (connection limits fail
// open) but answers MAIL 451 4.3.0; node C (defer, no connection limits)
// answers RCPT 451 4.3.0. Once Redis is back, the limits apply again by
// themselves.
func TestAnvilRedisDown(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	nodes, sink := anvilNodes(t, redis,
		"smtpd_client_connection_count_limit = 5\nsmtpd_client_message_rate_limit = 2\nsmtpd_client_recipient_rate_limit = 2\n",
		"smtpd_client_connection_count_limit = 5\nsmtpd_client_message_rate_limit = 2\npostgate_state_failure_action = defer\n",
		"smtpd_client_connection_count_limit = 0\nsmtpd_client_recipient_rate_limit = 2\npostgate_state_failure_action = defer\n")
	a, b, c := nodes[0], nodes[1], nodes[2]
	session := func(p *harness.Postgate, rcpts ...string) []string {
		t.Helper()
		cl := harness.Dial(t, p.Addr, outside)
		defer cl.Conn.Close()
		cl.Expect(250, "EHLO client.src.test")
		var out []string
		if code, text := cl.Cmd("MAIL FROM:<s@src.test>"); code != 250 {
			return []string{fmt.Sprintf("MAIL: %d %s", code, text)}
		}
		for _, r := range rcpts {
			code, text := cl.Cmd("RCPT TO:<%s>", r)
			out = append(out, fmt.Sprintf("%d %s", code, text))
		}
		cl.Cmd("QUIT")
		return out
	}
	tooMany := "450 4.7.1 Error: too many recipients from 127.0.0.5"

	redis.Stop()
	// A: more recipients and messages than its limits, all through.
	for range 3 {
		if got := strings.Join(session(a, "u1@corp.test", "u2@corp.test", "u3@corp.test"), ", "); got != "250 2.1.5 Ok, 250 2.1.5 Ok, 250 2.1.5 Ok" {
			t.Errorf("node A with Redis down: %s", got)
		}
	}
	// ... and a message is queued and delivered.
	cl := harness.Dial(t, a.Addr, outside)
	cl.Expect(250, "EHLO client.src.test")
	cl.Expect(250, "MAIL FROM:<s@src.test>")
	cl.Expect(250, "RCPT TO:<u@corp.test>")
	cl.Expect(354, "DATA")
	cl.Send("Subject: during_outage\r\n\r\nx\r\n.\r\n")
	if code, text := cl.Reply(); code != 250 {
		t.Errorf("DATA on node A with Redis down: %d %s", code, text)
	}
	if got := delivered(t, sink, 1); len(got) != 1 || got[0] != "during_outage" {
		t.Errorf("delivered: %q", got)
	}
	logA := a.Log("warning: anvil:")
	if n := strings.Count(logA, "warning: anvil: state store redis://"+redis.Addr+"/4: "); n != 1 ||
		!strings.Contains(logA, "the connection is let through (connection limits fail open)") {
		t.Errorf("node A logged %d outage warnings, want 1:\n%s", n, logA)
	}
	if got := session(b); len(got) != 1 || got[0] != "MAIL: 451 4.3.0 Temporary lookup failure" {
		t.Errorf("node B with Redis down: %s", got)
	}
	// One warning a minute: the connection's.
	if log := b.Log("fail open"); strings.Count(log, "warning: anvil:") != 1 || !strings.Contains(log, "the connection is let through (connection limits fail open)") {
		t.Errorf("node B's log:\n%s", log)
	}
	if got := session(c, "u1@corp.test"); got[0] != "451 4.3.0 Temporary lookup failure" {
		t.Errorf("node C with Redis down: %s", got)
	}
	if log := c.Log("is deferred"); !strings.Contains(log, "the command is deferred (postgate_state_failure_action)") {
		t.Errorf("node C's log:\n%s", log)
	}

	redis.Start()
	if got := session(a, "u1@corp.test", "u2@corp.test", "u3@corp.test"); got[2] != tooMany {
		t.Errorf("node A with Redis back: %s", got)
	}
	if log := a.Log("answers again"); !strings.Contains(log, "anvil: the state store answers again") {
		t.Errorf("node A did not log the recovery:\n%s", log)
	}
	if got := session(b); len(got) != 0 {
		t.Errorf("node B with Redis back: %s", got)
	}
	if got := session(c, "u1@corp.test", "u2@corp.test", "u3@corp.test"); got[2] != tooMany {
		t.Errorf("node C with Redis back: %s", got)
	}
}

// TestSenderRateSharedRedis: check_sender_rate and
// check_recipient_domain_rate (postgate's) count recipients across two
// nodes sharing Redis.
func TestSenderRateSharedRedis(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	limits := filepath.Join(t.TempDir(), "sender_limits")
	if err := os.WriteFile(limits, []byte("# per sender address\nsrc.test 3/1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := "smtpd_recipient_restrictions = reject_unauth_destination, check_sender_rate texthash:" + limits +
		", check_recipient_domain_rate inline:{ corp.test=4/1h }\n"
	nodes, _ := anvilNodes(t, redis, cfg, cfg)
	rcpts := func(p *harness.Postgate, sender string, to ...string) string {
		c := harness.Dial(t, p.Addr, outside)
		defer c.Conn.Close()
		c.Expect(250, "EHLO client.src.test")
		c.Expect(250, "MAIL FROM:<%s>", sender)
		var out []string
		for _, r := range to {
			code, text := c.Cmd("RCPT TO:<%s>", r)
			out = append(out, fmt.Sprintf("%d %s", code, text))
		}
		return strings.Join(out, " | ")
	}
	ok := "250 2.1.5 Ok"
	if got := rcpts(nodes[0], "s@src.test", "u1@corp.test", "u2@corp.test"); got != ok+" | "+ok {
		t.Errorf("node A: %s", got)
	}
	senderOver := "450 4.7.1 <s@src.test>: Sender address rejected: Sender rate limit exceeded"
	if got := rcpts(nodes[1], "s@src.test", "u3@corp.test", "u4@corp.test"); got != ok+" | "+senderOver {
		t.Errorf("node B: %s", got)
	}
	want := ": reject: RCPT from unknown[127.0.0.5]: " + senderOver + "; from=<s@src.test> to=<u4@corp.test> proto=ESMTP helo=<client.src.test>"
	if log := nodes[1].Log(want); !strings.Contains(log, want) {
		t.Errorf("no line %q in B's log:\n%s", want, log)
	}
	// corp.test had three recipients: one more, then the domain's limit.
	domainOver := "450 4.7.1 <x2@corp.test>: Recipient address rejected: Recipient domain rate limit exceeded"
	if got := rcpts(nodes[0], "t@other.test", "x1@corp.test", "x2@corp.test"); got != ok+" | "+domainOver {
		t.Errorf("node A, another sender: %s", got)
	}
}

// TestAnvilRedisSlow: a Redis that stops answering costs a connection
// check postgate_state_timeout, then lets the client in with a warning;
// the limits work again once Redis does.
func TestAnvilRedisSlow(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t, "--enable-debug-command", "yes")
	nodes, _ := anvilNodes(t, redis, "smtpd_client_connection_count_limit = 1\npostgate_state_timeout = 1s\n")
	p := nodes[0]
	var held *harness.Client
	whileAsleep(t, redis, p, "warning: anvil:", func() { held = harness.Dial(t, p.Addr, outside) })
	// The held connection was let in uncounted; two more: the second is
	// over the limit.
	held.Expect(221, "QUIT")
	harness.Dial(t, p.Addr, outside)
	c := harness.DialRaw(t, p.Addr, outside)
	if code, text := c.Reply(); code != 421 || text != tooMany {
		t.Errorf("with Redis awake, second connection: %d %s", code, text)
	}
}
