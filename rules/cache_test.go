package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTable is a remote table in memory: it counts the queries per key and
// can fail, or hold every query until release is closed.
type fakeTable struct {
	mu      sync.Mutex
	values  map[string]string
	err     error
	calls   map[string]int
	release chan struct{} // non-nil: queries wait until it is closed
	deaf    bool          // waiting ignores the query's context
	ended   []error       // the query's context error when each query returned
}

func newFake(values map[string]string) *fakeTable {
	return &fakeTable{values: values, calls: map[string]int{}}
}

func (f *fakeTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	f.mu.Lock()
	f.calls[key]++
	release, deaf := f.release, f.deaf
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.ended = append(f.ended, ctx.Err())
		f.mu.Unlock()
	}()
	if release != nil && deaf {
		<-release
	} else if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", false, f.err
	}
	v, ok := f.values[key]
	return v, ok, nil
}

func (f *fakeTable) FixedString() bool { return true }

func (f *fakeTable) set(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if value == "" {
		delete(f.values, key)
	} else {
		f.values[key] = value
	}
}

func (f *fakeTable) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeTable) queries(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

// namedFake is a fakeTable that names itself, as the network tables do.
type namedFake struct{ *fakeTable }

func (n namedFake) String() string { return "cachetest:named" }

// cachetest: is a registered table type, as the database and network types
// are: cachetest:named names itself.
func init() {
	Register("cachetest", func(typ, name string, o OpenOptions) (Table, error) {
		f := newFake(map[string]string{"k": "v"})
		if name == "named" {
			return namedFake{f}, nil
		}
		return f, nil
	})
}

// lookupWant looks key up and fails the test unless the answer is want
// (found when want is not empty).
func lookupWant(t *testing.T, tbl Table, key, want string) {
	t.Helper()
	v, found, err := tbl.Lookup(context.Background(), key)
	if err != nil || v != want || found != (want != "") {
		t.Fatalf("Lookup(%q) = %q, %v, %v; want %q", key, v, found, err, want)
	}
}

// wantQueries fails the test unless key reached the table n times.
func wantQueries(t *testing.T, f *fakeTable, key string, n int) {
	t.Helper()
	if got := f.queries(key); got != n {
		t.Fatalf("%d queries for %q, want %d", got, key, n)
	}
}

// TestCacheTTL: a found value is served from memory for TTL, "not found"
// for NegativeTTL, each key on its own (as the partial keys of one address
// are), and the table is asked again once an answer expires.
func TestCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(map[string]string{"user@example.com": "one", "@example.com": "dom"})
		tbl := newCachedTable("cachetest:x", f, CacheOptions{TTL: 60 * time.Second, NegativeTTL: 10 * time.Second}, 100)
		keys := map[string]string{"user@example.com": "one", "user@": "", "@example.com": "dom", "example.com": ""}
		for range 3 {
			for k, want := range keys {
				lookupWant(t, tbl, k, want)
			}
		}
		for k := range keys {
			wantQueries(t, f, k, 1)
		}

		f.set("user@example.com", "two")
		f.set("user@", "new")
		time.Sleep(9 * time.Second)
		lookupWant(t, tbl, "user@example.com", "one")
		lookupWant(t, tbl, "user@", "")
		time.Sleep(time.Second) // NegativeTTL has passed
		lookupWant(t, tbl, "user@", "new")
		lookupWant(t, tbl, "user@example.com", "one")
		wantQueries(t, f, "user@", 2)
		time.Sleep(50 * time.Second) // TTL has passed
		lookupWant(t, tbl, "user@example.com", "two")
		wantQueries(t, f, "user@example.com", 2)
	})
}

// TestCacheTTLZero: a zero TTL keeps nothing of that kind.
func TestCacheTTLZero(t *testing.T) {
	f := newFake(map[string]string{"a": "1"})
	positive := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Minute}, 100)
	negative := newCachedTable("cachetest:x", f, CacheOptions{NegativeTTL: time.Minute}, 100)
	for range 2 {
		lookupWant(t, positive, "a", "1")
		lookupWant(t, positive, "b", "")
		lookupWant(t, negative, "a", "1")
		lookupWant(t, negative, "b", "")
	}
	wantQueries(t, f, "a", 3) // positive once, negative twice
	wantQueries(t, f, "b", 3) // positive twice, negative once
}

