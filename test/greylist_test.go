package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"postgate/greylist/redistest"
	"postgate/test/dnstest"
	"postgate/test/harness"
)

// greylistConfig greylists every recipient of corp.test (delivered to
// SINK's port) for 2 s.
const greylistConfig = rejectUnauth + `relay_domains = corp.test
smtpd_recipient_restrictions = check_greylist
postgate_greylist_delay = 2s
`

// greylistAttempt sends one message from client src and returns the reply
// to RCPT; an accepted recipient's message is sent whole (Subject: subject).
// An IPv6 src is given with XCLIENT by a client on 127.0.0.5.
func greylistAttempt(t *testing.T, addr, src, from, to, subject string) string {
	t.Helper()
	local := src
	if strings.Contains(src, ":") {
		local = outside
	}
	c := harness.Dial(t, addr, local)
	defer c.Conn.Close()
	if local != src {
		c.Expect(220, "XCLIENT ADDR=IPV6:%s", src)
	}
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<%s>", from)
	code, text := c.Cmd("RCPT TO:<%s>", to)
	if code == 250 {
		c.Expect(354, "DATA")
		c.Send("Subject: " + subject + "\r\n\r\nx\r\n.\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: DATA: %d %s", subject, code, text)
		}
	}
	c.Cmd("QUIT")
	return fmt.Sprintf("%d %s", code, text)
}

// delivered lists the Subjects that reached the sink.
func delivered(t *testing.T, s *harness.Sink, n int) []string {
	t.Helper()
	var out []string
	for _, m := range s.WaitMessages(n, 20*time.Second) {
		_, msg := harness.SinkBody(m)
		if subject := subjectRe.FindStringSubmatch(msg); subject != nil {
			out = append(out, subject[1])
		}
	}
	return out
}

// TestGreylist: the first attempt of a triplet and a retry before the
// delay get 450; a retry after it is accepted and delivered; the client's
// network (/24) is what counts; after two passed triplets the client is
// no longer greylisted; a retry after the retry window and a triplet
// unseen for its lifetime start over; allowlisted clients, senders and
// recipients pass at once.
func TestGreylist(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	p := harness.Start(t, greylistConfig+routes("corp.test", sink)+`postgate_greylist_retry_window = 1s
postgate_greylist_lifetime = 2s
postgate_greylist_auto_allowlist_clients = 2
postgate_greylist_text = Greylisted for %s seconds, see http://greylist.test/%r
postgate_greylist_client_allowlist_maps = inline:{ 127.0.3.5=OK }
postgate_greylist_sender_allowlist_maps = inline:{ friend.test=OK }
postgate_greylist_recipient_allowlist_maps = inline:{ abuse@=OK }
`, "")
	try := func(src, from, to, subject string) string {
		return greylistAttempt(t, p.Addr, src, from, to, subject)
	}
	const greylisted = "450 4.2.0 <%s>: Recipient address rejected: Greylisted for 2 seconds, see http://greylist.test/corp.test"
	expect := func(got, format string, args ...any) {
		t.Helper()
		if want := fmt.Sprintf(format, args...); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}

	start := time.Now()
	expect(try(outside, "a@src.test", "u1@corp.test", "u1_first"), greylisted, "u1@corp.test")
	expect(try(outside, "a@src.test", "u1@corp.test", "u1_early"), greylisted, "u1@corp.test")
	expect(try(outside, "a@src.test", "u2@corp.test", "u2_first"), greylisted, "u2@corp.test")
	expect(try("127.0.2.5", "a@src.test", "u4@corp.test", "u4_first"), greylisted, "u4@corp.test")
	// Allowlists.
	expect(try("127.0.3.5", "a@src.test", "u1@corp.test", "allowed_client"), "250 2.1.5 Ok")
	expect(try(outside, "x@mail.friend.test", "u1@corp.test", "allowed_sender"), "250 2.1.5 Ok")
	expect(try(outside, "a@src.test", "abuse@corp.test", "allowed_recipient"), "250 2.1.5 Ok")

	time.Sleep(time.Until(start.Add(2200 * time.Millisecond)))
	// Same /24 as the first attempt.
	expect(try("127.0.0.6", "a@src.test", "u1@corp.test", "u1_retry"), "250 2.1.5 Ok")
	expect(try(outside, "a@src.test", "u2@corp.test", "u2_retry"), "250 2.1.5 Ok")
	// Two passed triplets: the network is allowlisted, another is not.
	expect(try(outside, "a@src.test", "u3@corp.test", "u3_allowlisted"), "250 2.1.5 Ok")
	expect(try("127.0.1.5", "a@src.test", "u3@corp.test", "u3_other_network"), greylisted, "u3@corp.test")
	passedAt := time.Now()

	// u4's retry window (2 s + 1 s) is over; u1 and the client's pass
	// count were last seen more than their lifetime (2 s) ago.
	time.Sleep(max(time.Until(start.Add(3200*time.Millisecond)), time.Until(passedAt.Add(2200*time.Millisecond))))
	expect(try("127.0.2.5", "a@src.test", "u4@corp.test", "u4_late"), greylisted, "u4@corp.test")
	expect(try(outside, "a@src.test", "u1@corp.test", "u1_expired"), greylisted, "u1@corp.test")

	got := strings.Join(delivered(t, sink, 6), " ")
	for _, want := range []string{"allowed_client", "allowed_sender", "allowed_recipient", "u1_retry", "u2_retry", "u3_allowlisted"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s not delivered (delivered: %s)", want, got)
		}
	}
	if strings.Contains(got, "first") || strings.Contains(got, "early") || strings.Contains(got, "other_network") {
		t.Errorf("greylisted mail delivered: %s", got)
	}
	want := "NOQUEUE: reject: RCPT from unknown[127.0.0.5]: 450 4.2.0 <u1@corp.test>: Recipient address rejected: Greylisted for 2 seconds, see http://greylist.test/corp.test; from=<a@src.test> to=<u1@corp.test> proto=ESMTP helo=<client.test>"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("no line %q in the log:\n%s", want, log)
	}
}

