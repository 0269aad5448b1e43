package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/rules"
	_ "postgate/rules/ldaptable"
	_ "postgate/rules/sqltable"
	"postgate/test/harness"
)

// BenchmarkTableLookups: lookups per second through a database or
// directory table (PostgreSQL, OpenLDAP's slapd), without and with
// postgate's table cache (the daemon's defaults: found answers kept 60 s,
// "not found" 10 s), on a server started on loopback.
// Each leg opens its table anew, so the cache starts empty. Another table
// type gets its leg by starting its server and calling benchTableLookups
// with its spec and keys.
func BenchmarkTableLookups(b *testing.B) {
	b.Run("pgsql", func(b *testing.B) {
		db := harness.StartPostgres(b)
		keys := benchKeys()
		var rows []string
		for i, k := range keys {
			if i%2 == 0 {
				rows = append(rows, fmt.Sprintf("('%s', 'OK')", k))
			}
		}
		if out, err := db.Exec("CREATE TABLE access (address TEXT PRIMARY KEY, action TEXT NOT NULL);\n" +
			"INSERT INTO access VALUES " + strings.Join(rows, ", ") + ";\nGRANT SELECT ON access TO postgate;"); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		path := filepath.Join(b.TempDir(), "access.cf")
		cf := fmt.Sprintf("hosts = 127.0.0.1:%d\nuser = postgate\npassword = secret\ndbname = postgres\nquery = SELECT action FROM access WHERE address='%%s'\n", db.Port)
		if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
			b.Fatal(err)
		}
		benchTableLookups(b, "pgsql:"+path, keys)
	})
	b.Run("ldap", func(b *testing.B) {
		keys := benchKeys()
		dir := b.TempDir()
		ldif := filepath.Join(dir, "bench.ldif")
		var sb strings.Builder
		sb.WriteString("dn: dc=example,dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n" +
			"dn: cn=postgate,dc=example,dc=test\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: postgate\nuserPassword: secret\n")
		for i, k := range keys {
			if i%2 == 0 {
				fmt.Fprintf(&sb, "\ndn: uid=u%d,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: mailRecipient\nuid: u%d\ncn: U\nsn: U\nmail: %s\nproxyAddresses: smtp:%s\n", i, i, k, k)
			}
		}
		if err := os.WriteFile(ldif, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		data := "../testdata/ldap/"
		srv := harness.StartSlapd(b, "dc=example,dc=test", []string{data + "proxyaddresses.schema"}, data+"access.conf", ldif)
		path := filepath.Join(dir, "ad.cf")
		cf := fmt.Sprintf("server_host = ldap://127.0.0.1:%d\nsearch_base = dc=example,dc=test\nbind_dn = cn=postgate,dc=example,dc=test\nbind_pw = secret\n"+
			"query_filter = proxyAddresses=smtp:%%s\nresult_attribute = mail\n", srv.Port)
		if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
			b.Fatal(err)
		}
		benchTableLookups(b, "ldap:"+path, keys)
	})
}

// benchKeys are the keys the benchmark looks up; tables hold a value for
// the even ones, so half the lookups find nothing, as most access-table
// lookups do.
func benchKeys() []string {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user%d@bench.test", i)
	}
	return keys
}

// Each pass: benchWorkers lookups in flight (2 cores), each worker going
// over every key benchRounds times from its own starting point, so each
// key is asked 40 times within its TTL: with the cache, 39 of them are
// answered from memory.
const (
	benchWorkers = 4
	benchRounds  = 10
)

// benchTableLookups reports lookups/s through spec in three legs: no
// cache; the cache over keys that repeat; and the cache with every key
// new (never a hit: its cost against the no-cache leg).
func benchTableLookups(b *testing.B, spec string, keys []string) {
	cache := rules.CacheOptions{TTL: 60 * time.Second, NegativeTTL: 10 * time.Second, Timeout: 10 * time.Second}
	for _, leg := range []struct {
		name   string
		cache  rules.CacheOptions
		unique bool
	}{
		{"nocache", rules.CacheOptions{}, false},
		{"cache", cache, false},
		{"cache-no-hits", cache, true},
	} {
		b.Run(leg.name, func(b *testing.B) {
			var elapsed time.Duration
			lookups, pass := 0, 0
			for b.Loop() {
				tbl, err := rules.OpenWith(spec, rules.OpenOptions{Cache: leg.cache})
				if err != nil {
					b.Fatal(err)
				}
				pass++
				start := time.Now()
				lookups += lookupPass(b, tbl, keys, leg.unique, pass)
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(lookups)/elapsed.Seconds(), "lookups/s")
		})
	}
}

// lookupPass runs one pass, checking each answer (the even keys are
// found), and returns the number of lookups; unique makes every key one no
// table holds.
func lookupPass(b *testing.B, tbl rules.Table, keys []string, unique bool, pass int) int {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range benchWorkers {
		wg.Go(func() {
			for r := range benchRounds {
				for i := range keys {
					j := (i + w*len(keys)/benchWorkers) % len(keys)
					k := keys[j]
					if unique {
						k = fmt.Sprintf("%d.%d.%d.%s", pass, w, r, k)
					}
					_, found, err := tbl.Lookup(ctx, k)
					if err != nil || found != (j%2 == 0 && !unique) {
						b.Errorf("Lookup(%q): found %v, %v", k, found, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return benchWorkers * benchRounds * len(keys)
}
