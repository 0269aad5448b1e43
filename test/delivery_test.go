package test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

// fastRetry makes deferred mail come back within seconds.
const fastRetry = "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n"

// routes sends each domain to a sink: transport_maps as an inline table.
func routes(pairs ...any) string {
	var items []string
	for i := 0; i < len(pairs); i += 2 {
		items = append(items, fmt.Sprintf("%s=smtp:[127.0.0.1]:%d", pairs[i], pairs[i+1].(*harness.Sink).Port))
	}
	return "transport_maps = inline:{ " + strings.Join(items, ", ") + " }\n"
}

func TestRelayToSink(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	// The test body has a 10 KiB line: like Postfix, postgate folds lines
	// over smtp_line_length_limit (998) unless the limit is 0.
	p := harness.Start(t, rejectUnauth+"smtp_line_length_limit = 0\n"+routes("relay.test", sink), "")
	body := testBody("relay-1@src.test")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", body)

	msgs := sink.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1\n%s", len(msgs), p.Log("status="))
	}
	env, got := harness.SinkBody(msgs[0])
	// Byte-identical after CRLF normalisation (smtp-sink dumps LF lines),
	// with postgate's Received: header in front.
	relayed := stripReceived(t, []byte(strings.ReplaceAll(got, "\n", "\r\n")))
	if string(relayed) != string(body) {
		t.Errorf("relayed message differs from the sent one (%d vs %d bytes)", len(relayed), len(body))
	}
	if !strings.Contains(env, "X-Mail-Args: <a@src.test>") || !strings.Contains(env, "X-Rcpt-Args: <u@relay.test>") {
		t.Errorf("sink envelope:\n%s", env)
	}
	log := p.Log(id + ": removed")
	want := fmt.Sprintf("%s: to=<u@relay.test>, relay=127.0.0.1[127.0.0.1]:%d, delay=", id, sink.Port)
	if !strings.Contains(log, want) || !strings.Contains(log, "dsn=2.0.0, status=sent (250 2.0.0 Ok)") {
		t.Errorf("maillog lacks the delivery line %q ... status=sent:\n%s", want, log)
	}
	if !strings.Contains(log, "postgate/smtp[") || !strings.Contains(log, "postgate/qmgr[") || !strings.Contains(log, id+": removed") {
		t.Errorf("maillog lacks smtp/qmgr lines:\n%s", log)
	}
}

// TestRelayReusesPostfixSession: postgate relays three messages to a real
// Postfix over one connection. The cached session's RSET probe goes in one
// flight with MAIL, RCPT and DATA, which Postfix takes even with
// smtpd_forbid_unauth_pipelining (RSET may open a group).
func TestRelayReusesPostfixSession(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	pf := harness.StartPostfix(t, "mynetworks = 127.0.0.0/8\nrelay_domains = relay.test\n"+
		"smtpd_forbid_unauth_pipelining = yes\n"+routes("relay.test", sink))
	p := harness.Start(t, rejectUnauth+fmt.Sprintf("transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\n"+
		"smtp_connection_cache_time_limit = 30s\n", pf.Port), "")
	var ids []string
	for i := range 3 {
		id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", testBody(fmt.Sprintf("reuse-%d@src.test", i)))
		p.Log(id + ": removed") // delivered before the next, so the session is cached
		ids = append(ids, id)
	}
	if msgs := sink.WaitMessages(3, 20*time.Second); len(msgs) != 3 {
		t.Fatalf("sink got %d messages, want 3\n%s\n%s", len(msgs), p.Log("status="), pf.Log())
	}
	log := p.Log("")
	for i, id := range ids {
		use := ""
		if i > 0 {
			use = fmt.Sprintf("conn_use=%d, ", i+1)
		}
		want := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("%s: to=<u@relay.test>, relay=127.0.0.1[127.0.0.1]:%d, ", id, pf.Port)) + `[^\n]*` +
			regexp.QuoteMeta(use+"delay=") + `[^\n]*status=sent`)
		if !want.MatchString(log) {
			t.Errorf("message %d: no line matching %s:\n%s", i+1, want, log)
		}
	}
	pflog := pf.Log()
	// The harness's readiness probe is the other connection.
	if n := strings.Count(pflog, "]: connect from") - strings.Count(pflog, "lost connection after CONNECT"); n != 1 {
		t.Errorf("Postfix saw %d connections, want 1:\n%s", n, pflog)
	}
	if strings.Contains(pflog, "pipelining") {
		t.Errorf("Postfix complained of pipelining:\n%s", pflog)
	}
}

