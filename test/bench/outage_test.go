package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"postgate/test/harness"
)

var outageMessages = flag.Int("outage.messages", 100000, "messages queued while the internal server is down (BenchmarkDeliveryAfterOutage)")

// BenchmarkDeliveryAfterOutage: the internal server is down while
// -outage.messages 2 KiB messages arrive (smtp-source, 20 kept-open
// sessions) and are deferred; then it comes back and an ETRN for its
// domain makes them due at once (as `postqueue -s relay.test`). Reported:
// the messages delivered in the first minute after the ETRN, how long
// until the first delivery, and the rate over the whole backlog. The
// workload is fixed: run with -benchtime 1x.
func BenchmarkDeliveryAfterOutage(b *testing.B) {
	n := *outageMessages
	port := harness.FreePort(b)
	pg, _ := fillWhileDown(b, n, port)
	sink := startCountSinkOn(b, port)
	b.ResetTimer()
	c := harness.Dial(b, pg.Addr, "127.0.0.1")
	c.Expect(250, "EHLO inside.test")
	start := time.Now()
	c.Expect(250, "ETRN relay.test")
	var first time.Duration
	var inMinute int64
	for deadline := start.Add(15 * time.Minute); sink.n.Load() < int64(n); time.Sleep(10 * time.Millisecond) {
		if first == 0 && sink.n.Load() > 0 {
			first = time.Since(start)
		}
		if inMinute == 0 && time.Since(start) >= time.Minute {
			inMinute = sink.n.Load()
		}
		if time.Now().After(deadline) {
			b.Fatalf("sink counted %d of %d after %v", sink.n.Load(), n, time.Since(start))
		}
	}
	all := time.Unix(0, sink.at.Load()).Sub(start)
	if inMinute == 0 {
		inMinute = int64(n) // all delivered within the minute
	}
	b.StopTimer()
	b.ReportMetric(float64(inMinute), "msgs-first-minute")
	b.ReportMetric(first.Seconds(), "s-to-first")
	b.ReportMetric(all.Seconds(), "s-all")
	b.ReportMetric(float64(n)/all.Seconds(), "msgs/s")
}

// fillWhileDown starts postgate with relay.test routed to port, where
// nothing listens yet, sends it n 2 KiB messages from smtp-source (20
// kept-open sessions) and returns once every one has had its first
// attempt and been deferred, with how long the sending took.
func fillWhileDown(b *testing.B, n, port int) (*harness.Postgate, time.Duration) {
	source := harness.Need(b, "smtp-source", "postfix")
	pg := harness.Start(b, fmt.Sprintf("mynetworks = 127.0.0.0/8\nrelay_domains = relay.test\n"+
		"transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\n", port), "")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, source, "-s", "20", "-l", "2048", "-m", fmt.Sprint(n), "-d",
		"-f", "a@src.test", "-t", "u@relay.test", pg.Addr).CombinedOutput()
	if err != nil {
		b.Fatalf("smtp-source: %v\n%s", err, out)
	}
	taken := time.Since(start)
	for deadline := time.Now().Add(20 * time.Minute); ; time.Sleep(time.Second) {
		log, _ := os.ReadFile(pg.Maillog)
		if bytes.Count(log, []byte("status=deferred")) >= n {
			return pg, taken
		}
		if time.Now().After(deadline) {
			b.Fatalf("not all %d messages were deferred", n)
		}
	}
}
