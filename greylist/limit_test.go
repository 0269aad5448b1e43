package greylist

import (
	"context"
	"sync"
	"testing"
	"time"

	"postgate/greylist/redistest"
)

// limitSuite is what every Limiter must do; names carry the test's name,
// so one server serves every run.
func limitSuite(t *testing.T, s Limiter) {
	ctx := context.Background()
	event := func(t *testing.T, name string, r Rate, want bool) Count {
		t.Helper()
		c, err := s.Event(ctx, name, r)
		if err != nil {
			t.Fatal(err)
		}
		if c.Allowed != want {
			t.Fatalf("%s: allowed %v, want %v (%+v)", name, c.Allowed, want, c)
		}
		return c
	}
	connect := func(t *testing.T, name string, l ConnLimits, want string) Conn {
		t.Helper()
		c, err := s.Connect(ctx, name, l)
		if err != nil {
			t.Fatal(err)
		}
		if c.Allowed != (want == "") || c.Over != want {
			t.Fatalf("%s: %+v, want over %q", name, c, want)
		}
		return c
	}

	t.Run("sliding_window", func(t *testing.T) {
		// Two events per 2 s: the first leaves the window 2 s after it
		// happened, not when a fixed window would start over.
		r := Rate{N: 2, Per: 2 * time.Second}
		name := t.Name()
		start := time.Now()
		event(t, name, r, true)
		time.Sleep(time.Second)
		event(t, name, r, true)
		if c := event(t, name, r, false); c.N != 3 {
			t.Errorf("refused event counted %d, want 3", c.N)
		}
		event(t, name+"/other", r, true)
		time.Sleep(time.Until(start.Add(2500 * time.Millisecond)))
		event(t, name, r, true)
		event(t, name, r, false)
	})

	t.Run("concurrent_events", func(t *testing.T) {
		r := Rate{N: 10, Per: time.Minute}
		allowed := race(t, 50, func() (bool, error) {
			c, err := s.Event(ctx, t.Name(), r)
			return c.Allowed, err
		})
		if allowed != 10 {
			t.Errorf("%d of 50 racing events let through, want 10", allowed)
		}
	})

	t.Run("connection_count", func(t *testing.T) {
		l := ConnLimits{Count: 2}
		c1 := connect(t, t.Name(), l, "")
		connect(t, t.Name(), l, "")
		if c := connect(t, t.Name(), l, "concurrency"); c.N != 3 {
			t.Errorf("third connection counted %d, want 3", c.N)
		}
		connect(t, t.Name()+"/other", l, "")
		if err := s.Disconnect(ctx, c1); err != nil {
			t.Fatal(err)
		}
		connect(t, t.Name(), l, "")
		connect(t, t.Name(), l, "concurrency")
	})

	t.Run("connection_rate", func(t *testing.T) {
		l := ConnLimits{Count: 5, Rate: Rate{N: 2, Per: time.Minute}}
		for range 2 {
			c := connect(t, t.Name(), l, "")
			if err := s.Disconnect(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if c := connect(t, t.Name(), l, "rate"); c.N != 3 {
			t.Errorf("third connection in the window counted %d, want 3", c.N)
		}
		// A connection refused for its rate holds no count.
		connect(t, t.Name(), ConnLimits{Count: 1}, "")
	})

	t.Run("concurrent_connections", func(t *testing.T) {
		l := ConnLimits{Count: 5, Rate: Rate{N: 100, Per: time.Minute}}
		allowed := race(t, 30, func() (bool, error) {
			c, err := s.Connect(ctx, t.Name(), l)
			return c.Allowed, err
		})
		if allowed != 5 {
			t.Errorf("%d of 30 racing connections let through, want 5", allowed)
		}
	})

	t.Run("no_limits", func(t *testing.T) {
		for range 3 {
			c := connect(t, t.Name(), ConnLimits{}, "")
			if err := s.Disconnect(ctx, c); err != nil {
				t.Fatal(err)
			}
			event(t, t.Name(), Rate{}, true)
		}
	})
}

// race runs f n times at once and counts its true answers.
func race(t *testing.T, n int, f func() (bool, error)) int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	allowed := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := f()
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				allowed++
			}
		}()
	}
	wg.Wait()
	return allowed
}

// TestRedisLeases: a node's open connections count on another node while
// it renews their leases, and stop counting a lease's lifetime after it
// crashed (stopped renewing without disconnecting).
func TestRedisLeases(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	open := func() *Redis {
		s, err := Open("redis://"+srv.Addr, Options{Timeout: 2 * time.Second, LeaseTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.(*Redis)
	}
	a, b := open(), open()
	ctx := context.Background()
	l := ConnLimits{Count: 1}
	if c, err := a.Connect(ctx, "leases", l); err != nil || !c.Allowed {
		t.Fatalf("node A: %+v %v", c, err)
	}
	time.Sleep(1500 * time.Millisecond)
	if c, err := b.Connect(ctx, "leases", l); err != nil || c.Allowed {
		t.Fatalf("node B while A renews its lease: %+v %v", c, err)
	}
	a.leases.stop() // A crashes
	time.Sleep(1500 * time.Millisecond)
	if c, err := b.Connect(ctx, "leases", l); err != nil || !c.Allowed {
		t.Fatalf("node B after A's lease expired: %+v %v", c, err)
	}
}

// TestRedisLimitRoundTrips: each limit check is one round trip to Redis.
func TestRedisLimitRoundTrips(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := openTest(t, "redis://"+srv.Addr).(*Redis)
	rt := &roundTrips{}
	s.client.AddHook(rt)
	ctx := context.Background()
	// The first run of each script loads it (EVALSHA, then EVAL).
	s.Event(ctx, "warm", Rate{N: 1, Per: time.Second})
	s.Connect(ctx, "warm", ConnLimits{Count: 1})
	var conn Conn
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"Event", func() error { _, err := s.Event(ctx, "e", Rate{N: 5, Per: time.Minute}); return err }},
		{"Connect", func() (err error) {
			conn, err = s.Connect(ctx, "c", ConnLimits{Count: 5, Rate: Rate{N: 5, Per: time.Minute}})
			return err
		}},
		{"Disconnect", func() error { return s.Disconnect(ctx, conn) }},
	} {
		before := rt.n.Load()
		if err := c.f(); err != nil {
			t.Fatal(err)
		}
		if n := rt.n.Load() - before; n != 1 {
			t.Errorf("%s: %d round trips", c.name, n)
		}
	}
}