func TestMXDelivery(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	dns := dnstest.Start(t, `$ORIGIN test.
foreign      3600 IN MX 10 mx1.foreign
mx1.foreign  3600 IN A 127.0.0.1
`)
	p := harness.Start(t, rejectUnauth+fmt.Sprintf("postgate_dns_servers = %s\nsmtp_tcp_port = %d\n", dns.Addr(), sink.Port), "")
	c := harness.Dial(t, p.Addr, "127.0.0.1") // mynetworks may relay
	c.Expect(250, "EHLO inside.test")
	c.Expect(250, "MAIL FROM:<a@inside.test>")
	c.Expect(250, "RCPT TO:<user@foreign.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: by MX\r\nMessage-ID: <mx-1@inside.test>\r\n\r\nhello\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	msgs := sink.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Message-ID: <mx-1@inside.test>") {
		t.Fatalf("sink found by MX got %d messages: %q", len(msgs), msgs)
	}
	if log := p.Log("status=sent"); !strings.Contains(log, fmt.Sprintf("relay=mx1.foreign.test[127.0.0.1]:%d", sink.Port)) {
		t.Errorf("maillog lacks relay=mx1.foreign.test[127.0.0.1]:%d:\n%s", sink.Port, log)
	}
}

func TestDeferredThenSent(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, "-r", "RCPT")
	p := harness.Start(t, rejectUnauth+fastRetry+routes("relay.test", sink), "")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: retry\r\nMessage-ID: <retry-1@src.test>\r\n\r\nx\r\n"))
	if log := p.Log("status=deferred"); !strings.Contains(log, id+": to=<u@relay.test>") || !strings.Contains(log, "dsn=4.3.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 450 4.3.0 Error: command failed (in reply to RCPT TO command))") {
		t.Fatalf("maillog lacks the deferral:\n%s", log)
	}
	sink.Restart()
	msgs := sink.WaitMessages(1, 20*time.Second)
	time.Sleep(3 * time.Second) // a second copy would come within the backoff
	if msgs = sink.Messages(); len(msgs) != 1 {
		t.Fatalf("sink got %d copies, want exactly 1", len(msgs))
	}
	if log := p.Log(id + ": removed"); !strings.Contains(log, "status=sent") {
		t.Errorf("maillog lacks status=sent after the deferral:\n%s", log)
	}
}

// dsnParts parses a delivery status notification.
func dsnParts(t *testing.T, raw string) (hdr mail.Header, parts []string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %q", m.Header.Get("Content-Type"))
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p.Header.Get("Content-Type")+"\n"+string(b))
	}
	return m.Header, parts
}