// TestCacheErrorNotKept: a failed lookup returns the table's error and is
// not kept (the next lookup asks again); a found value kept before the
// failure is still served until it expires, then the error shows.
func TestCacheErrorNotKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(map[string]string{"a": "1"})
		tbl := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Minute, NegativeTTL: time.Minute}, 100)
		lookupWant(t, tbl, "a", "1")
		down := errors.New("server down")
		f.fail(down)
		for range 2 {
			if _, _, err := tbl.Lookup(context.Background(), "b"); !errors.Is(err, down) {
				t.Fatalf("Lookup(b) with the server down: %v", err)
			}
		}
		wantQueries(t, f, "b", 2)
		lookupWant(t, tbl, "a", "1")
		time.Sleep(time.Minute)
		if v, found, err := tbl.Lookup(context.Background(), "a"); !errors.Is(err, down) {
			t.Fatalf("Lookup(a) after TTL with the server down = %q, %v, %v", v, found, err)
		}
		f.fail(nil)
		lookupWant(t, tbl, "b", "")
		wantQueries(t, f, "b", 3)
	})
}

// TestCacheBound: a cache keeps at most its size, dropping the least
// recently used answer first; a large one spreads over shards that
// together hold exactly its size.
func TestCacheBound(t *testing.T) {
	f := newFake(map[string]string{})
	tbl := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}, 3)
	for _, k := range []string{"k1", "k2", "k3", "k1", "k4"} { // k1 used again: k2 is the oldest
		lookupWant(t, tbl, k, "")
	}
	for _, k := range []string{"k1", "k3", "k4", "k2"} {
		lookupWant(t, tbl, k, "")
	}
	wantQueries(t, f, "k1", 1)
	wantQueries(t, f, "k2", 2)
	if n := len(tbl.shards[0].entries); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}

	big := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}, cacheSize)
	if len(big.shards) != maxShards {
		t.Fatalf("%d shards, want %d", len(big.shards), maxShards)
	}
	for i := range 3 * cacheSize {
		lookupWant(t, big, fmt.Sprint("key", i), "")
	}
	total, capacity := 0, 0
	for i := range big.shards {
		s := &big.shards[i]
		if len(s.entries) > s.capacity {
			t.Errorf("shard %d holds %d entries, capacity %d", i, len(s.entries), s.capacity)
		}
		total += len(s.entries)
		capacity += s.capacity
	}
	if capacity != cacheSize || total > cacheSize || total < cacheSize*9/10 {
		t.Errorf("%d entries kept over shards of total capacity %d, want about %d", total, capacity, cacheSize)
	}
}

// TestCacheSharedQuery: concurrent lookups of one key make one query and
// all get its answer; a caller that gives up returns at once without
// ending the query the others wait for; when the last one gives up, the
// query is cancelled.
func TestCacheSharedQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(map[string]string{"a": "1"})
		f.release = make(chan struct{})
		tbl := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Minute}, 100)
		var wg sync.WaitGroup
		answers := make([]string, 10)
		for i := range answers {
			wg.Go(func() {
				v, _, err := tbl.Lookup(context.Background(), "a")
				answers[i] = fmt.Sprint(v, err)
			})
		}
		impatient, cancel := context.WithCancel(context.Background())
		var impatientErr error
		wg.Go(func() { _, _, impatientErr = tbl.Lookup(impatient, "a") })
		synctest.Wait()
		cancel()
		synctest.Wait()
		if !errors.Is(impatientErr, context.Canceled) || !strings.HasPrefix(impatientErr.Error(), "cachetest:x: ") {
			t.Fatalf("a caller that gave up: %v", impatientErr)
		}
		close(f.release)
		wg.Wait()
		for i, a := range answers {
			if a != "1<nil>" {
				t.Errorf("caller %d: %s", i, a)
			}
		}
		wantQueries(t, f, "a", 1)

		f.release = make(chan struct{})
		alone, cancel := context.WithCancel(context.Background())
		wg.Go(func() { tbl.Lookup(alone, "b") })
		synctest.Wait()
		cancel()
		wg.Wait()
		synctest.Wait()
		f.mu.Lock()
		ended := f.ended
		f.mu.Unlock()
		if len(ended) != 2 || ended[0] != nil || ended[1] != context.Canceled {
			t.Fatalf("the queries' contexts when they ended: %v, want [<nil> context canceled]", ended)
		}
		close(f.release)
	})
}

