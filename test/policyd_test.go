package test

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestPolicydAgainstPostgate: one main.cf serves postgate's own smtpd and
// `postgate policyd` (postgate_policyd_restrictions =
// $smtpd_recipient_restrictions: a DNS list against a real rbldnsd, then
// greylisting); a real Postfix asks the policy server from
// smtpd_recipient_restrictions. Postfix with the policy server answers
// as postgate does: a listed client gets the list's 554 (with Postfix's
// "Recipient address rejected:" before the same text), a new triplet
// postgate's greylisting 450, word for word, a retry after
// postgate_greylist_delay is accepted and delivered. The policy server
// logs the reject lines postgate's smtpd logs; it stops on SIGTERM, and
// Postfix then answers 451 4.3.5 Server configuration problem.
func TestPolicydAgainstPostgate(t *testing.T) {
	t.Parallel()
	rbl := startRbldnsd(t, rblZones, rblZoneSpecs...)
	pgSink, pfSink := harness.StartSink(t), harness.StartSink(t)
	policyPort := harness.FreePort(t)
	pg := harness.Start(t, fmt.Sprintf(`relay_domains = example.test
transport_maps = inline:{ example.test=smtp:[127.0.0.1]:%d }
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_rbl_client zen.test, check_greylist
smtpd_peername_lookup = no
postgate_dns_servers = %s
postgate_greylist_delay = 3s
postgate_policyd_restrictions = $smtpd_recipient_restrictions
postgate_policyd_listen = inet:127.0.0.1:%d
`, pgSink.Port, rbl, policyPort), "")
	policyd := harness.StartPolicyd(t, pg.Dir, policyPort)
	pf := harness.StartPostfix(t, policyConfig(pfSink, fmt.Sprintf("inet:127.0.0.1:%d", policyPort)))

	const from, to = "sender@src.test", "user@example.test"
	const prefix = "<" + to + ">: Recipient address rejected: "
	// A listed client.
	code, text := rcptFrom(t, pg.Addr, "127.0.0.2", from, to)
	wantText := "5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.test; Listed in zen.test, see http://zen.test/q/127.0.0.2"
	if code != 554 || text != wantText {
		t.Errorf("listed client, postgate: %d %s, want 554 %s", code, text, wantText)
	}
	pfCode, pfText := rcptFrom(t, pf.Addr, "127.0.0.2", from, to)
	if want := "5.7.1 " + prefix + strings.TrimPrefix(wantText, "5.7.1 "); pfCode != code || pfText != want {
		t.Errorf("listed client, Postfix with policyd: %d %s, want %d %s", pfCode, pfText, code, want)
	}

	// Greylisting: the same reply from both, first and early attempts.
	wantGrey := "4.2.0 " + prefix + "Greylisted, see http://postgrey.schweikert.ch/help/example.test.html"
	for _, attempt := range []string{"first", "early"} {
		code, text := sendPolicyMessage(t, pg.Addr, from, to)
		if code != 450 || text != wantGrey {
			t.Errorf("%s attempt, postgate: %d %s, want 450 %s", attempt, code, text, wantGrey)
		}
		if pfCode, pfText := sendPolicyMessage(t, pf.Addr, from, to); pfCode != code || pfText != text {
			t.Errorf("%s attempt: Postfix with policyd %d %s, postgate %d %s", attempt, pfCode, pfText, code, text)
		}
	}
	time.Sleep(3500 * time.Millisecond)
	if code, text := sendPolicyMessage(t, pg.Addr, from, to); code != 250 {
		t.Errorf("after the delay, postgate: %d %s, want 250", code, text)
	}
	if code, text := sendPolicyMessage(t, pf.Addr, from, to); code != 250 {
		t.Errorf("after the delay, Postfix with policyd: %d %s, want 250", code, text)
	}
	if n := len(pgSink.WaitMessages(1, 30*time.Second)); n != 1 {
		t.Errorf("postgate delivered %d messages, want 1", n)
	}
	if n := len(pfSink.WaitMessages(1, 30*time.Second)); n != 1 {
		t.Errorf("Postfix delivered %d messages, want 1", n)
	}

	// Both daemons log to the same maillog_file: the policy server's
	// reject lines are postgate smtpd's, under its own program name.
	log := pg.Log("status=sent")
	var smtpd, pd []string
	for _, l := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(l, "]: ")
		switch {
		case !ok || !strings.Contains(rest, "NOQUEUE: reject: RCPT"):
		case strings.Contains(l, " postgate/smtpd["):
			smtpd = append(smtpd, rest)
		case strings.Contains(l, " postgate/policyd["):
			pd = append(pd, rest)
		}
	}
	if len(smtpd) != 3 || strings.Join(pd, "\n") != strings.Join(smtpd, "\n") {
		t.Errorf("reject lines, postgate/policyd:\n%s\npostgate/smtpd:\n%s", strings.Join(pd, "\n"), strings.Join(smtpd, "\n"))
	}
	// Postfix logs the answers as its own rejects: the greylisting ones
	// word for word as postgate's smtpd.
	pfLines := logLines(pf.Log(), []string{"NOQUEUE: reject: RCPT"}, strings.NewReplacer())
	if len(pfLines) != 3 || len(smtpd) != 3 || strings.Join(pfLines[1:], "\n") != strings.Join(smtpd[1:], "\n") {
		t.Errorf("reject lines, Postfix:\n%s\npostgate/smtpd:\n%s", strings.Join(pfLines, "\n"), strings.Join(smtpd, "\n"))
	}

	// Stopped, the policy server says so; Postfix gets its default action.
	if err := policyd.Stop(); err != nil {
		t.Errorf("policyd after SIGTERM: %v", err)
	}
	if l := pg.Log("]: stopped"); !regexp.MustCompile(`postgate/policyd\[[0-9]+\]: stopped`).MatchString(l) {
		t.Errorf("no stop line in the log:\n%s", l)
	}
	code, text = rcptFrom(t, pf.Addr, outside, from, "other@example.test")
	if want := "4.3.5 <other@example.test>: Recipient address rejected: Server configuration problem"; code != 451 || text != want {
		t.Errorf("policy server down: %d %s, want 451 %s", code, text, want)
	}
}

