package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestSendmail: `postgate sendmail` as cron jobs and scripts use it. With
// the gateway stopped, `sendmail -t` leaves the message in the maildrop
// and it is delivered once the gateway starts: to the To:, Cc: and Bcc:
// addresses, without the Bcc: header, with Postfix pickup's Received:
// header and the Message-Id:, Date: and From: cleanup adds. With the
// gateway running, a message is picked up at once (the command nudges
// the daemon); -f, -F and -i work; -bs speaks SMTP on standard input; a
// link named sendmail is the same command and one named mailq lists the
// queue; a message header_checks refuses is set aside, not lost.
func TestSendmail(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink)+
		"header_checks = regexp:{ {/^Subject: refuse me/ REJECT not this one} }\n", "")
	bin := harness.Binary(t)
	sendmail := func(stdin string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"sendmail", "-c", p.Dir}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// delivered waits for the sink's message with subject and returns its
	// envelope and content.
	delivered := func(subject string, within time.Duration) (string, string) {
		t.Helper()
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for _, m := range sink.Messages() {
				if env, msg := harness.SinkBody(m); strings.Contains(msg, "Subject: "+subject) {
					return env, msg
				}
			}
		}
		t.Fatalf("no message %q at the sink after %v\n%s", subject, within, p.Log(""))
		return "", ""
	}

	// Gateway stopped: the message waits in the maildrop.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	out, err := sendmail("To: One <u@relay.test>, v@relay.test\nCc: w@relay.test\nBcc: hidden@relay.test\nSubject: offline\n\nfirst line\n.\nnot part of it\n", "-t")
	if err != nil {
		t.Fatalf("sendmail -t with the gateway stopped: %v: %s", err, out)
	}
	if files, _ := filepath.Glob(filepath.Join(p.Queue, "postdrop", "[0-9a-f]*")); len(files) != 1 {
		t.Fatalf("maildrop holds %d files, want 1", len(files))
	}
	p.Restart()
	env, msg := delivered("offline", 30*time.Second)
	for _, rcpt := range []string{"u@relay.test", "v@relay.test", "w@relay.test", "hidden@relay.test"} {
		if !strings.Contains(env, rcpt) {
			t.Errorf("envelope lacks %s:\n%s", rcpt, env)
		}
	}
	for _, want := range []string{"Received: by mx.gateway.test (postgate, from userid ", "Message-Id: <", "Date: ", "From: root@mx.gateway.test", "first line"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	for _, unwanted := range []string{"Bcc:", "hidden@", "not part of it"} {
		if strings.Contains(msg, unwanted) {
			t.Errorf("message has %q:\n%s", unwanted, msg)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(p.Queue, "postdrop", "[0-9a-f]*")); len(files) != 0 {
		t.Errorf("maildrop still holds %v after pickup", files)
	}
	p.Log("postgate/pickup[")

	// Gateway running: picked up at once (well before the 60 s scan).
	if out, err := sendmail("Subject: running\n\nline\n.\nstill in the message\n", "-i", "-f", "jane@src.test", "-F", "Jane Q. Doe", "x@relay.test"); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	env, msg = delivered("running", 20*time.Second)
	if !strings.Contains(env, "jane@src.test") || !strings.Contains(env, "x@relay.test") {
		t.Errorf("envelope:\n%s", env)
	}
	for _, want := range []string{`From: "Jane Q. Doe" <jane@src.test>`, "\n.\nstill in the message"} {
		if !strings.Contains(strings.ReplaceAll(msg, "\r", ""), want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}

	// -bs: SMTP on standard input.
	out, err = sendmail("EHLO me\r\nMAIL FROM:<bs@src.test>\r\nRCPT TO:<y@relay.test>\r\nDATA\r\nSubject: over bs\r\n\r\n..dot\r\n.\r\nQUIT\r\n", "-bs")
	if err != nil || !strings.Contains(out, "250 2.0.0 Ok: queued") || !strings.Contains(out, "221 2.0.0 Bye") {
		t.Errorf("sendmail -bs: %v:\n%s", err, out)
	}
	if _, msg := delivered("over bs", 20*time.Second); !strings.Contains(strings.ReplaceAll(msg, "\r", ""), "\n.dot\n") {
		t.Errorf("-bs message not dot-unstuffed:\n%s", msg)
	}

	// The binary through links named sendmail and mailq.
	links := t.TempDir()
	for _, name := range []string{"sendmail", "mailq"} {
		if err := os.Symlink(bin, filepath.Join(links, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(links, "sendmail"), "-c", p.Dir, "z@relay.test")
	cmd.Stdin = strings.NewReader("Subject: through a link\n\nx\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail link: %v: %s", err, out)
	}
	delivered("through a link", 20*time.Second)
	if out, err := exec.Command(filepath.Join(links, "mailq"), "-c", p.Dir).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("Mail queue is empty")) {
		t.Errorf("mailq link: %v: %s", err, out)
	}

	// Refused by header_checks: set aside in maildrop/rejected, logged.
	if out, err := sendmail("Subject: refuse me\n\nx\n", "r@relay.test"); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	p.Log("message rejected: 550 5.7.1 not this one")
	if files, _ := filepath.Glob(filepath.Join(p.Queue, "postdrop", "rejected", "*")); len(files) != 1 {
		t.Errorf("maildrop/rejected holds %d files, want 1", len(files))
	}

	// An unqualified recipient is qualified with $myorigin; the address as
	// submitted is its original one, as Postfix's log shows it.
	if out, err := sendmail("Subject: unqualified\n\nx\n", "nobody"); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	if want := "to=<nobody@mx.gateway.test>, orig_to=<nobody>,"; !strings.Contains(p.Log(want), want) {
		t.Errorf("log lacks %q", want)
	}

	// No recipient: a usage error, nothing dropped.
	if out, err := sendmail("Subject: none\n\nx\n", "-t"); err == nil || !strings.Contains(out, "No recipient addresses found in message header") {
		t.Errorf("sendmail -t without recipients: %v: %s", err, out)
	}
}

// TestSendmailMilter: non_smtpd_milters for mail from sendmail, as Postfix
// runs them for local submission: a real opendkim signs a cron job's
// message, and the signature is on what reaches the sink.
func TestSendmailMilter(t *testing.T) {
	t.Parallel()
	addr, _ := startOpenDKIM(t)
	sink := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink)+"non_smtpd_milters = inet:"+addr+"\n", "")
	cmd := exec.Command(harness.Binary(t), "sendmail", "-c", p.Dir, "-f", "cron@src.test", "u@relay.test")
	cmd.Stdin = strings.NewReader("From: Cron Daemon <cron@src.test>\nTo: u@relay.test\nSubject: nightly report\n\nall good\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	msgs := sink.WaitMessages(1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages\n%s", len(msgs), p.Log(""))
	}
	if _, msg := harness.SinkBody(msgs[0]); !strings.Contains(msg, "DKIM-Signature: v=1;") || !strings.Contains(msg, "d=src.test") {
		t.Errorf("local mail not signed by the non_smtpd_milters opendkim:\n%s", msg)
	}
}
