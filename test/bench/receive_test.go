// Package bench measures postgate against the targets of DESIGN.md with
// Postfix's own load tools. Run with `make bench`; never part of make test.
package bench

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// BenchmarkAcceptSmtpSource: smtp-source, 20 sessions, 2 KiB messages, into
// postgate's queue (fsync before every 250). Reports messages/s.
func BenchmarkAcceptSmtpSource(b *testing.B) {
	source := harness.Need(b, "smtp-source", "postfix")
	p := harness.Start(b, "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n", "")
	const messages = 20000
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out, err := exec.Command(source, "-c", "-l", "2048", "-m", fmt.Sprint(messages), "-s", "20",
			"-f", "a@src.test", "-t", "u@relay.test", p.Addr).CombinedOutput()
		if err != nil {
			b.Fatalf("smtp-source: %v\n%s", err, out)
		}
		el := time.Since(start)
		b.ReportMetric(float64(messages)/el.Seconds(), "msgs/s")
	}
	b.StopTimer()
	out, err := p.Run("queue", "list", "--json")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			n++
		}
	}
	if n != messages*b.N {
		b.Fatalf("queue holds %d messages, want %d", n, messages*b.N)
	}
}
