package bench

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"postgate/test/harness"
)

var millionMessages = flag.Int("million.messages", 1000000, "messages queued while the internal server is down (BenchmarkDaemonQueuedMillion)")

// BenchmarkDaemonQueuedMillion: the daemon itself, not the queue package,
// with -million.messages 2 KiB messages deferred because the internal
// server is down (a day's outage at a busy gateway). They arrive from
// smtp-source (20 kept-open sessions); once every one has had its first
// attempt the daemon's memory is measured, then it is stopped and started
// again on the same queue. Reported: the rate they were taken at, the
// daemon's PSS with them queued (settled), the restart time (start until
// it answers SMTP) and the PSS after the restart. Far outside make test:
// run with -benchtime 1x -timeout 60m.
func BenchmarkDaemonQueuedMillion(b *testing.B) {
	n := *millionMessages
	pg, taken := fillWhileDown(b, n, harness.FreePort(b)) // nothing listens: every delivery is deferred
	time.Sleep(10 * time.Second)                          // let the runtime give back what the burst took
	queued := treePSS(pg.Pid())

	if err := pg.Stop(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	restart := time.Now()
	pg.Restart()
	restarted := time.Since(restart)
	b.StopTimer()
	time.Sleep(10 * time.Second)
	after := treePSS(pg.Pid())
	if out, err := pg.Run("queue", "list", "-json"); err != nil || bytes.Count([]byte(out), []byte(`"queue_id"`)) < n {
		b.Errorf("after the restart the queue lists %d messages, want %d (%v)", bytes.Count([]byte(out), []byte(`"queue_id"`)), n, err)
	}
	b.ReportMetric(float64(n)/taken.Seconds(), "msgs/s-taken")
	b.ReportMetric(queued, "pss-MB-queued")
	b.ReportMetric(restarted.Seconds(), "s-restart")
	b.ReportMetric(after, "pss-MB-restarted")
}