func TestBounceDSN(t *testing.T) {
	t.Parallel()
	bad := harness.StartSink(t, "-f", "RCPT", "-B", "550 5.1.1 Error: user unknown")
	senders := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", bad, "src.test", senders), "")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: doomed\r\nMessage-ID: <doomed-1@src.test>\r\n\r\nx\r\n"))

	msgs := senders.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sender's domain got %d messages, want the DSN", len(msgs))
	}
	env, raw := harness.SinkBody(msgs[0])
	if !strings.Contains(env, "X-Mail-Args: <>") || !strings.Contains(env, "X-Rcpt-Args: <a@src.test>") {
		t.Errorf("DSN envelope:\n%s", env)
	}
	hdr, parts := dsnParts(t, raw)
	if len(parts) != 3 || !strings.HasPrefix(parts[1], "message/delivery-status") {
		t.Fatalf("DSN parts: %q", parts)
	}
	for _, want := range []string{"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 Error: user unknown", "Final-Recipient: rfc822; u@relay.test",
		// Postfix's notices always have one (bounce_notify_util.c): the
		// recipient's original address when the client gave no ORCPT.
		"Original-Recipient: rfc822; u@relay.test"} {
		if !strings.Contains(parts[1], want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, parts[1])
		}
	}
	if !strings.Contains(parts[2], "Message-ID: <doomed-1@src.test>") {
		t.Errorf("DSN does not return the message:\n%s", parts[2])
	}
	if hdr.Get("Subject") != "Undelivered Mail Returned to Sender" {
		t.Errorf("DSN Subject %q", hdr.Get("Subject"))
	}
	log := p.Log("sender non-delivery notification")
	if !strings.Contains(log, id+": to=<u@relay.test>") || !strings.Contains(log, "status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 Error: user unknown (in reply to RCPT TO command))") {
		t.Errorf("maillog lacks the bounce:\n%s", log)
	}
	if !strings.Contains(log, id+": sender non-delivery notification: ") {
		t.Errorf("maillog lacks the notification line:\n%s", log)
	}
}

func TestNotifyNeverNoDSN(t *testing.T) {
	t.Parallel()
	bad := harness.StartSink(t, "-f", "RCPT")
	senders := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", bad, "src.test", senders), "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test> NOTIFY=NEVER")
	c.Expect(354, "DATA")
	c.Send("Subject: never\r\n\r\nx\r\n.\r\n")
	code, text := c.Reply()
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	id := queuedRe.FindStringSubmatch(text)[1]
	p.Log(id + ": removed")
	time.Sleep(time.Second)
	if msgs := senders.Messages(); len(msgs) != 0 {
		t.Errorf("NOTIFY=NEVER produced %d notices", len(msgs))
	}
}