// TestGreylistSharedRedis: two postgate nodes share one real Redis: the
// first attempt on node A, an early retry on node B, and the retry after
// the delay on node B is accepted.
func TestGreylistSharedRedis(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	sink := harness.StartSink(t)
	cfg := greylistConfig + routes("corp.test", sink) + "postgate_state_store = redis://" + redis.Addr + "/1\n"
	a, b := harness.Start(t, cfg, ""), harness.Start(t, cfg, "")
	const greylisted = "450 4.2.0 <u@corp.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/corp.test.html"
	start := time.Now()
	if got := greylistAttempt(t, a.Addr, outside, "s@src.test", "u@corp.test", "on_a"); got != greylisted {
		t.Fatalf("first attempt on A: %s", got)
	}
	if got := greylistAttempt(t, b.Addr, outside, "s@src.test", "u@corp.test", "early_on_b"); got != greylisted {
		t.Fatalf("early retry on B: %s", got)
	}
	time.Sleep(time.Until(start.Add(2200 * time.Millisecond)))
	if got := greylistAttempt(t, b.Addr, outside, "s@src.test", "u@corp.test", "retry_on_b"); got != "250 2.1.5 Ok" {
		t.Fatalf("retry on B after the delay: %s", got)
	}
	if got := delivered(t, sink, 1); len(got) != 1 || got[0] != "retry_on_b" {
		t.Errorf("delivered: %q", got)
	}
}

