package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestQueueShape: `postgate queue shape` prints what Postfix's own qshape
// prints for a real Postfix holding the same deferred mail of the same
// ages, with each of its switches. Both relay to a server that is down;
// two messages arrive, then one more some seconds later, so with 6-second
// buckets (-t 0.1) the two batches land in different columns. Domains of
// equal count differ in length, so qshape's order (by count, then length,
// then Perl's hash order) is the same in every run; one is too long for
// its column and is cut as qshape cuts it.
func TestQueueShape(t *testing.T) {
	t.Parallel()
	qshape := harness.Need(t, "qshape", "postfix")
	sink := harness.StartSink(t)
	sink.Stop() // the internal server is down
	relay := fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port)
	pf := harness.StartPostfix(t, relay+"mynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject\n")
	pg := harness.Start(t, relay+"mynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject\nminimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h\n", "")

	send := func(addr, from string, to ...string) {
		t.Helper()
		c := harness.Dial(t, addr, "127.0.0.1")
		defer c.Expect(221, "QUIT")
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<%s>", from)
		for _, rcpt := range to {
			c.Expect(250, "RCPT TO:<%s>", rcpt)
		}
		c.Expect(354, "DATA")
		c.Send("Subject: shape\r\n\r\nx\r\n.\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: DATA: %d %s", addr, code, text)
		}
	}
	batch := func(msgs ...[]string) {
		for _, addr := range []string{pf.Addr, pg.Addr} {
			for _, m := range msgs {
				send(addr, m[0], m[1:]...)
			}
		}
	}
	// deferred waits (bounded) until n messages are deferred in both.
	deferred := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			files := 0
			filepath.WalkDir(filepath.Join(pf.Dir, "queue", "deferred"), func(_ string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					files++
				}
				return nil
			})
			msgs := 0
			for _, m := range queueJSON(t, pg) {
				if m.QueueName == "deferred" {
					msgs++
				}
			}
			if files == n && msgs == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("deferred messages: Postfix %d, postgate %d, want %d", files, msgs, n)
			}
		}
	}
	start := time.Now()
	batch([]string{"a@one.test", "x@a.test", "Y@A.test", "z@x.bb.test"}, []string{"b@two.example", "w@mail.bb.test"})
	deferred(2)
	time.Sleep(time.Until(start.Add(8 * time.Second)))
	batch([]string{"", "v@a.test", "q@ccc.example", "l@a-domain-name-longer-than-its-column-of-the-shape.example"})
	deferred(3)

	for _, args := range [][]string{{"-t", "0.1"}, {"-s", "-t", "0.1"}, {"-l", "-b", "4", "-t", "0.1"}, {"-p", "-m", "2", "-t", "0.1"}, {"-p", "-m", "3", "-w", "100", "-t", "0.1"}} {
		want, err := exec.Command(qshape, append(args, filepath.Join(pf.Dir, "queue", "deferred"))...).Output()
		if err != nil {
			t.Fatalf("qshape %v: %v", args, err)
		}
		got, err := pg.Run(append([]string{"queue", "shape"}, append(args, "deferred")...)...)
		if err != nil {
			t.Fatalf("queue shape %v: %v", args, err)
		}
		if got != string(want) {
			t.Errorf("queue shape %s:\n%s\nqshape:\n%s", strings.Join(args, " "), got, want)
		}
	}
	// The active queue is empty: the heading and an all-zero TOTAL.
	if got, err := pg.Run("queue", "shape"); err != nil || !strings.Contains(got, "TOTAL  0") {
		t.Errorf("queue shape of the empty active queue: %q (%v)", got, err)
	}
}
