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
	runParallel(b, func(i int64) error {
		ip := net.IPv4(198, 51, byte(i%200), 1)
		k := Key{Client: ip.String() + "/24", Sender: fmt.Sprintf("s%d@src.test", i%1000), Recipient: fmt.Sprintf("u%d@dst.test", i)}
		_, err := s.Greylist(ctx, k, time.Now(), p)
		return err
	})
}

// runParallel runs check from 50 goroutines (sessions) and reports the
// checks per second.
func runParallel(b *testing.B, check func(i int64) error) {
	var seq atomic.Int64
	b.SetParallelism(max(50/runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := check(seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "checks/s")
}

// BenchmarkRateRedis: rate-limit checks (Limiter.Event, as
// smtpd_client_recipient_rate_limit and check_sender_rate make them)
// against a local redis-server from 50 concurrent sessions, over 200
// client addresses; reports checks per second and Redis round trips per
// check.
//
//	go test -run '^$' -bench 'Rate|Connect' -benchtime 200000x ./greylist
func BenchmarkRateRedis(b *testing.B) {
	s, rt := benchRedis(b)
	benchRate(b, s)
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/check")
}

// BenchmarkRateMemory is the same load on the in-memory store.
func BenchmarkRateMemory(b *testing.B) { benchRate(b, NewMemory()) }

func benchRate(b *testing.B, s Limiter) {
	ctx := context.Background()
	r := Rate{N: 1000, Per: time.Minute}
	runParallel(b, func(i int64) error {
		_, err := s.Event(ctx, fmt.Sprintf("anvil|25|198.51.100.%d|rcpt", i%200), r)
		return err
	})
}

// BenchmarkConnectRedis: connection checks (count and rate limits, a
// lease taken) and their release, from 50 concurrent sessions; a check is
// one round trip, its release another.
func BenchmarkConnectRedis(b *testing.B) {
	s, rt := benchRedis(b)
	ctx := context.Background()
	l := ConnLimits{Count: 1000, Rate: Rate{N: 1000, Per: time.Minute}}
	runParallel(b, func(i int64) error {
		c, err := s.Connect(ctx, fmt.Sprintf("anvil|25|198.51.100.%d", i%200), l)
		if err == nil {
			err = s.Disconnect(ctx, c)
		}
		return err
	})
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/connection")
}

// benchRedis starts a redis-server, opens the store on it and loads the
// limit scripts (a script's first run is EVALSHA, NOSCRIPT, EVAL: not
// counted), then counts round trips.
func benchRedis(b *testing.B) (*Redis, *roundTrips) {
	srv := redistest.Start(b)
	st, err := Open("redis://"+srv.Addr, Options{Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	s := st.(*Redis)
	ctx := context.Background()
	if _, err := s.Event(ctx, "warm", Rate{N: 1, Per: time.Second}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Connect(ctx, "warm", ConnLimits{Count: 1}); err != nil {
		b.Fatal(err)
	}
	rt := &roundTrips{}
	s.client.AddHook(rt)
	return s, rt
}
