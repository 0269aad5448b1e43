package test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"postgate/test/harness"
)

// TestProcsOnOneCPU: the daemon started on one CPU runs with two Ps
// (GOMAXPROCS), so a session never waits behind the queue's fdatasync
// holding the only one; an admin's GOMAXPROCS wins. Read from the
// daemon's own /metrics (go_sched_gomaxprocs_threads).
func TestProcsOnOneCPU(t *testing.T) {
	t.Parallel()
	taskset := harness.Need(t, "taskset", "util-linux")
	// One CPU this process may use: CPU 0 may be outside a CI's cpuset.
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for cpu < len(set)*64 && !set.IsSet(cpu) {
		cpu++
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{{nil, "2"}, {[]string{"GOMAXPROCS=1"}, "1"}} {
		t.Run(fmt.Sprintf("env=%v", tc.env), func(t *testing.T) {
			mport := harness.FreePort(t)
			p := harness.StartWith(t, fmt.Sprintf("postgate_metrics_address = 127.0.0.1:%d\n", mport), "",
				[]string{taskset, "-c", fmt.Sprint(cpu)}, tc.env)
			// The floor is set as the daemon starts serving, and /metrics
			// may answer just before: read until it shows or time is up.
			got := ""
			for deadline := time.Now().Add(30 * time.Second); got != tc.want && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				got = gomaxprocs(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
			}
			if got != tc.want {
				t.Fatalf("on one CPU with %q, go_sched_gomaxprocs_threads = %q, want %s\n%s", tc.env, got, tc.want, p.Stderr())
			}
			// It stays so past the floor's next look (once a second): an
			// admin's 1 is not raised later either.
			for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if got := gomaxprocs(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)); got != tc.want {
					t.Fatalf("on one CPU with %q, go_sched_gomaxprocs_threads went from %s to %q", tc.env, tc.want, got)
				}
			}
		})
	}
}

// gomaxprocs is the value of go_sched_gomaxprocs_threads at url, "" when
// it cannot be read.
func gomaxprocs(url string) string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_sched_gomaxprocs_threads "); ok {
			return v
		}
	}
	return ""
}
