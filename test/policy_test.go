package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"postgate/policyd/policydtest"
	"postgate/test/harness"
)

// startPostgrey runs the real postgrey on a loopback port with a 15 s delay
// and a private database, and returns its port. It is stopped by its PID
// when the test ends.
func startPostgrey(t *testing.T) int {
	t.Helper()
	bin := harness.Need(t, "postgrey", "postgrey")
	// postgrey drops to its own user, which must reach the database.
	dir, err := os.MkdirTemp("", "postgate-postgrey-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgrey:postgrey", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	port := harness.FreePort(t)
	cmd := exec.Command(bin, fmt.Sprintf("--inet=127.0.0.1:%d", port), "--dbdir="+dir, "--delay=15",
		"--user=postgrey", "--group=postgrey", "--hostname=grey.test")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	harness.StartPeer(t, cmd, fmt.Sprintf("127.0.0.1:%d", port))
	return port
}

// policyConfig is the main.cf both servers run: example.test relayed to
// the sink, the policy service after reject_unauth_destination.
func policyConfig(sink *harness.Sink, policy string) string {
	return fmt.Sprintf(`relay_domains = example.test
transport_maps = inline:{ example.test=smtp:[127.0.0.1]:%d }
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service %s
`, sink.Port, policy)
}

// send gives one message from outside and returns the RCPT reply; when it
// is accepted the message is sent too.
func sendPolicyMessage(t *testing.T, addr, from, to string) (int, string) {
	t.Helper()
	c := harness.Dial(t, addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<%s>", from)
	code, text := c.Cmd("RCPT TO:<%s>", to)
	if code != 250 {
		return code, text
	}
	c.Expect(354, "DATA")
	c.Send("Subject: greylisted\r\nFrom: <" + from + ">\r\n\r\nbody\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("%s: end of data: %d %s", addr, code, text)
	}
	return code, text
}

// logPrefix is the "Mmm dd hh:mm:ss host program[pid]: " of a log line.
var logPrefix = regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [ 0-3][0-9] [0-9:]{8} \S+ \S+\[[0-9]+\]: `)

// logLines returns a mail log's lines that contain one of the words,
// without their prefix, with the given replacements made.
func logLines(log string, words []string, repl *strings.Replacer) []string {
	var out []string
	for _, l := range strings.Split(logPrefix.ReplaceAllString(log, ""), "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, repl.Replace(l))
				break
			}
		}
	}
	return out
}

// TestPostgreyAgainstPostfix runs the real postgrey as the policy server
// of postgate and of the real Postfix (one postgrey each, so each sees its
// first attempt): the first attempt gets 450 with postgrey's text, a retry
// after postgrey's delay is accepted, gets postgrey's X-Greylist header
// (its PREPEND action) and reaches the sink. The replies and the reject
// lines of the mail logs are compared with Postfix's.
func TestPostgreyAgainstPostfix(t *testing.T) {
	t.Parallel()
	pgSink, pfSink := harness.StartSink(t), harness.StartSink(t)
	pgGrey, pfGrey := startPostgrey(t), startPostgrey(t)
	pf := harness.StartPostfix(t, policyConfig(pfSink, fmt.Sprintf("inet:127.0.0.1:%d", pfGrey)))
	pg := harness.Start(t, policyConfig(pgSink, fmt.Sprintf("inet:127.0.0.1:%d", pgGrey)), "")

	const from, to = "sender@src.test", "user@example.test"
	code, text := sendPolicyMessage(t, pg.Addr, from, to)
	wantText := "4.2.0 <user@example.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.test.html"
	if code != 450 || text != wantText {
		t.Errorf("first attempt: %d %s, want 450 %s", code, text, wantText)
	}
	if pfCode, pfText := sendPolicyMessage(t, pf.Addr, from, to); pfCode != code || pfText != text {
		t.Errorf("first attempt: postgate %d %s, Postfix %d %s", code, text, pfCode, pfText)
	}
	// Too early: still greylisted.
	if code, _ := sendPolicyMessage(t, pg.Addr, from, to); code != 450 {
		t.Errorf("retry before the delay: %d, want 450", code)
	}
	// postgrey's delay is 15 s: long enough that the early retry comes
	// before it even when Postfix's first session is slow to start.
	time.Sleep(16 * time.Second)
	if code, text := sendPolicyMessage(t, pg.Addr, from, to); code != 250 {
		t.Fatalf("retry after the delay: %d %s, want 250", code, text)
	}
	sendPolicyMessage(t, pf.Addr, from, to)
	msgs := pgSink.WaitMessages(1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages reached the sink, want 1", len(msgs))
	}
	_, msg := harness.SinkBody(msgs[0])
	header := regexp.MustCompile(`(?m)^X-Greylist: delayed [0-9]+ seconds by postgrey-[0-9.]+ at grey\.test; .+$`)
	if !header.MatchString(msg) || !strings.Contains(msg, "Subject: greylisted") {
		t.Errorf("delivered message lacks postgrey's header:\n%s", msg)
	}
	if pfMsgs := pfSink.WaitMessages(1, 30*time.Second); len(pfMsgs) != 1 {
		t.Errorf("Postfix delivered %d messages", len(pfMsgs))
	}

	// The mail logs: the reject line of each early attempt, the queued
	// message and its delivery, as Postfix writes them.
	pgLog, pfLog := pg.Log("status=sent"), pf.Log()
	repl := strings.NewReplacer(fmt.Sprint(pgSink.Port), "SINK", fmt.Sprint(pfSink.Port), "SINK")
	rejects := []string{"NOQUEUE: reject: RCPT"}
	g, w := logLines(pgLog, rejects, repl), logLines(pfLog, rejects, repl)
	if len(g) != 2 || len(w) != 1 || g[0] != w[0] {
		t.Errorf("reject lines, postgate:\n%s\nPostfix:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	wantReject := "NOQUEUE: reject: RCPT from unknown[" + outside + "]: 450 " + wantText + "; from=<sender@src.test> to=<user@example.test> proto=ESMTP helo=<client.src.test>"
	if len(g) == 0 || g[0] != wantReject {
		t.Errorf("reject line %q, want %q", g, wantReject)
	}
	if !regexp.MustCompile(`: to=<user@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:[0-9]+, delay=[0-9.]+, .*status=sent`).MatchString(pgLog) {
		t.Errorf("no delivery line in postgate's log:\n%s", pgLog)
	}
}

// TestPolicyFailureAgainstPostfix: a policy server that never answers,
// and one that closes the connection on each request. After try_limit
// attempts (retry_delay apart; smtpd_policy_service_timeout each for the
// first) the recipient gets the default action's 451 4.3.5; the replies
// and the log lines, Postfix's warnings included, are compared with the
// real Postfix's against the same kind of server.
func TestPolicyFailureAgainstPostfix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer string
		took         time.Duration // about: two attempts and the delay between
	}{
		{"hangs", policydtest.Hang, 5 * time.Second},
		{"closes", policydtest.Close, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := harness.StartSink(t)
			pgPolicy, pfPolicy := policydtest.Start(t, "tcp", "", policydtest.Reply(tc.answer)), policydtest.Start(t, "tcp", "", policydtest.Reply(tc.answer))
			const timeouts = "smtpd_policy_service_timeout = 2s\n"
			pf := harness.StartPostfix(t, policyConfig(sink, pfPolicy.Spec())+timeouts)
			pg := harness.Start(t, policyConfig(sink, pgPolicy.Spec())+timeouts, "")

			start := time.Now()
			code, text := sendPolicyMessage(t, pg.Addr, "a@src.test", "user@example.test")
			took := time.Since(start)
			want := "4.3.5 <user@example.test>: Recipient address rejected: Server configuration problem"
			if code != 451 || text != want {
				t.Errorf("postgate: %d %s, want 451 %s", code, text, want)
			}
			if took < tc.took || took > tc.took+3*time.Second {
				t.Errorf("the reply took %v, want about %v", took, tc.took)
			}
			if pfCode, pfText := sendPolicyMessage(t, pf.Addr, "a@src.test", "user@example.test"); pfCode != code || pfText != text {
				t.Errorf("postgate %d %s, Postfix %d %s", code, text, pfCode, pfText)
			}
			words := []string{"warning:", "NOQUEUE: reject:"}
			repl := strings.NewReplacer(fmt.Sprint(pgPolicy.Port), "PORT", fmt.Sprint(pfPolicy.Port), "PORT")
			g := logLines(pg.Log("NOQUEUE: reject:"), words, repl)
			var w []string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if w = logLines(pf.Log(), words, repl); len(w) > 0 && strings.Contains(w[len(w)-1], "reject:") {
					break
				}
			}
			if strings.Join(g, "\n") != strings.Join(w, "\n") || len(g) < 2 {
				t.Errorf("log lines, postgate:\n%s\nPostfix:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
			if n, _, _ := pgPolicy.Counts(); n != 2 {
				t.Errorf("postgate made %d attempts, want try_limit 2", n)
			}
		})
	}
}

// TestPolicyRequestsAgainstPostfix plays one dialogue (EHLO, a message to
// two recipients, one to one recipient with SIZE=, VRFY, ETRN) against
// postgate and the real Postfix, each asking a recording policy server
// from every restriction list with smtpd_delay_reject = no, and compares
// every request attribute by attribute, in order. Ports differ by nature
// and are compared by form; the queue ID and instance by form and by
// which requests share them.
func TestPolicyRequestsAgainstPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	pgPolicy, pfPolicy := policydtest.Start(t, "tcp", "", policydtest.Action("DUNNO")), policydtest.Start(t, "tcp", "", policydtest.Action("DUNNO"))
	config := func(p *policydtest.Server) string {
		check := "check_policy_service " + p.Spec()
		return fmt.Sprintf(`relay_domains = example.test
transport_maps = inline:{ example.test=smtp:[127.0.0.1]:%d }
smtpd_delay_reject = no
smtpd_relay_restrictions = reject_unauth_destination
smtpd_client_restrictions = %[2]s
smtpd_helo_restrictions = %[2]s
smtpd_sender_restrictions = %[2]s
smtpd_recipient_restrictions = %[2]s
smtpd_data_restrictions = %[2]s
smtpd_end_of_data_restrictions = %[2]s
smtpd_etrn_restrictions = %[2]s
smtpd_policy_service_policy_context = test-context
`, sink.Port, check)
	}
	pf := harness.StartPostfix(t, config(pfPolicy))
	pg := harness.Start(t, config(pgPolicy), "")
	dialogue := func(addr string) {
		c := harness.Dial(t, addr, outside)
		c.Expect(250, "EHLO client.src.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(250, "RCPT TO:<one@example.test>")
		c.Expect(250, "RCPT TO:<two@example.test>")
		c.Expect(354, "DATA")
		c.Send("Subject: one\r\n\r\nbody\r\n..dot\r\n.\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: %d %s", addr, code, text)
		}
		c.Expect(250, "MAIL FROM:<> SIZE=1000")
		c.Expect(250, "RCPT TO:<three@example.test>")
		c.Expect(354, "DATA")
		c.Send("Subject: two\r\n\r\nlonger body\r\n.\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: %d %s", addr, code, text)
		}
		c.Cmd("VRFY four@example.test")
		c.Cmd("ETRN example.test")
		c.Expect(221, "QUIT")
	}
	dialogue(pg.Addr)
	dialogue(pf.Addr)
	got, want := pgPolicy.Requests(), pfPolicy.Requests()
	if len(want) < 10 {
		t.Fatalf("Postfix sent %d requests", len(want))
	}
	norm := func(reqs [][]string) []string {
		var out []string
		ids := map[string]string{}
		for _, req := range reqs {
			if !slices.Contains(req, "client_address="+outside) {
				continue // the harness's probe whether the server is up
			}
			var b []string
			for _, attr := range req {
				name, value, _ := strings.Cut(attr, "=")
				switch {
				case name == "client_port" || name == "server_port":
					if _, err := fmt.Sscan(value, new(uint16)); err == nil {
						value = "PORT"
					}
				case (name == "queue_id" || name == "instance") && value != "":
					if ids[value] == "" {
						ids[value] = fmt.Sprintf("%s#%d", name, len(ids)+1)
					}
					value = ids[value]
				}
				b = append(b, name+"="+value)
			}
			out = append(out, strings.Join(b, " "))
		}
		return out
	}
	g, w := norm(got), norm(want)
	for i := range max(len(g), len(w)) {
		var gi, wi string
		if i < len(g) {
			gi = g[i]
		}
		if i < len(w) {
			wi = w[i]
		}
		if gi != wi {
			t.Errorf("request %d:\npostgate: %s\nPostfix:  %s", i+1, gi, wi)
		}
	}
	// The instance has Postfix's form: pid, seconds and microseconds, and
	// the session's transaction count (0, then 1), in hex.
	for _, n := range []string{"0", "1"} {
		if !regexp.MustCompile(`instance=[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+\.` + n + ` `).MatchString(fmt.Sprint(got)) {
			t.Errorf("no instance ending .%s in %q", n, got)
		}
	}
}

// rcpts sends MAIL and n RCPTs (u1@example.test, ...) in one session and
// returns the RCPT replies' codes and texts.
func rcpts(t *testing.T, addr string, n int) []string {
	t.Helper()
	c := harness.Dial(t, addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	var out []string
	for i := range n {
		code, text := c.Cmd("RCPT TO:<u%d@example.test>", i+1)
		out = append(out, fmt.Sprintf("%d %s", code, text))
	}
	return out
}

// TestPolicyServiceParameters: the smtpd_policy_service_* parameters and
// the braced per-service form, through the built binary against policy
// servers in the test process that count connections and requests.
func TestPolicyServiceParameters(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)

	t.Run("request_limit and max_idle", func(t *testing.T) {
		t.Parallel()
		srv := policydtest.Start(t, "tcp", "", policydtest.Action("DUNNO"))
		p := harness.Start(t, policyConfig(sink, srv.Spec())+"smtpd_policy_service_request_limit = 2\nsmtpd_policy_service_max_idle = 1s\n", "")
		rcpts(t, p.Addr, 5)
		// Five requests on three connections; two closed at the limit.
		if n, conns, closed := srv.Counts(); n != 5 || conns != 3 || closed != 2 {
			t.Errorf("%d requests, %d connections, %d closed; want 5, 3, 2", n, conns, closed)
		}
		time.Sleep(1500 * time.Millisecond)
		if _, _, closed := srv.Counts(); closed != 3 {
			t.Errorf("after max_idle: %d connections closed, want 3", closed)
		}
	})
	t.Run("connection reuse and max_ttl", func(t *testing.T) {
		t.Parallel()
		srv := policydtest.Start(t, "tcp", "", policydtest.Action("DUNNO"))
		p := harness.Start(t, policyConfig(sink, srv.Spec())+"smtpd_policy_service_max_ttl = 2s\n", "")
		rcpts(t, p.Addr, 2)
		rcpts(t, p.Addr, 2) // another session reuses the connection
		if n, conns, _ := srv.Counts(); n != 4 || conns != 1 {
			t.Errorf("%d requests on %d connections, want 4 on 1", n, conns)
		}
		time.Sleep(2500 * time.Millisecond)
		rcpts(t, p.Addr, 1)
		if n, conns, _ := srv.Counts(); n != 5 || conns != 2 {
			t.Errorf("past max_ttl: %d requests on %d connections, want 5 on 2", n, conns)
		}
	})
	t.Run("try_limit, retry_delay and default_action", func(t *testing.T) {
		t.Parallel()
		srv := policydtest.Start(t, "tcp", "", policydtest.Reply(policydtest.Close))
		p := harness.Start(t, policyConfig(sink, srv.Spec())+`smtpd_policy_service_try_limit = 3
smtpd_policy_service_retry_delay = 2s
smtpd_policy_service_default_action = 450 4.7.1 Policy service down
`, "")
		start := time.Now()
		got := rcpts(t, p.Addr, 1)[0]
		took := time.Since(start)
		if want := "450 4.7.1 <u1@example.test>: Recipient address rejected: Policy service down"; got != want {
			t.Errorf("RCPT: %s, want %s", got, want)
		}
		if n, _, _ := srv.Counts(); n != 3 || took < 4*time.Second || took > 7*time.Second {
			t.Errorf("%d attempts in %v, want 3 in about 4 s", n, took)
		}
	})
	t.Run("braced overrides", func(t *testing.T) {
		t.Parallel()
		srv := policydtest.Start(t, "tcp", "", policydtest.Reply(policydtest.Hang))
		p := harness.Start(t, policyConfig(sink, "{ "+srv.Spec()+", timeout=1s, try_limit=1, default_action=DUNNO, policy_context=braced }")+
			"smtpd_policy_service_policy_context = global\n", "")
		start := time.Now()
		got := rcpts(t, p.Addr, 1)[0]
		if !strings.HasPrefix(got, "250 ") || time.Since(start) > 3*time.Second {
			t.Errorf("RCPT: %s after %v, want 250 after the 1 s timeout", got, time.Since(start))
		}
		if reqs := srv.Requests(); len(reqs) != 1 || !slices.Contains(reqs[0], "policy_context=braced") {
			t.Errorf("requests %q, want one with policy_context=braced", reqs)
		}
	})
	t.Run("unix socket in the queue directory", func(t *testing.T) {
		t.Parallel()
		p := harness.Start(t, policyConfig(sink, "unix:private/policy"), "")
		if err := os.MkdirAll(filepath.Join(p.Queue, "private"), 0o755); err != nil {
			t.Fatal(err)
		}
		policydtest.Start(t, "unix", filepath.Join(p.Queue, "private", "policy"), policydtest.Action("REJECT go away"))
		if got, want := rcpts(t, p.Addr, 1)[0], "554 5.7.1 <u1@example.test>: Recipient address rejected: go away"; got != want {
			t.Errorf("RCPT: %s, want %s", got, want)
		}
	})
}
