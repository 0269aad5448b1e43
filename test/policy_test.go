package test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/test/harness"
)

// startPostgrey runs the real postgrey on a loopback port with a 5 s delay
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
	cmd := exec.Command(bin, fmt.Sprintf("--inet=127.0.0.1:%d", port), "--dbdir="+dir, "--delay=5",
		"--user=postgrey", "--group=postgrey", "--hostname=grey.test")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			return port
		}
		select {
		case <-done:
			t.Fatalf("postgrey ended: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgrey does not listen on %d: %s", port, out.String())
		}
	}
}

// hangingPolicyServer accepts connections and reads requests but never
// answers; it returns its port.
func hangingPolicyServer(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).WriteTo(discard{})
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

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
	time.Sleep(6 * time.Second)
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

// TestPolicyTimeoutAgainstPostfix: a policy server that never answers.
// After smtpd_policy_service_timeout on each of try_limit attempts
// (retry_delay apart) the recipient gets the default action's 451 4.3.5,
// and the log has Postfix's warnings; both are compared with the real
// Postfix's against the same kind of server.
func TestPolicyTimeoutAgainstPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	pgHang, pfHang := hangingPolicyServer(t), hangingPolicyServer(t)
	const timeouts = "smtpd_policy_service_timeout = 2s\n"
	pf := harness.StartPostfix(t, policyConfig(sink, fmt.Sprintf("inet:127.0.0.1:%d", pfHang))+timeouts)
	pg := harness.Start(t, policyConfig(sink, fmt.Sprintf("inet:127.0.0.1:%d", pgHang))+timeouts, "")

	start := time.Now()
	code, text := sendPolicyMessage(t, pg.Addr, "a@src.test", "user@example.test")
	took := time.Since(start)
	want := "4.3.5 <user@example.test>: Recipient address rejected: Server configuration problem"
	if code != 451 || text != want {
		t.Errorf("postgate: %d %s, want 451 %s", code, text, want)
	}
	// Two attempts of 2 s, 1 s apart.
	if took < 5*time.Second || took > 8*time.Second {
		t.Errorf("the reply took %v, want about 5 s", took)
	}
	if pfCode, pfText := sendPolicyMessage(t, pf.Addr, "a@src.test", "user@example.test"); pfCode != code || pfText != text {
		t.Errorf("postgate %d %s, Postfix %d %s", code, text, pfCode, pfText)
	}
	words := []string{"warning:", "NOQUEUE: reject:"}
	repl := strings.NewReplacer(fmt.Sprint(pgHang), "PORT", fmt.Sprint(pfHang), "PORT")
	g := logLines(pg.Log("NOQUEUE: reject:"), words, repl)
	var w []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if w = logLines(pf.Log(), words, repl); len(w) > 0 && strings.Contains(w[len(w)-1], "reject:") {
			break
		}
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") || len(g) != 3 {
		t.Errorf("log lines, postgate:\n%s\nPostfix:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// recordingPolicyServer answers every request with DUNNO and keeps the
// requests, each as its "name=value" lines.
type recordingPolicyServer struct {
	port int
	mu   sync.Mutex
	reqs [][]string
}

func startRecordingPolicyServer(t *testing.T) *recordingPolicyServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &recordingPolicyServer{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				var req []string
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line != "\n" {
						req = append(req, strings.TrimSuffix(line, "\n"))
						continue
					}
					s.mu.Lock()
					s.reqs = append(s.reqs, req)
					s.mu.Unlock()
					req = nil
					c.Write([]byte("action=DUNNO\n\n"))
				}
			}()
		}
	}()
	return s
}

func (s *recordingPolicyServer) requests() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.reqs...)
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
	pgPolicy, pfPolicy := startRecordingPolicyServer(t), startRecordingPolicyServer(t)
	config := func(port int) string {
		check := fmt.Sprintf("check_policy_service inet:127.0.0.1:%d", port)
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
	pf := harness.StartPostfix(t, config(pfPolicy.port))
	pg := harness.Start(t, config(pgPolicy.port), "")
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
	got, want := pgPolicy.requests(), pfPolicy.requests()
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
