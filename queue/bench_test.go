package queue

import (
	"context"
	"os"
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