// TestDoubleBounce: a DSN that fails with 5xx gives exactly one notice to
// 2bounce_notice_recipient, from double-bounce@; when that notice fails too
// it is discarded and logged, and the queue empties.
func TestDoubleBounce(t *testing.T) {
	t.Parallel()
	for _, noticeFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("notice fails=%v", noticeFails), func(t *testing.T) {
			t.Parallel()
			bad := harness.StartSink(t, "-f", "RCPT")
			admin := harness.StartSink(t)
			copies := harness.StartSink(t) // bounce_notice_recipient: the postmaster copy of the first bounce
			if noticeFails {
				admin.Restart("-f", "RCPT")
			}
			main := rejectUnauth + "relay_domains = relay.test, admin.test, copies.test\n" +
				routes("relay.test", bad, "src.test", bad, "admin.test", admin, "copies.test", copies) +
				"notify_classes = bounce, 2bounce\n2bounce_notice_recipient = postmaster@admin.test\nbounce_notice_recipient = postmaster@copies.test\n"
			p := harness.Start(t, main, "")
			sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: double\r\n\r\nx\r\n"))
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && len(queueJSON(t, p)) > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			if n := len(queueJSON(t, p)); n != 0 {
				t.Fatalf("queue holds %d messages, want it empty", n)
			}
			log := p.Log("postmaster non-delivery notification")
			if noticeFails {
				if log = p.Log("discarded"); !strings.Contains(log, "undeliverable postmaster notification discarded") {
					t.Errorf("maillog lacks the discard line:\n%s", log)
				}
				return
			}
			time.Sleep(time.Second) // a second notice would come now
			msgs := admin.Messages()
			if len(msgs) != 1 {
				t.Fatalf("2bounce_notice_recipient got %d notices, want exactly 1", len(msgs))
			}
			if env, _ := harness.SinkBody(msgs[0]); !strings.Contains(env, "X-Mail-Args: <double-bounce@mx.gateway.test>") {
				t.Errorf("the notice is not from double-bounce@:\n%s", env)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	bad := harness.StartSink(t, "-r", "RCPT")
	senders := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+fastRetry+"maximal_queue_lifetime = 3s\n"+routes("relay.test", bad, "src.test", senders), "")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: expires\r\n\r\nx\r\n"))
	log := p.Log(id + ": removed")
	if !strings.Contains(log, id+": from=<a@src.test>, status=expired, returned to sender") {
		t.Errorf("maillog lacks the expiry:\n%s", log)
	}
	if msgs := senders.WaitMessages(1, 20*time.Second); len(msgs) != 1 {
		t.Errorf("sender got %d DSNs for the expired message", len(msgs))
	}
}

// TestConcurrencyLimit: with default_destination_concurrency_limit = 2 a
// slow sink never sees more than 2 sessions from postgate at once.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, "-w", "1") // one second before each DATA reply
	p := harness.Start(t, rejectUnauth+"default_destination_concurrency_limit = 2\n"+routes("relay.test", sink), "")
	const n = 8
	for i := 0; i < n; i++ {
		sendGoSMTP(t, p.Addr, "a@src.test", fmt.Sprintf("u%d@relay.test", i), []byte("Subject: c\r\n\r\nx\r\n"))
	}
	max := 0
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) && len(sink.Messages()) < n {
		if e := harness.Established(sink.Port); e > max {
			max = e
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(sink.Messages()); got != n {
		t.Fatalf("sink got %d messages, want %d", got, n)
	}
	if max > 2 {
		t.Errorf("sink saw %d simultaneous sessions, limit 2", max)
	}
	if max == 0 {
		t.Errorf("never saw a session: the probe does not work")
	}
}

// TestKill9WhileSinkDown: messages acknowledged while the next hop is
// down survive a kill -9 and all arrive once both are back.
func TestKill9WhileSinkDown(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	sink.Stop()
	p := harness.Start(t, rejectUnauth+fastRetry+routes("relay.test", sink), "")
	const n = 10
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := trySend(p.Addr, "a@src.test", "u@relay.test", []byte(fmt.Sprintf("Subject: k9\r\nMessage-ID: <k9-%d@src.test>\r\n\r\nx\r\n", i))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	p.Kill()
	sink.Start()
	p.Restart()
	deadline := time.Now().Add(40 * time.Second)
	seen := map[string]bool{}
	for time.Now().Before(deadline) && len(seen) < n {
		for _, m := range sink.Messages() {
			for i := 0; i < n; i++ {
				if strings.Contains(m, fmt.Sprintf("Message-ID: <k9-%d@src.test>", i)) {
					seen[fmt.Sprint(i)] = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) != n {
		t.Errorf("%d of %d Message-IDs arrived after kill -9", len(seen), n)
	}
}

// TestPflogsumm: pflogsumm reads postgate's maillog_file and reports the
// numbers of a run: 3 received and delivered, 1 bounced, 2 rejected.
func TestPflogsumm(t *testing.T) {
	t.Parallel()
	pflogsumm := harness.Need(t, "pflogsumm", "pflogsumm")
	good := harness.StartSink(t)
	bad := harness.StartSink(t, "-f", "RCPT")
	p := harness.Start(t, rejectUnauth+"relay_domains = relay.test, bounce.test\n"+routes("relay.test", good, "bounce.test", bad, "src.test", good), "")
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: s\r\n\r\nx\r\n")))
	}
	ids = append(ids, sendGoSMTP(t, p.Addr, "a@src.test", "u@bounce.test", []byte("Subject: b\r\n\r\nx\r\n")))
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(554, "RCPT TO:<x@foreign.test>")
	c.Expect(554, "RCPT TO:<y@foreign.test>")
	c.Expect(221, "QUIT")
	for _, id := range ids {
		p.Log(id + ": removed")
	}
	good.WaitMessages(4, 20*time.Second) // 3 messages and the DSN
	p.Stop()
	out, err := execOutput(pflogsumm, "--syslog-name=postgate", p.Maillog)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"received": 4, "delivered": 4, "deferred": 0, "bounced": 1, "rejected": 2}
	for what, n := range want {
		if got := pflogsummCount(out, what); got != n {
			t.Errorf("pflogsumm %s = %d, want %d\n%s", what, got, n, out)
		}
	}
}

func pflogsummCount(report, what string) int {
	for _, line := range strings.Split(report, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == what {
			var n int
			fmt.Sscan(f[0], &n)
			return n
		}
	}
	return -1
}

func execOutput(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout = &out
	err := cmd.Run()
	return out.String(), err
}

// segments counts the queue log's segment files.
func segments(t *testing.T, p *harness.Postgate) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(p.Queue, "log", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// TestCompactionKeepsDeferred: a long-deferred message (its next hop
// answers 4xx) survives while the segments around it are deleted after
// their messages are delivered, and is delivered once its next hop accepts.
func TestCompactionKeepsDeferred(t *testing.T) {
	t.Parallel()
	slow := harness.StartSink(t, "-r", "RCPT")
	fast := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+"postgate_queue_segment_size = 65536\nminimal_backoff_time = 5s\nmaximal_backoff_time = 5s\n"+
		"relay_domains = relay.test, slow.test\n"+routes("slow.test", slow, "relay.test", fast), "")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@slow.test", []byte("Subject: long deferred\r\nMessage-ID: <long-1@src.test>\r\n\r\nx\r\n"))
	p.Log(id + ": to=<u@slow.test>")
	filler := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"), 120) // ~8 KiB
	const n = 60
	peak := 0
	for i := 0; i < n; i++ {
		sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", append([]byte(fmt.Sprintf("Subject: filler %d\r\n\r\n", i)), filler...))
		peak = max(peak, segments(t, p))
	}
	fast.WaitMessages(n, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && segments(t, p) >= peak {
		time.Sleep(100 * time.Millisecond)
	}
	if got := segments(t, p); peak < 4 || got >= peak {
		t.Fatalf("segments: peak %d, now %d: compaction deleted none", peak, got)
	}
	// The segment that held the deferred message's record is gone.
	if _, err := os.Stat(filepath.Join(p.Queue, "log", "000000000001.seg")); !os.IsNotExist(err) {
		t.Errorf("the first segment is still there: %v", err)
	}
	if msgs := queueJSON(t, p); len(msgs) != 1 || msgs[id].QueueID != id {
		t.Fatalf("queue after compaction: %v, want only %s", msgs, id)
	}
	slow.Restart()
	msgs := slow.WaitMessages(1, 30*time.Second)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Message-ID: <long-1@src.test>") {
		t.Fatalf("the long-deferred message did not arrive: %q", msgs)
	}
}

// TestETRNFlushesDomain: ETRN for a domain in fast_flush_domains (the
// default, $relay_domains) makes its deferred mail go out now, not after
// minimal_backoff_time (300 s by default); a domain outside it gets 459.
func TestETRNFlushesDomain(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, "-r", "RCPT")
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink), "")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: etrn\r\n\r\nx\r\n"))
	if log := p.Log("status=deferred"); !strings.Contains(log, id+": to=<u@relay.test>") {
		t.Fatalf("maillog lacks the deferral:\n%s", log)
	}
	sink.Restart()
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	if code, text := c.Cmd("ETRN other.test"); code != 459 || text != "<other.test>: service unavailable" {
		t.Errorf("ETRN other.test: %d %s", code, text)
	}
	time.Sleep(2 * time.Second)
	if msgs := sink.Messages(); len(msgs) != 0 {
		t.Fatalf("delivered before ETRN relay.test: %d messages", len(msgs))
	}
	if code, text := c.Cmd("ETRN relay.test"); code != 250 || text != "Queuing started" {
		t.Fatalf("ETRN relay.test: %d %s", code, text)
	}
	if msgs := sink.WaitMessages(1, 20*time.Second); len(msgs) != 1 {
		t.Fatalf("sink got %d messages after ETRN, want 1\n%s", len(msgs), p.Log("status="))
	}
}
