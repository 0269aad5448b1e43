package gateway

import (
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkReceive runs smtp-source (20 sessions, 2 KiB, one message per
// connection) against an in-process gateway, for CPU and allocation
// profiles of the receive path (go test -bench Receive -cpuprofile) and
// its CPU per message (this process's, smtp-source's not counted; the
// queue manager's attempts to deliver included). test/bench measures the
// binary.
func BenchmarkReceive(b *testing.B) {
	source, err := exec.LookPath("smtp-source")
	if err != nil {
		source = "/usr/sbin/smtp-source"
	}
	addr := startGateway(b, "relay_transport = discard\n", Options{LogOutput: io.Discard})
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	out, err := exec.Command(source, "-c", "-l", "2048", "-m", fmt.Sprint(b.N), "-s", "20",
		"-f", "a@src.test", "-t", "u@relay.test", addr).CombinedOutput()
	if err != nil {
		b.Fatalf("smtp-source: %v\n%s", err, out)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