// TestPolicydTimeouts: postgate_policyd_timeout closes a connection whose
// request does not arrive in time (with a warning), and
// postgate_policyd_idle_timeout one that waits too long for its next
// request (silently), through the built binary.
func TestPolicydTimeouts(t *testing.T) {
	t.Parallel()
	port := harness.FreePort(t)
	dir, _ := harness.Config(t, fmt.Sprintf(`postgate_policyd_listen = inet:127.0.0.1:%d
postgate_policyd_timeout = 1s
postgate_policyd_idle_timeout = 2s
`, port), "")
	pd := harness.StartPolicyd(t, dir, port)
	closedAfter := func(send string) time.Duration {
		nc, err := net.Dial("tcp", pd.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		start := time.Now()
		nc.Write([]byte(send))
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 100)
		for {
			n, err := nc.Read(b)
			if err != nil || n == 0 {
				return time.Since(start)
			}
		}
	}
	if took := closedAfter("request=smtpd_access_policy\nprotocol_st"); took < 900*time.Millisecond || took > 1800*time.Millisecond {
		t.Errorf("a request cut short: closed after %v, want postgate_policyd_timeout 1s", took)
	}
	if took := closedAfter(""); took < 1900*time.Millisecond || took > 3*time.Second {
		t.Errorf("an idle connection: closed after %v, want postgate_policyd_idle_timeout 2s", took)
	}
	log := pd.Log("timeout reading a request")
	if !strings.Contains(log, "postgate/policyd[") || strings.Count(log, "warning:") != 1 {
		t.Errorf("want one timeout warning:\n%s", log)
	}
}

