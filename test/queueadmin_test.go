package test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestQueueAdmin: the admin's queue commands while the gateway delivers,
// and while it is stopped. With the internal server down, deferred mail
// waits; hold keeps one message from the sink after the server is back
// and a flush, delete (IDs on standard input) removes one, release
// delivers the held one. With the gateway stopped, hold works on the queue
// directly, and after the restart requeue releases and delivers it.
func TestQueueAdmin(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	sink.Stop() // the internal server is down
	p := harness.Start(t, rejectUnauth+fastRetry+routes("relay.test", sink)+"minimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h\n", "")

	send := func(subject string) string {
		t.Helper()
		c := harness.Dial(t, p.Addr, outside)
		defer c.Expect(221, "QUIT")
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(250, "RCPT TO:<u@relay.test>")
		c.Expect(354, "DATA")
		c.Send("Subject: " + subject + "\r\n\r\nx\r\n.\r\n")
		code, text := c.Reply()
		if code != 250 {
			t.Fatalf("%s: %d %s", subject, code, text)
		}
		return queuedRe.FindStringSubmatch(text)[1]
	}
	admin := func(stdin string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(harness.Binary(t), append([]string{"queue", "-c", p.Dir}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	expect := func(want string, stdin string, args ...string) {
		t.Helper()
		if out, err := admin(stdin, args...); err != nil || out != want {
			t.Errorf("queue %s: %q (%v), want %q", strings.Join(args, " "), out, err, want)
		}
	}
	waitDeferred := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			p.Log(id + ": to=<u@relay.test>")
		}
	}
	held, gone, plain := send("held"), send("deleted"), send("plain")
	waitDeferred(held, gone, plain)

	expect("postgate: Placed on hold: 1 message", "", "hold", held)
	expect("postgate: Placed on hold: 0 messages", "", "hold", held) // already held: skipped, as postsuper
	expect("postgate: Deleted: 1 message", gone+"\n", "delete", "-")
	if out, err := admin("", "release", "NOSUCHID01"); err == nil || !strings.Contains(out, "NOSUCHID01") {
		t.Errorf("release of an unknown ID: %q (%v), want an error naming it", out, err)
	}
	q := queueJSON(t, p)
	if q[held].QueueName != "hold" || q[plain].QueueName != "deferred" {
		t.Errorf("queue after hold: %s is %q, %s is %q", held, q[held].QueueName, plain, q[plain].QueueName)
	}
	if _, ok := q[gone]; ok {
		t.Errorf("%s still queued after delete", gone)
	}

	sink.Start()
	expect("", "", "flush")
	// subjects waits (bounded) for the sink to hold want's messages, whole
	// (smtp-sink writes a dump as it receives it), and returns what it has.
	subjects := func(want string) string {
		var got string
		for deadline := time.Now().Add(20 * time.Second); got != want && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var out []string
			for _, m := range sink.Messages() {
				_, msg := harness.SinkBody(m)
				if s := subjectRe.FindStringSubmatch(msg); s != nil {
					out = append(out, s[1])
				}
			}
			got = strings.Join(out, " ")
		}
		return got
	}
	if got := subjects("plain"); got != "plain" {
		t.Errorf("at the sink after flush: %q, want only plain", got)
	}
	time.Sleep(time.Second) // the held message had its chance to leak out
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("%d messages at the sink before the release, want 1", n)
	}
	expect("postgate: Released from hold: 1 message", "", "release", held)
	if got := subjects("plain held"); got != "plain held" {
		t.Errorf("at the sink after release: %q, want plain held", got)
	}

	// The gateway stopped: the command opens the queue itself.
	sink.Stop()
	later := send("later")
	waitDeferred(later)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	expect("postgate: Placed on hold: 1 message", "", "hold", "ALL")
	p.Restart()
	sink.Start()
	expect("", "", "flush", "relay.test")
	time.Sleep(time.Second)
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("%d messages at the sink, want 2: one held while the gateway was stopped was delivered", n)
	}
	if got := subjects("plain held"); got != "plain held" {
		t.Errorf("a message held while the gateway was stopped was delivered: %q", got)
	}
	expect("postgate: Requeued: 1 message", "", "requeue", "ALL")
	if got := subjects("plain held later"); got != "plain held later" {
		t.Errorf("at the sink after requeue: %q, want plain held later", got)
	}
	if log := p.Log("postsuper"); !strings.Contains(log, "Requeued: 1 message") {
		t.Errorf("no postsuper line in the mail log:\n%s", log)
	}
}