// TestCacheTimeout: a lookup fails after Timeout, also when the table does
// not watch its context; the failure is not kept, and a query past its
// bound is not joined by later lookups.
func TestCacheTimeout(t *testing.T) {
	for _, deaf := range []bool{false, true} {
		t.Run(fmt.Sprintf("deaf=%v", deaf), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(map[string]string{"a": "1"})
				f.release, f.deaf = make(chan struct{}), deaf
				tbl := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Minute, NegativeTTL: time.Minute, Timeout: 2 * time.Second}, 100)
				for i := range 2 {
					start := time.Now()
					_, _, err := tbl.Lookup(context.Background(), "a")
					if err == nil || err.Error() != `cachetest:x: lookup of "a": no answer within 2s` || time.Since(start) != 2*time.Second {
						t.Fatalf("lookup %d: %v after %v", i, err, time.Since(start))
					}
				}
				wantQueries(t, f, "a", 2)
				close(f.release)
				synctest.Wait()
				f.release = nil
				lookupWant(t, tbl, "a", "1")
			})
		})
	}
}

// TestRegisteredTablesCached: tables of registered types get the cache,
// keeping their abilities (FixedString, a name); local tables and a zero
// CacheOptions do not.
func TestRegisteredTablesCached(t *testing.T) {
	o := OpenOptions{Cache: CacheOptions{TTL: time.Minute}}
	for _, c := range []struct {
		spec         string
		o            OpenOptions
		cached, name bool
	}{
		{spec: "cachetest:x", o: o, cached: true},
		{spec: "proxy:cachetest:x", o: o, cached: true},
		{spec: "cachetest:named", o: o, cached: true, name: true},
		{spec: "cachetest:x", o: OpenOptions{Cache: CacheOptions{Timeout: time.Second}}, cached: true},
		{spec: "cachetest:x"},
		{spec: "inline:{k=v}", o: o},
		{spec: "static:v", o: o},
	} {
		tbl, err := OpenWith(c.spec, c.o)
		if err != nil {
			t.Fatal(err)
		}
		_, plain := tbl.(*cachedTable)
		_, named := tbl.(namedCachedTable)
		if plain != (c.cached && !c.name) || named != (c.cached && c.name) {
			t.Errorf("%s with %+v: a %T", c.spec, c.o.Cache, tbl)
		}
		if s, ok := tbl.(fmt.Stringer); c.cached && (ok != c.name || ok && s.String() != "cachetest:named") {
			t.Errorf("%s: named %v, want %v", c.spec, ok, c.name)
		}
		if !IsFixedString(tbl) {
			t.Errorf("%s: not fixed-string", c.spec)
		}
		lookupWant(t, tbl, "k", "v")
	}
}

// BenchmarkCacheHit: lookups answered from a table's cache, 1,000 keys,
// from as many goroutines as the benchmark's -cpu.
func BenchmarkCacheHit(b *testing.B) {
	f := newFake(map[string]string{})
	tbl := newCachedTable("cachetest:x", f, CacheOptions{TTL: time.Hour, NegativeTTL: time.Hour}, cacheSize)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user%d@example.com", i)
		if _, _, err := tbl.Lookup(context.Background(), keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			if _, _, err := tbl.Lookup(ctx, keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
