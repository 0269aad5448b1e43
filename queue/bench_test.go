package queue

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// countingSyncer is the real fdatasync, counted.
type countingSyncer struct{ files atomic.Int64 }

func (c *countingSyncer) Sync(f *os.File) error {
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return f.Sync()
	}
	c.files.Add(1)
	return fdatasyncer{}.Sync(f)
}

// benchmarkAppend appends b.N 2 KiB messages from the given number of
// concurrent writers to a real log with real fdatasync, and reports
// appends/s and syncs per append.
func benchmarkAppend(b *testing.B, writers int) {
	cs := &countingSyncer{}
	s, err := Open(b.TempDir(), Options{Syncer: cs})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	content := testContent(0, 2048)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	before := cs.files.Load()
	b.ResetTimer()
	for w := range writers {
		tmpl := testEnvelope(w)
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				env := *tmpl // a fresh ID each time, from NewID
				env.ID = ""
				if err := s.Append(context.Background(), &env, content); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64(cs.files.Load()-before)/float64(b.N), "syncs/append")
}

func BenchmarkAppend1(b *testing.B)   { benchmarkAppend(b, 1) }
func BenchmarkAppend20(b *testing.B)  { benchmarkAppend(b, 20) }
func BenchmarkAppend100(b *testing.B) { benchmarkAppend(b, 100) }

// BenchmarkIndexSegment indexes a sealed segment of 2 KiB messages, each
// with its "delivered" record, as the indexer does when the log moves on;
// it reports the CPU per message (this process, its system calls
// included), the price every message pays later out of the sessions' CPU.
func BenchmarkIndexSegment(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{Syncer: nopSyncer{}})
	if err != nil {
		b.Fatal(err)
	}
	const msgs = 5000
	content := testContent(0, 2048)
	for i := range msgs {
		env := *testEnvelope(i)
		env.ID = ""
		if err := s.Append(context.Background(), &env, content); err != nil {
			b.Fatal(err)
		}
		if err := s.Change(context.Background(), env.ID, Change{Kind: ChangeDelivered}); err != nil {
			b.Fatal(err)
		}
	}
	seq := s.segSeq
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		ib := newSegIndexBuilder(seq)
		if _, err := indexSegmentFile(segPath(filepath.Join(dir, "log"), seq), seq, ib); err != nil || !ib.ok {
			b.Fatalf("index: %v, ok %v", err, ib.ok)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N*msgs), "cpu-us/msg")
}
