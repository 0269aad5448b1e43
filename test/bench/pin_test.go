package bench

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"postgate/test/harness"
)

var relayPin = flag.Bool("relay.pin", false, "relay benchmarks: run the servers on one half of the CPUs and their load (smtp-source, smtp-sink, this process) on the other, so the load takes no CPU from the server it measures (default: everything shares every CPU, as the README's first relay table was taken)")

// pinServers, with -relay.pin, puts each server's process tree on the
// upper half of the CPUs and this process and the sinks on the lower half
// (smtp-source, started later by this process, inherits it). On a shared
// machine the load generator's CPU per message is about fixed, so it takes
// a larger share from the faster server and the ratio measures the load as
// much as the servers; pinned, each server has the same CPUs to itself.
// Other peers a benchmark started (a milter, rbldnsd) are left on every
// CPU. The affinity is restored when the benchmark ends. It returns how
// many CPUs the servers have.
func pinServers(b *testing.B, servers []server) int {
	n := runtime.NumCPU()
	if !*relayPin || n < 2 {
		b.Logf("not pinned (-relay.pin=%v, %d CPUs): the load shares the servers' CPUs", *relayPin, n)
		return n
	}
	var all, load, srv unix.CPUSet
	for i := range n {
		all.Set(i)
		if i < n/2 {
			load.Set(i)
		} else {
			srv.Set(i)
		}
	}
	for _, s := range servers {
		for _, pid := range harness.ProcessTree(s.root) {
			pinProcess(b, pid, &srv)
		}
		if s.sink.pid != s.root { // a floor's sink is the server
			pinProcess(b, s.sink.pid, &load)
		}
	}
	pinProcess(b, os.Getpid(), &load)
	b.Cleanup(func() { pinProcess(b, os.Getpid(), &all) })
	b.Logf("servers on CPUs %d-%d, load on CPUs 0-%d", n/2, n-1, n/2-1)
	return n - n/2
}

// pinProcess sets the affinity of every thread of pid; threads and
// processes it starts later inherit it.
func pinProcess(b *testing.B, pid int, cpus *unix.CPUSet) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatalf("pin %d: %v", pid, err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A thread may have ended since the listing.
		if err := unix.SchedSetaffinity(tid, cpus); err != nil && err != unix.ESRCH {
			b.Fatalf("pin %d/%d: %v", pid, tid, err)
		}
	}
}
