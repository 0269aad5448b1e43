package gateway

import (
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"
)

// BenchmarkReceive runs smtp-source (20 sessions, 2 KiB) against an
// in-process gateway, for CPU and allocation profiles of the receive path
// (go test -bench Receive -cpuprofile). test/bench measures the binary.
func BenchmarkReceive(b *testing.B) {
	source, err := exec.LookPath("smtp-source")
	if err != nil {
		source = "/usr/sbin/smtp-source"
	}
	addr := startGateway(b, "", Options{LogOutput: io.Discard})
	b.ResetTimer()
	start := time.Now()
	out, err := exec.Command(source, "-c", "-l", "2048", "-m", fmt.Sprint(b.N), "-s", "20",
		"-f", "a@src.test", "-t", "u@relay.test", addr).CombinedOutput()
	if err != nil {
		b.Fatalf("smtp-source: %v\n%s", err, out)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
