package test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"postgate/greylist/redistest"
	"postgate/test/harness"
)

// verifyRcpt opens a session to addr and answers RCPT TO:<rcpt> with its
// reply line ("450 4.1.1 ...").
func verifyRcpt(t *testing.T, addr, rcpt string) string {
	t.Helper()
	c := harness.Dial(t, addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	code, text := c.Cmd("RCPT TO:<%s>", rcpt)
	return fmt.Sprintf("%d %s", code, text)
}

// sinkProbes counts the probes the sink got for rcpt.
func sinkProbes(sink *harness.RcptSink, rcpt string) int {
	n := 0
	for _, l := range sink.Log() {
		if strings.HasSuffix(l, "RCPT TO:<"+rcpt+">") {
			n++
		}
	}
	return n
}

// waitProbes waits (bounded) until the sink got n probes for rcpt.
func waitProbes(t *testing.T, sink *harness.RcptSink, rcpt string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); sinkProbes(sink, rcpt) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sink got %d probes for %s, want %d: %q", sinkProbes(sink, rcpt), rcpt, n, sink.Log())
		}
	}
}

// TestVerifySharedRedis: two nodes sharing a real Redis share what their
// probes found: the address node A probed is answered on node B from the
// cache, with no second probe; the answer is probed again after
// address_verify_*_refresh_time (the cached answer still given
// meanwhile), and forgotten after address_verify_*_expire_time.
func TestVerifySharedRedis(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	const gone550 = "550 5.1.1 <gone@verify.test>: Recipient address rejected: User unknown"
	sink := harness.StartRcptSink(t, []harness.SinkRcpt{{Addr: "gone@verify.test", Reply: gone550},
		{Addr: "slow@verify.test", Delay: 1500 * time.Millisecond, Reply: "250 2.1.5 Ok"}})
	cfg := "relay_domains = verify.test\n" +
		"transport_maps = inline:{ verify.test=smtp:" + sink.Nexthop + " }\n" +
		"smtpd_recipient_restrictions = reject_unverified_recipient\n" +
		"address_verify_poll_count = 1\n" +
		"address_verify_negative_refresh_time = 3s\n" +
		"address_verify_positive_refresh_time = 3s\n" +
		"address_verify_positive_expire_time = 7s\n" +
		"address_verify_negative_expire_time = 7s\n" +
		"postgate_state_store = redis://" + redis.Addr + "/4\n"
	a, b := harness.Start(t, cfg, ""), harness.Start(t, cfg, "")

	const (
		inProgress = "450 4.1.1 <%s>: Recipient address rejected: unverified address: Address verification in progress"
		unverified = "450 4.1.1 <gone@verify.test>: Recipient address rejected: unverified address: host 127.0.0.1[127.0.0.1] said: " +
			gone550 + " (in reply to RCPT TO command)"
	)
	start := time.Now()
	if got := verifyRcpt(t, a.Addr, "gone@verify.test"); got != fmt.Sprintf(inProgress, "gone@verify.test") {
		t.Fatalf("first lookup on A: %s", got)
	}
	if got := verifyRcpt(t, a.Addr, "slow@verify.test"); got != fmt.Sprintf(inProgress, "slow@verify.test") {
		t.Fatalf("first lookup of slow@ on A: %s", got)
	}
	probeLog := regexp.MustCompile(`postgate/smtp\[\d+\]: NOQUEUE: to=<gone@verify\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, ` +
		`delay=[0-9.]+, dsn=5\.1\.1, status=undeliverable \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: ` + regexp.QuoteMeta(gone550) + ` \(in reply to RCPT TO command\)\)\n`)
	if log := a.Log("status=undeliverable"); !probeLog.MatchString(log) {
		t.Fatalf("no probe log line like %s in A's log:\n%s", probeLog, log)
	}
	if got := verifyRcpt(t, b.Addr, "gone@verify.test"); got != unverified {
		t.Fatalf("lookup on B: %s\nwant %s", got, unverified)
	}
	time.Sleep(time.Until(start.Add(2 * time.Second))) // slow@'s probe has its answer
	if got := verifyRcpt(t, b.Addr, "slow@verify.test"); got != "250 2.1.5 Ok" {
		t.Fatalf("slow@ on B after its probe: %s", got)
	}
	if n, m := sinkProbes(sink, "gone@verify.test"), sinkProbes(sink, "slow@verify.test"); n != 1 || m != 1 {
		t.Fatalf("probes: gone@ %d, slow@ %d, want 1 each (B answered from the shared cache): %q", n, m, sink.Log())
	}
	if log, _ := os.ReadFile(b.Maillog); strings.Contains(string(log), "status=") {
		t.Errorf("B sent a probe:\n%s", log)
	}

	// Past the refresh time: the cached answers still, and one new probe
	// each, whichever node asks.
	time.Sleep(time.Until(start.Add(5 * time.Second)))
	if got := verifyRcpt(t, b.Addr, "gone@verify.test"); got != unverified {
		t.Fatalf("gone@ after the refresh time: %s", got)
	}
	if got := verifyRcpt(t, a.Addr, "slow@verify.test"); got != "250 2.1.5 Ok" {
		t.Fatalf("slow@ after the refresh time: %s", got)
	}
	if got := verifyRcpt(t, b.Addr, "slow@verify.test"); got != "250 2.1.5 Ok" {
		t.Fatalf("slow@ again: %s", got)
	}
	waitProbes(t, sink, "gone@verify.test", 2)
	waitProbes(t, sink, "slow@verify.test", 2)

	// The refreshed answers (about 5 s and 6.5 s) expire 7 s later:
	// unknown again, probed again.
	time.Sleep(time.Until(start.Add(14500 * time.Millisecond)))
	for _, rcpt := range []string{"gone@verify.test", "slow@verify.test"} {
		if got := verifyRcpt(t, a.Addr, rcpt); got != fmt.Sprintf(inProgress, rcpt) {
			t.Fatalf("%s after the expire time: %s", rcpt, got)
		}
		waitProbes(t, sink, rcpt, 3)
	}
	for _, l := range sink.Log() {
		if strings.HasSuffix(l, " DATA") || !strings.HasPrefix(l, "MAIL FROM:<double-bounce@") {
			t.Errorf("sink got %q: not a probe", l)
		}
	}
}
