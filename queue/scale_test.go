package queue

import (
	"context"
	"flag"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var scaleMessages = flag.Int("queue.scale", 1_000_000, "messages in BenchmarkQueueAtScale's backlog")

var scaleCold = flag.Bool("queue.cold", false, "BenchmarkQueueAtScale drops the page cache before the reopen (needs root)")

// nopSyncer skips the fsyncs where durability is not what is measured.
type nopSyncer struct{}

func (nopSyncer) Sync(*os.File) error { return nil }

// BenchmarkQueueAtScale: the backlog of an internal server down for a day,
// -queue.scale 2 KiB messages (a million by default, about 2.5 GB of
// disk), each deferred once. It reports the heap the reopened queue holds
// and how long the reopen takes, and the heap once a queue manager runs
// on it and has parked the backlog on disk (park.go). Not run by `make test`; run with
// `go test -run '^$' -bench QueueAtScale -benchtime 1x -timeout 30m ./queue/`
// (add -queue.cold, as root, to reopen with a cold page cache).
func BenchmarkQueueAtScale(b *testing.B) {
	dir := b.TempDir()
	n := *scaleMessages
	s, err := Open(dir, Options{Syncer: nopSyncer{}})
	if err != nil {
		b.Fatal(err)
	}
	content := testContent(0, 2048)
	until := time.Now().Add(time.Hour)
	var next atomic.Int64
	var wg sync.WaitGroup
	fillStart := time.Now()
	for w := range 64 {
		tmpl := testEnvelope(w)
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				env := *tmpl
				env.ID = ""
				if err := s.Append(context.Background(), &env, content); err != nil {
					b.Error(err)
					return
				}
				c := Change{Kind: ChangeDeferred, Rcpts: []int{0, 1}, Until: until,
					Reason: "connect to exchange.internal.example[10.0.0.5]:25: Connection refused"}
				if err := s.Change(context.Background(), env.ID, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d messages in %v", n, time.Since(fillStart).Round(time.Millisecond))
	s = nil
	if *scaleCold {
		// Root only: the reopen reads from the disk, not the page cache.
		syscall.Sync()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
			b.Fatalf("dropping the page cache: %v", err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	s, err = Open(dir, Options{Syncer: nopSyncer{}})
	if err != nil {
		b.Fatal(err)
	}
	reopen, reopenCPU := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := len(s.List()); got != n {
		b.Errorf("reopened queue lists %d messages, want %d", got, n)
	}
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(reopen.Seconds(), "reopen-s")
	b.ReportMetric(reopenCPU.Seconds(), "reopen-cpu-s")
	b.ReportMetric(heap/(1<<20), "heap-MB")
	b.ReportMetric(heap/float64(n), "heap-B/msg")

	// The daemon runs a queue manager, which parks the backlog (deferred
	// for an hour: past its horizon) on disk.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Its transport holds every delivery until the end: the internal
	// server is still down.
	go func() {
		done <- s.RunManager(ctx, ManagerOptions{Transports: map[string]Transport{"smtp": heldTransport{}}})
	}()
	// Its start parks the backlog on disk, a segment at a time: an
	// Append waits for the lock at most as long as the longest wait
	// here.
	parkStart := time.Now()
	var longest time.Duration
	for parkedAll := false; !parkedAll; time.Sleep(time.Millisecond) {
		wait := time.Now()
		s.mu.Lock()
		longest = max(longest, time.Since(wait))
		parkedAll = s.mgr != nil && s.idx.parkedCount() == n
		s.mu.Unlock()
	}
	b.ReportMetric(float64(time.Since(parkStart).Milliseconds()), "park-ms")
	b.ReportMetric(float64(longest.Milliseconds()), "park-lock-wait-ms")
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
	b.ReportMetric(heap/(1<<20), "mgr-heap-MB")
	b.ReportMetric(heap/float64(n), "mgr-heap-B/msg")
	// What a queue run costs: it looks at each segment's parked
	// messages' earliest next try (none come due here) and the few
	// messages in memory.
	s.mu.Lock()
	walk := time.Now()
	s.queueRun(s.idx.horizon, DefaultActiveLimit)
	s.mu.Unlock()
	s.parkOut(0, DefaultActiveLimit)
	b.ReportMetric(float64(time.Since(walk).Microseconds())/1000, "queue-run-ms")
	// The server is back: ETRN for its domain makes the whole backlog due
	// (the files read, the envelopes matched, the messages back in
	// memory), and the active queue fills.
	etrn := time.Now()
	s.FlushDomain("example.com")
	b.ReportMetric(float64(time.Since(etrn).Milliseconds()), "etrn-ms")
	waitActive := time.Now()
	for full := false; !full; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		full = len(s.delivering) >= min(n, DefaultActiveLimit)
		s.mu.Unlock()
	}
	b.ReportMetric(float64(time.Since(waitActive).Milliseconds()), "active-full-ms")
	cancel()
	if err := <-done; err != nil {
		b.Error(err)
	}
	runtime.KeepAlive(s)
	s.Close()
}

// cpuTime is the CPU time the process has used: on a loaded machine the
// reopen's wall time says more about the neighbours than about it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heldTransport holds each delivery until its context ends.
type heldTransport struct{}

func (heldTransport) Deliver(ctx context.Context, d *Delivery) []Result {
	<-ctx.Done()
	return nil
}
