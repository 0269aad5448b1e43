package sqltable

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"postgate/rules"
	"postgate/test/harness"
)

// startPostgres runs a private PostgreSQL with table t(k, v) readable by
// user postgate, and returns it and a function that opens a pgsql: table
// over it from the given extra .cf lines.
func startPostgres(t testing.TB) (*harness.DBServer, func(cf string) rules.Table) {
	t.Helper()
	db := harness.StartPostgres(t)
	if out, err := db.Exec(`CREATE TABLE t (k TEXT, v TEXT);
INSERT INTO t VALUES ('list@x.test', 'a@one.test'), ('list@x.test', 'b@two.test'), ('list@x.test', 'c'),
  ('big@x.test', '1'), ('big@x.test', '2'), ('big@x.test', '3'), ('user@x.test', 'u');
GRANT SELECT ON t TO postgate;`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dir := t.TempDir()
	n := 0
	return db, func(cf string) rules.Table {
		t.Helper()
		n++
		path := filepath.Join(dir, fmt.Sprintf("%d.cf", n))
		text := fmt.Sprintf("hosts = 127.0.0.1:%d\nuser = postgate\npassword = secret\ndbname = postgres\n%s", db.Port, cf)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		tbl, err := rules.Open("pgsql:" + path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tbl.(*Table).Close() })
		return tbl
	}
}

// TestLookupPgsql: result_format over several rows, expansion_limit,
// %1..%9 in a query, the obsolete query parameters, domain, and errors: an
// SQL error fails the lookup and the host is skipped afterwards; a lookup
// whose context ends fails at once and leaves the host in use.
func TestLookupPgsql(t *testing.T) {
	_, open := startPostgres(t)
	ctx := context.Background()
	for _, c := range []struct {
		name, cf, key, want string
		found               bool
		err                 string
	}{
		{name: "rows joined", cf: "query = SELECT v FROM t WHERE k='%s'\n", key: "list@x.test", want: "a@one.test,b@two.test,c", found: true},
		{name: "result_format skips values without domain", cf: "query = SELECT v FROM t WHERE k='%s'\nresult_format = smtp:[%d] for %U\n",
			key: "list@x.test", want: "smtp:[one.test] for list,smtp:[two.test] for list", found: true},
		{name: "not found", cf: "query = SELECT v FROM t WHERE k='%s'\n", key: "nobody@x.test"},
		{name: "case folded", cf: "query = SELECT v FROM t WHERE k='%s'\n", key: "User@X.Test", want: "u", found: true},
		{name: "expansion_limit", cf: "query = SELECT v FROM t WHERE k='%s'\nexpansion_limit = 2\n", key: "big@x.test",
			err: "expansion limit 2 exceeded"},
		{name: "expansion_limit not reached", cf: "query = SELECT v FROM t WHERE k='%s'\nexpansion_limit = 3\n", key: "big@x.test",
			want: "1,2,3", found: true},
		{name: "labels", cf: "query = SELECT '%2-%1-%u'\n", key: "me@mail.example.com", want: "example-com-me", found: true},
		{name: "labels lacking: no query", cf: "query = SELECT '%3'\n", key: "me@example.com"},
		{name: "obsolete parameters", cf: "table = t\nselect_field = v\nwhere_field = k\nadditional_conditions = AND v <> 'c'\n",
			key: "list@x.test", want: "a@one.test,b@two.test", found: true},
		{name: "domain listed", cf: "query = SELECT v FROM t WHERE k='%s'\ndomain = y.test, x.test\n", key: "user@x.test", want: "u", found: true},
		{name: "domain not listed", cf: "query = SELECT v FROM t WHERE k='%s'\ndomain = y.test\n", key: "user@x.test"},
		{name: "domain: a key without @", cf: "query = SELECT v FROM t WHERE k='x.test'\ndomain = x.test\n", key: "x.test"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, found, err := open(c.cf).Lookup(ctx, c.key)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("Lookup(%q) = %q, %v, %v; want error %q", c.key, v, found, err, c.err)
				}
				return
			}
			if err != nil || v != c.want || found != c.found {
				t.Errorf("Lookup(%q) = %q, %v, %v; want %q, %v", c.key, v, found, err, c.want, c.found)
			}
		})
	}

	t.Run("sql error", func(t *testing.T) {
		tbl := open("query = SELECT v FROM no_such_table WHERE k='%s'\n")
		if _, _, err := tbl.Lookup(ctx, "user@x.test"); err == nil || !strings.Contains(err.Error(), "no_such_table") {
			t.Fatalf("first lookup: %v", err)
		}
		if _, _, err := tbl.Lookup(ctx, "user@x.test"); err == nil || !strings.Contains(err.Error(), "retried later") {
			t.Fatalf("second lookup: %v, want the host skipped", err)
		}
	})

	t.Run("context ends", func(t *testing.T) {
		tbl := open("query = SELECT v FROM t, pg_sleep(1) WHERE k='%s'\n")
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, _, err := tbl.Lookup(short, "user@x.test"); err == nil || time.Since(start) > 800*time.Millisecond {
			t.Fatalf("lookup with a 100ms context: %v after %v", err, time.Since(start))
		}
		if v, _, err := tbl.Lookup(ctx, "user@x.test"); err != nil || v != "u" {
			t.Fatalf("next lookup: %q, %v; want the host still in use", v, err)
		}
	})
}