// TestGreylistRedisDown: with Redis stopped, node A (the default failure
// action) keeps accepting mail and warns once, node B
// (postgate_state_failure_action = defer) answers 451 4.3.0; once Redis
// is back, both greylist again by themselves.
func TestGreylistRedisDown(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	sink := harness.StartSink(t)
	cfg := greylistConfig + routes("corp.test", sink) + "postgate_state_store = redis://" + redis.Addr + "\n"
	a := harness.Start(t, cfg, "")
	b := harness.Start(t, cfg+"postgate_state_failure_action = defer\n", "")
	greylisted := func(rcpt string) string {
		return fmt.Sprintf("450 4.2.0 <%s>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/corp.test.html", rcpt)
	}
	if got := greylistAttempt(t, a.Addr, outside, "s@src.test", "before@corp.test", "before"); got != greylisted("before@corp.test") {
		t.Fatalf("with Redis up: %s", got)
	}

	redis.Stop()
	for i := range 3 {
		subject := fmt.Sprintf("down_%d", i)
		if got := greylistAttempt(t, a.Addr, outside, "s@src.test", subject+"@corp.test", subject); got != "250 2.1.5 Ok" {
			t.Errorf("node A with Redis down: %s", got)
		}
	}
	if got := greylistAttempt(t, b.Addr, outside, "s@src.test", "deferred@corp.test", "deferred"); got != "451 4.3.0 <deferred@corp.test>: Temporary lookup failure" {
		t.Errorf("node B with Redis down: %s", got)
	}
	if got := delivered(t, sink, 3); len(got) != 3 {
		t.Errorf("delivered while Redis was down: %q", got)
	}
	logA := a.Log("to=<down_2@corp.test>")
	warning := "warning: check_greylist: state store redis://" + redis.Addr + ": "
	if n := strings.Count(logA, warning); n != 1 || !strings.Contains(logA, "the recipient is let through (postgate_state_failure_action)") {
		t.Errorf("node A logged %d outage warnings, want 1:\n%s", n, logA)
	}
	if logB := b.Log("deferred@corp.test"); !strings.Contains(logB, "the recipient is deferred (postgate_state_failure_action)") ||
		!strings.Contains(logB, "NOQUEUE: reject: RCPT from unknown[127.0.0.5]: 451 4.3.0 <deferred@corp.test>: Temporary lookup failure;") {
		t.Errorf("node B's log:\n%s", logB)
	}

	redis.Start()
	for _, n := range []*harness.Postgate{a, b} {
		if got := greylistAttempt(t, n.Addr, outside, "s@src.test", "after@corp.test", "after"); got != greylisted("after@corp.test") {
			t.Errorf("%s with Redis back: %s", n.Addr, got)
		}
		if log := n.Log("answers again"); !strings.Contains(log, "check_greylist: the state store answers again") {
			t.Errorf("%s did not log the recovery:\n%s", n.Addr, log)
		}
	}
}

// TestGreylistRedisSlow: a Redis that stops answering (DEBUG SLEEP) costs
// a check postgate_state_timeout, then the failure action lets the mail
// through; the check works again when Redis does.
func TestGreylistRedisSlow(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t, "--enable-debug-command", "yes")
	sink := harness.StartSink(t)
	// No connection count limit: its check would wait for Redis too.
	p := harness.Start(t, greylistConfig+routes("corp.test", sink)+
		"postgate_state_store = redis://"+redis.Addr+"\npostgate_state_timeout = 1s\nsmtpd_client_connection_count_limit = 0\n", "")
	whileAsleep(t, redis, p, "warning: check_greylist", func() {
		if got := greylistAttempt(t, p.Addr, outside, "s@src.test", "slow@corp.test", "slow"); got != "250 2.1.5 Ok" {
			t.Errorf("with Redis asleep: %s", got)
		}
	})
	if got := greylistAttempt(t, p.Addr, outside, "s@src.test", "awake@corp.test", "awake"); !strings.HasPrefix(got, "450 4.2.0 <awake@corp.test>") {
		t.Errorf("with Redis awake: %s", got)
	}
}

