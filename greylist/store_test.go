package greylist

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/greylist/redistest"
)

// testPolicy is short enough for real-time tests against a real server,
// and each case leaves a second or more where a loaded machine could
// make it flaky.
var testPolicy = Policy{Delay: time.Second, RetryWindow: 10 * time.Second, Lifetime: 10 * time.Second}

// storeSuite is what every Store must do; each case uses its own keys so
// one server serves them all.
func storeSuite(t *testing.T, s Store) {
	ctx := context.Background()
	// Each test has its own client network: a client's pass count
	// outlives the test that made it, and the suite may run twice on one
	// server.
	network := func(name string) string {
		h := fnv.New32a()
		h.Write([]byte(name))
		n := h.Sum32()
		return fmt.Sprintf("10.%d.%d.0/24", byte(n>>8), byte(n))
	}
	key := func(t *testing.T, rcpt string) Key {
		return Key{Client: network(t.Name()), Sender: "s@" + strings.ReplaceAll(t.Name(), "/", ".") + ".test", Recipient: rcpt}
	}
	attempt := func(t *testing.T, k Key, p Policy, want Status) Result {
		t.Helper()
		r, err := s.Greylist(ctx, k, time.Now(), p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != want {
			t.Fatalf("%v: got %v, want %v", k, r.Status, want)
		}
		return r
	}

	t.Run("delay", func(t *testing.T) {
		k := key(t, "u@example.test")
		start := time.Now()
		first := attempt(t, k, testPolicy, New)
		if !first.Greylisted() || first.FirstSeen.Sub(start).Abs() > time.Second {
			t.Fatalf("first attempt: %+v", first)
		}
		early := attempt(t, k, testPolicy, TooEarly)
		if !early.Greylisted() || !early.FirstSeen.Equal(first.FirstSeen) {
			t.Fatalf("early retry changed the first attempt's time: %v, then %v", first.FirstSeen, early.FirstSeen)
		}
		attempt(t, Key{Client: k.Client, Sender: k.Sender, Recipient: "other@example.test"}, testPolicy, New)
		attempt(t, Key{Client: network(t.Name() + "/other"), Sender: k.Sender, Recipient: k.Recipient}, testPolicy, New)
		time.Sleep(testPolicy.Delay)
		pass := attempt(t, k, testPolicy, Passed)
		if pass.Greylisted() || pass.ClientPasses != 1 || !pass.FirstSeen.Equal(first.FirstSeen) {
			t.Fatalf("retry after the delay: %+v", pass)
		}
		attempt(t, k, testPolicy, Known)
	})

	t.Run("retry_too_late", func(t *testing.T) {
		p := testPolicy
		p.RetryWindow = 200 * time.Millisecond
		k := key(t, "u@example.test")
		attempt(t, k, p, New)
		time.Sleep(p.Delay + p.RetryWindow + 100*time.Millisecond)
		attempt(t, k, p, New)
		attempt(t, k, p, TooEarly)
	})

	t.Run("lifetime", func(t *testing.T) {
		p := Policy{Delay: 100 * time.Millisecond, RetryWindow: 10 * time.Second, Lifetime: 3 * time.Second}
		k := key(t, "u@example.test")
		attempt(t, k, p, New)
		time.Sleep(p.Delay)
		attempt(t, k, p, Passed)
		// Seen again within the lifetime: kept for another lifetime.
		time.Sleep(p.Lifetime * 3 / 5)
		attempt(t, k, p, Known)
		time.Sleep(p.Lifetime * 3 / 5)
		attempt(t, k, p, Known)
		time.Sleep(p.Lifetime + 100*time.Millisecond)
		attempt(t, k, p, New)
	})

	t.Run("auto_allowlist", func(t *testing.T) {
		p := testPolicy
		p.Delay = 100 * time.Millisecond
		p.AutoAllowClients = 2
		var ks []Key
		for _, r := range []string{"a@example.test", "b@example.test"} {
			k := key(t, r)
			ks = append(ks, k)
			attempt(t, k, p, New)
		}
		time.Sleep(p.Delay)
		for i, k := range ks {
			if r := attempt(t, k, p, Passed); r.ClientPasses != i+1 {
				t.Fatalf("pass %d counted %d", i+1, r.ClientPasses)
			}
		}
		k := key(t, "c@example.test")
		if r := attempt(t, k, p, AllowedClient); r.Greylisted() || r.ClientPasses != 2 {
			t.Fatalf("allowlisted client: %+v", r)
		}
		other := k
		other.Client = network(t.Name() + "/other")
		attempt(t, other, p, New)
	})

	t.Run("concurrent", func(t *testing.T) {
		k := key(t, "u@example.test")
		const n = 20
		count := func() map[Status]int {
			var mu sync.Mutex
			got := map[Status]int{}
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := s.Greylist(ctx, k, time.Now(), testPolicy)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[r.Status]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			return got
		}
		if got := count(); got[New] != 1 || got[TooEarly] != n-1 {
			t.Fatalf("%d racing first attempts: %v, want one new", n, got)
		}
		time.Sleep(testPolicy.Delay)
		if got := count(); got[Passed] != 1 || got[Known] != n-1 {
			t.Fatalf("%d racing retries: %v, want one pass", n, got)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	s := NewMemory()
	t.Run("greylist", func(t *testing.T) { storeSuite(t, s) })
	t.Run("limits", func(t *testing.T) { limitSuite(t, s) })
	t.Run("verify", func(t *testing.T) { verifySuite(t, s) })
}

func TestRedisStore(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := openTest(t, "redis://"+srv.Addr+"/3")
	t.Run("greylist", func(t *testing.T) { storeSuite(t, s) })
	t.Run("limits", func(t *testing.T) { limitSuite(t, s) })
	t.Run("verify", func(t *testing.T) { verifySuite(t, s) })
}

// TestRedisClusterStore: the suite on a three-master Cluster named by one
// seed address (go-redis's cluster mode from a single address); the keys
// of one check share a hash tag, or the script would fail with CROSSSLOT.
func TestRedisClusterStore(t *testing.T) {
	t.Parallel()
	nodes := redistest.StartCluster(t)
	s := openTest(t, "redis-cluster://"+nodes[1].Addr)
	t.Run("greylist", func(t *testing.T) { storeSuite(t, s) })
	t.Run("limits", func(t *testing.T) { limitSuite(t, s) })
	t.Run("verify", func(t *testing.T) { verifySuite(t, s) })
	// The suite's client networks landed on more than one master.
	used := 0
	for _, n := range nodes {
		if out, _ := n.CLI("dbsize"); strings.TrimSpace(out) != "0" {
			used++
		}
	}
	if used < 2 {
		t.Errorf("keys on %d of 3 masters", used)
	}
}

// TestRedisSentinelStore: the suite through a Sentinel, then a failover
// the test triggers, then the suite again on the promoted replica.
func TestRedisSentinelStore(t *testing.T) {
	t.Parallel()
	primary, replica, sentinel := redistest.StartSentinel(t, "gl")
	s := openTest(t, "redis-sentinel://"+sentinel.Addr+"/2?master=gl")
	t.Run("before", func(t *testing.T) { storeSuite(t, s); limitSuite(t, s) })
	if out, err := sentinel.CLI("sentinel", "failover", "gl"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("SENTINEL FAILOVER: %v %s", err, out)
	}
	replica.WaitFor("promotion", func() bool {
		out, _ := replica.CLI("role")
		return strings.HasPrefix(out, "master")
	})
	// Until the sentinel turns the old master into a replica, it still
	// takes writes that its resync then drops.
	primary.WaitFor("the old master turned replica", func() bool {
		out, _ := primary.CLI("role")
		return strings.HasPrefix(out, "slave")
	})
	// The client follows the switch by itself; checks may fail while it
	// does.
	replica.WaitFor("the store on the new master", func() bool {
		_, err := s.Greylist(context.Background(), Key{Client: "192.0.2.0/24", Recipient: "probe@example.test"}, time.Now(), testPolicy)
		return err == nil
	})
	t.Run("after", func(t *testing.T) { storeSuite(t, s); limitSuite(t, s) })
	if out, _ := replica.CLI("-n", "2", "dbsize"); strings.TrimSpace(out) == "0" {
		t.Error("nothing written on the promoted replica")
	}
}

func openTest(t *testing.T, spec string) Store {
	t.Helper()
	s, err := Open(spec, Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestNewKey(t *testing.T) {
	for _, c := range []struct {
		addr     string
		v4, v6   int
		wantNet  string
		sender   string
		wantSndr string
	}{
		{"198.51.100.77", 24, 64, "198.51.100.0/24", "Joe@Example.TEST", "joe@example.test"},
		{"::ffff:198.51.100.77", 24, 64, "198.51.100.0/24", "", ""},
		{"198.51.100.77", 32, 64, "198.51.100.77/32", "a@b.test", "a@b.test"},
		{"2001:db8:1:2:3::4", 24, 64, "2001:db8:1:2::/64", "a@b.test", "a@b.test"},
		{"2001:db8:1:2:3::4", 24, 48, "2001:db8:1::/48", "a@b.test", "a@b.test"},
	} {
		k := NewKey(netip.MustParseAddr(c.addr), c.v4, c.v6, c.sender, "U@Example.Test")
		if k.Client != c.wantNet || k.Sender != c.wantSndr || k.Recipient != "u@example.test" {
			t.Errorf("NewKey(%s, /%d, /%d): %+v", c.addr, c.v4, c.v6, k)
		}
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		spec, want, err string
	}{
		{spec: "redis://127.0.0.1:6400/2", want: "[127.0.0.1:6400] db=2 master= cluster=false user= pass="},
		{spec: "redis://:secret@localhost", want: "[localhost:6379] db=0 master= cluster=false user= pass=secret"},
		{spec: "redis-sentinel://u:p%40w@10.0.0.1,10.0.0.2:26380/1?master=mx&sentinel_password=sp",
			want: "[10.0.0.1:26379 10.0.0.2:26380] db=1 master=mx cluster=false user=u pass=p@w"},
		{spec: "redis-cluster://h1:7000,h2:7001", want: "[h1:7000 h2:7001] db=0 master= cluster=true user= pass="},
		{spec: "redis-cluster://[::1]:7000", want: "[[::1]:7000] db=0 master= cluster=true user= pass="},
		{spec: "redis://h1,h2", err: "one server only"},
		{spec: "redis-sentinel://h1", err: "needs ?master=NAME"},
		{spec: "redis-cluster://h1/1", err: "only database 0"},
		{spec: "redis://h1/x", err: `database "x" is not a number`},
		{spec: "redis://h1?timeout=1", err: `unknown option "timeout"`},
		{spec: "rediss://h1", err: `unknown scheme "rediss"`},
		{spec: "127.0.0.1:6379", err: "want memory, redis://"},
	} {
		uo, desc, err := parseURL(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		got := fmt.Sprintf("%v db=%d master=%s cluster=%v user=%s pass=%s", uo.Addrs, uo.DB, uo.MasterName, uo.IsClusterMode, uo.Username, uo.Password)
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.spec, got, c.want)
		}
		if strings.Contains(desc, "secret") || strings.Contains(desc, "p@w") {
			t.Errorf("%s: description %q shows the password", c.spec, desc)
		}
	}
}
