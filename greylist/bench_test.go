package greylist

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"postgate/greylist/redistest"
)

// roundTrips counts what the client sends to Redis: each command and each
// pipeline is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkGreylistRedis: greylist checks against a local redis-server
// from 50 concurrent sessions (goroutines), each check a different
// triplet of a few client networks, as at a busy MX; reports checks per
// second and Redis round trips per check.
//
//	go test -run '^$' -bench GreylistRedis -benchtime 200000x ./greylist
func BenchmarkGreylistRedis(b *testing.B) {
	srv := redistest.Start(b)
	s, err := Open("redis://"+srv.Addr, Options{Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rt := &roundTrips{}
	s.(*Redis).client.AddHook(rt)
	benchStore(b, s)
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/check")
}

// BenchmarkGreylistMemory is the same load on the in-memory store.
func BenchmarkGreylistMemory(b *testing.B) { benchStore(b, NewMemory()) }

func benchStore(b *testing.B, s Store) {
	ctx := context.Background()
	p := Policy{Delay: 300 * time.Second, RetryWindow: 48 * time.Hour, Lifetime: 35 * 24 * time.Hour, AutoAllowClients: 5}
	// Warm up: the script is loaded on the server (EVALSHA, NOSCRIPT,
	// EVAL: counted once), a connection is open.
	if _, err := s.Greylist(ctx, Key{Client: "192.0.2.0/24", Sender: "w@src.test", Recipient: "w@dst.test"}, time.Now(), p); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(max(50/runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			ip := net.IPv4(198, 51, byte(i%200), 1)
			k := Key{Client: ip.String() + "/24", Sender: fmt.Sprintf("s%d@src.test", i%1000), Recipient: fmt.Sprintf("u%d@dst.test", i)}
			if _, err := s.Greylist(ctx, k, time.Now(), p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
}
