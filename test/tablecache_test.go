package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestTableCache runs postgate with pgsql: tables on a real PostgreSQL and
// postgate_table_cache_ttl = 15s, postgate_table_cache_negative_ttl = 5s,
// postgate_table_lookup_timeout = 2s. A changed row is not seen until its
// answer's TTL has passed (a found answer's, then a "not found" one's); a
// query slower than the bound answers 451 4.3.5 at the bound; a reload
// starts with empty caches; and with the database stopped, a cached answer
// still serves while an uncached key gets 451 4.3.0, as without a cache.
func TestTableCache(t *testing.T) {
	t.Parallel()
	const ttl, negativeTTL = 15 * time.Second, 5 * time.Second
	db := harness.StartPostgres(t)
	sqlExec(t, db, `CREATE TABLE recipients (address TEXT NOT NULL);
CREATE TABLE access (address TEXT NOT NULL, action TEXT NOT NULL);
INSERT INTO recipients VALUES ('user@relay.test');
INSERT INTO access VALUES ('a@access.test', 'REJECT one');
GRANT SELECT ON recipients, access TO postgate;`)
	dir := t.TempDir()
	cf := func(name, query, domain string) string {
		path := filepath.Join(dir, name)
		text := fmt.Sprintf("hosts = 127.0.0.1:%d\nuser = postgate\npassword = secret\ndbname = postgres\nquery = %s\ndomain = %s\n", db.Port, query, domain)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return "pgsql:" + path
	}
	recipients := cf("recipients.cf", "SELECT address FROM recipients WHERE address='%s'", "relay.test")
	access := cf("access.cf", "SELECT action FROM access WHERE address='%s'", "access.test")
	// Answers after 6 s, past the 2 s bound.
	slow := cf("slow.cf", "SELECT 'REJECT slow' FROM pg_sleep(6) WHERE '%s' <> ''", "slow.test")
	p := harness.Start(t, fmt.Sprintf(`relay_recipient_maps = %s
smtpd_recipient_restrictions = check_recipient_access %s, check_recipient_access %s, permit_mynetworks, reject_unauth_destination
postgate_table_cache_ttl = %v
postgate_table_cache_negative_ttl = %v
postgate_table_lookup_timeout = 2s
`, recipients, access, slow, ttl, negativeTTL), "")

	c := harness.Dial(t, p.Addr, "")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	rcpt := func(when, addr, want string) {
		t.Helper()
		if code, text := c.Cmd("RCPT TO:<%s>", addr); fmt.Sprintf("%d %s", code, text) != want {
			t.Errorf("%s: RCPT TO:<%s>: %d %s\nwant %s", when, addr, code, text, want)
		}
	}
	// within fails the test when a step meant to fall inside a TTL did
	// not (a machine too slow for this test, not a cache that expired).
	within := func(start time.Time, limit time.Duration, what string) {
		t.Helper()
		if d := time.Since(start); d >= limit {
			t.Fatalf("%s took %v, past the %v it had to fit in", what, d, limit)
		}
	}
	sleepUntil := func(tm time.Time) { time.Sleep(time.Until(tm)) }
	const rejectA = "554 5.7.1 <a@access.test>: Recipient address rejected: "
	const okRcpt = "250 2.1.5 Ok"

	filled := time.Now()
	rcpt("first lookups", "a@access.test", rejectA+"one")
	rcpt("first lookups", "b@access.test", okRcpt)
	sqlExec(t, db, `UPDATE access SET action = 'REJECT two' WHERE address = 'a@access.test';
INSERT INTO access VALUES ('b@access.test', 'REJECT bee');`)
	rcpt("rows changed, answers cached", "a@access.test", rejectA+"one")
	rcpt("rows changed, answers cached", "b@access.test", okRcpt)
	within(filled, negativeTTL, "the lookups before and after the change")

	sleepUntil(filled.Add(negativeTTL + 500*time.Millisecond))
	rcpt("past the negative TTL", "b@access.test", "554 5.7.1 <b@access.test>: Recipient address rejected: bee")
	rcpt("past the negative TTL", "a@access.test", rejectA+"one")

	start := time.Now()
	rcpt("a query past the lookup timeout", "x@slow.test", "451 4.3.5 <x@slow.test>: Recipient address rejected: Server configuration error")
	if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("the slow lookup answered after %v, want the 2s bound", d)
	}
	if log := p.Log(`no answer within 2s`); !strings.Contains(log, `lookup of "x@slow.test": no answer within 2s`) {
		t.Errorf("no log line for the lookup past its bound:\n%s", log)
	}
	within(filled, ttl, "the lookups past the negative TTL")

	sleepUntil(filled.Add(ttl + 500*time.Millisecond))
	rcpt("past the TTL", "a@access.test", rejectA+"two")

	// A reload opens the tables again, with empty caches.
	sqlExec(t, db, "UPDATE access SET action = 'REJECT three' WHERE address = 'a@access.test'")
	if out, err := p.Run("reload"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p.Log("reload -- ")
	c.Expect(221, "QUIT")
	c = harness.Dial(t, p.Addr, "")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	rcpt("after a reload", "a@access.test", rejectA+"three")

	filled = time.Now()
	rcpt("database up", "user@relay.test", okRcpt)
	db.Stop()
	rcpt("database stopped, answer cached", "user@relay.test", okRcpt)
	rcpt("database stopped, key not cached", "nobody@relay.test", "451 4.3.0 <nobody@relay.test>: Temporary lookup failure")
	within(filled, ttl, "the lookups around stopping the database")
}