// TestGreylistIPv6: an IPv6 client's network is its /64
// (postgate_greylist_ipv6_prefix), or what the parameter says.
func TestGreylistIPv6(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	cfg := greylistConfig + routes("corp.test", sink) + "smtpd_authorized_xclient_hosts = 127.0.0.0/8\n"
	p64, p48 := harness.Start(t, cfg, ""), harness.Start(t, cfg+"postgate_greylist_ipv6_prefix = 48\n", "")
	start := time.Now()
	for _, p := range []*harness.Postgate{p64, p48} {
		if got := greylistAttempt(t, p.Addr, "2001:db8:1:2::5", "s@src.test", "u@corp.test", "first"); !strings.HasPrefix(got, "450 4.2.0") {
			t.Fatalf("first attempt: %s", got)
		}
	}
	time.Sleep(time.Until(start.Add(2200 * time.Millisecond)))
	for _, c := range []struct {
		p         *harness.Postgate
		src, want string
	}{
		{p64, "2001:db8:1:2::99", "250 2.1.5 Ok"},
		{p64, "2001:db8:1:3::5", "450 4.2.0"},
		{p48, "2001:db8:1:3::5", "250 2.1.5 Ok"},
		{p48, "2001:db8:2:2::5", "450 4.2.0"},
	} {
		if got := greylistAttempt(t, c.p.Addr, c.src, "s@src.test", "u@corp.test", "retry"); !strings.HasPrefix(got, c.want) {
			t.Errorf("retry from %s: %s, want %s", c.src, got, c.want)
		}
	}
}

// TestGreylistSkip: with postgate_greylist_skip = dnswl, spf_pass a client
// that permit_dnswl_client found listed, and a sender whose SPF result is
// pass, are not greylisted; without it they are.
func TestGreylistSkip(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, `6.0.0.127.wl.test. 60 IN A 127.0.0.2
spf.test. 60 IN TXT "v=spf1 ip4:127.0.0.7 -all"
`)
	sink := harness.StartSink(t)
	cfg := greylistConfig + routes("corp.test", sink) + "postgate_dns_servers = " + srv.Addr() + `
smtpd_peername_lookup = no
smtpd_client_restrictions = permit_dnswl_client wl.test
`
	skip, plain := harness.Start(t, cfg+"postgate_greylist_skip = dnswl, spf_pass\n", ""), harness.Start(t, cfg, "")
	for _, c := range []struct {
		p             *harness.Postgate
		src, from, to string
		want          string
	}{
		{skip, "127.0.0.6", "s@src.test", "a@corp.test", "250 2.1.5 Ok"},
		{skip, "127.0.0.7", "s@spf.test", "b@corp.test", "250 2.1.5 Ok"},
		{skip, "127.0.0.8", "s@spf.test", "c@corp.test", "450 4.2.0 <c@corp.test>"}, // SPF fail
		{skip, "127.0.0.8", "s@src.test", "d@corp.test", "450 4.2.0 <d@corp.test>"}, // SPF none
		{plain, "127.0.0.6", "s@src.test", "a@corp.test", "450 4.2.0 <a@corp.test>"},
		{plain, "127.0.0.7", "s@spf.test", "b@corp.test", "450 4.2.0 <b@corp.test>"},
	} {
		if got := greylistAttempt(t, c.p.Addr, c.src, c.from, c.to, "skip"); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s <%s> on %s: %s, want %s", c.src, c.from, c.p.Addr, got, c.want)
		}
	}
}

// whileAsleep runs session while redis sleeps (DEBUG SLEEP 4): it must
// take postgate_state_timeout (1s), not the whole sleep, and p must log a
// timeout warning starting with warning; it returns once redis is awake.
func whileAsleep(t *testing.T, redis *redistest.Server, p *harness.Postgate, warning string, session func()) {
	t.Helper()
	slept := make(chan error, 1)
	go func() {
		_, err := redis.Do("DEBUG SLEEP 4")
		slept <- err
	}()
	time.Sleep(200 * time.Millisecond)
	begin := time.Now()
	session()
	if d := time.Since(begin); d < time.Second || d > 3*time.Second {
		t.Errorf("the session took %v with postgate_state_timeout = 1s", d)
	}
	if log := p.Log(warning); !strings.Contains(log, "i/o timeout") && !strings.Contains(log, "deadline exceeded") {
		t.Errorf("no timeout warning:\n%s", log)
	}
	if err := <-slept; err != nil {
		t.Fatal(err)
	}
}