// TestPolicydSPFAgainstPostgate: reject_spf_fail against a real
// authoritative DNS server (nsd), in postgate's smtpd_sender_restrictions
// and, through postgate policyd on the same main.cf, in the real
// Postfix's: the same reply for every sender, word for word (Postfix puts
// "<sender>: Sender address rejected: " before the policy server's reason,
// as postgate does).
func TestPolicydSPFAgainstPostgate(t *testing.T) {
	t.Parallel()
	ns := startNSD(t, map[string]string{"spf.test": spfZone})
	pgSink, pfSink := harness.StartSink(t), harness.StartSink(t)
	policyPort := harness.FreePort(t)
	pg := harness.Start(t, fmt.Sprintf(spfRelay, pgSink.Port, ns)+fmt.Sprintf(`smtpd_sender_restrictions = reject_spf_fail
postgate_policyd_restrictions = $smtpd_sender_restrictions
postgate_policyd_listen = inet:127.0.0.1:%d
`, policyPort), "")
	harness.StartPolicyd(t, pg.Dir, policyPort)
	pf := harness.StartPostfix(t, fmt.Sprintf(`relay_domains = corp.test
transport_maps = inline:{ corp.test=smtp:[127.0.0.1]:%d }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_sender_restrictions = check_policy_service inet:127.0.0.1:%d
`, pfSink.Port, policyPort))
	for _, tc := range []struct {
		from string
		code int
	}{{"a@fail.spf.test", 550}, {"a@pass.spf.test", 250}, {"a@softfail.spf.test", 250}, {"a@none.spf.test", 250}} {
		code, text := rcptFrom(t, pg.Addr, outside, tc.from, "u@corp.test")
		if code != tc.code {
			t.Errorf("%s, postgate: %d %s, want %d", tc.from, code, text, tc.code)
		}
		if pfCode, pfText := rcptFrom(t, pf.Addr, outside, tc.from, "u@corp.test"); pfCode != code || pfText != text {
			t.Errorf("%s: Postfix with policyd %d %s, postgate %d %s", tc.from, pfCode, pfText, code, text)
		}
	}
}

// TestPolicydRateLimit: postgate's per-sender rate limit served to a real
// Postfix through `postgate policyd` answers as postgate's own smtpd: the
// first two recipients from the limited sender pass, the third gets the
// same 450 (with Postfix's "Recipient address rejected:" in front), and
// another sender is not counted with it.
func TestPolicydRateLimit(t *testing.T) {
	t.Parallel()
	pgSink, pfSink := harness.StartSink(t), harness.StartSink(t)
	policyPort := harness.FreePort(t)
	pg := harness.Start(t, fmt.Sprintf(`relay_domains = example.test
transport_maps = inline:{ example.test=smtp:[127.0.0.1]:%d }
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_sender_rate inline:{ {limited@src.test=2/1h} }
smtpd_peername_lookup = no
postgate_policyd_restrictions = $smtpd_recipient_restrictions
postgate_policyd_listen = inet:127.0.0.1:%d
`, pgSink.Port, policyPort), "")
	harness.StartPolicyd(t, pg.Dir, policyPort)
	pf := harness.StartPostfix(t, policyConfig(pfSink, fmt.Sprintf("inet:127.0.0.1:%d", policyPort)))
	// Postfix puts its own "<rcpt>: Recipient address rejected: " before a
	// policy server's text, as for any check_policy_service reject.
	want := map[string]string{
		pg.Addr: "4.7.1 <limited@src.test>: Sender address rejected: Sender rate limit exceeded",
		pf.Addr: "4.7.1 <user@example.test>: Recipient address rejected: Sender rate limit exceeded",
	}
	for _, addr := range []string{pg.Addr, pf.Addr} {
		for i := 1; i <= 3; i++ {
			code, text := rcptFrom(t, addr, outside, "limited@src.test", "user@example.test")
			switch {
			case i < 3 && code != 250:
				t.Errorf("%s: recipient %d of the limited sender: %d %s", addr, i, code, text)
			case i == 3 && (code != 450 || text != want[addr]):
				t.Errorf("%s: recipient 3 of the limited sender: %d %s, want 450 %s", addr, code, text, want[addr])
			}
		}
		if code, text := rcptFrom(t, addr, outside, "other@src.test", "user@example.test"); code != 250 {
			t.Errorf("%s: another sender: %d %s", addr, code, text)
		}
	}
}