// TestDroppedTableCloses: a table dropped without Close (as a reload drops
// the previous tables) closes its connections once it is unreachable.
func TestDroppedTableCloses(t *testing.T) {
	db, _ := startPostgres(t)
	conns := func() string {
		out, err := db.Exec("SELECT count(*) FROM pg_stat_activity WHERE usename = 'postgate'")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return strings.TrimSpace(out)
	}
	path := filepath.Join(t.TempDir(), "t.cf")
	text := fmt.Sprintf("hosts = 127.0.0.1:%d\nuser = postgate\npassword = secret\ndbname = postgres\nquery = SELECT v FROM t WHERE k='%%s'\n", db.Port)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	func() {
		tbl, err := rules.Open("pgsql:" + path)
		if err != nil {
			t.Fatal(err)
		}
		if v, _, err := tbl.Lookup(context.Background(), "user@x.test"); v != "u" || err != nil {
			t.Fatalf("lookup: %q, %v", v, err)
		}
	}()
	if n := conns(); n != "1" {
		t.Fatalf("%s connections after a lookup, want 1", n)
	}
	for deadline := time.Now().Add(10 * time.Second); conns() != "0"; time.Sleep(100 * time.Millisecond) {
		runtime.GC()
		if time.Now().After(deadline) {
			t.Fatalf("%s connections remain after the table was dropped", conns())
		}
	}
}

// BenchmarkLookup: lookups per second through one pgsql: and one mysql:
// table on local servers (no cache), 4 lookups in flight.
func BenchmarkLookup(b *testing.B) {
	b.Run("pgsql", func(b *testing.B) {
		_, open := startPostgres(b)
		tbl := open("query = SELECT v FROM t WHERE k='%s'\n")
		benchLookups(b, tbl)
	})
	b.Run("mysql", func(b *testing.B) {
		db := harness.StartMariaDB(b)
		if out, err := db.Exec(`CREATE DATABASE m; CREATE TABLE m.t (k VARCHAR(100) PRIMARY KEY, v TEXT);
INSERT INTO m.t VALUES ('user@x.test', 'u'); GRANT SELECT ON m.* TO 'postgate'@'127.0.0.1';`); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		path := filepath.Join(b.TempDir(), "m.cf")
		text := fmt.Sprintf("hosts = 127.0.0.1:%d\nuser = postgate\npassword = secret\ndbname = m\nquery = SELECT v FROM t WHERE k='%%s'\n", db.Port)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		tbl, err := rules.Open("mysql:" + path)
		if err != nil {
			b.Fatal(err)
		}
		defer tbl.(*Table).Close()
		benchLookups(b, tbl)
	})
}

func benchLookups(b *testing.B, tbl rules.Table) {
	ctx := context.Background()
	if v, _, err := tbl.Lookup(ctx, "user@x.test"); err != nil || v != "u" {
		b.Fatalf("lookup: %q, %v", v, err)
	}
	b.SetParallelism(2) // 2 cores: 4 goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := tbl.Lookup(ctx, "user@x.test"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
