package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// sqlSchema: the tables both servers serve, as a hosting panel keeps them.
const sqlSchema = `CREATE TABLE recipients (address VARCHAR(200) NOT NULL);
CREATE TABLE aliases (address VARCHAR(200) NOT NULL, goto VARCHAR(200));
CREATE TABLE access (address VARCHAR(200) NOT NULL, action VARCHAR(200) NOT NULL);
INSERT INTO recipients VALUES ('user@relay.test'), ('a@relay.test'), ('b@relay.test'), ('u@access.test');
INSERT INTO aliases VALUES ('alias@relay.test', 'user@relay.test'), ('team@relay.test', 'a@relay.test'),
  ('team@relay.test', 'b@relay.test'), ('team@relay.test', NULL);
INSERT INTO access VALUES ('blocked@access.test', 'REJECT no entry here');
`

// TestSQLTables runs postgate with virtual_alias_maps, relay_recipient_maps
// and a check_recipient_access table on a real PostgreSQL and a real
// MariaDB started on loopback: aliases expand (several rows joined),
// unknown recipients get 550 5.1.1, addresses built to inject SQL are
// unknown recipients and change nothing, `postgate map -q` answers from the
// database, and once the database is stopped the recipient maps answer
// 451 4.3.0 and the access table 451 4.3.5, as Postfix does.
func TestSQLTables(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"pgsql", "mysql"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			var db *harness.DBServer
			// hosts: a first host that never answers, then the server over
			// TCP; socket: the server's unix socket (for the access table).
			var hosts, socket, dbname string
			if typ == "pgsql" {
				db = harness.StartPostgres(t)
				dbname = "postgres"
				sqlExec(t, db, sqlSchema+"GRANT SELECT ON recipients, aliases, access TO postgate;")
				hosts = fmt.Sprintf("inet:127.0.0.1:%d, 127.0.0.1:%d", harness.FreePort(t), db.Port)
				// Postfix's unix: form names no port (libpq's default): the
				// connection URI names the socket directory and port.
				socket = fmt.Sprintf("postgresql:///postgres?host=%s&port=%d&user=postgate", db.Dir, db.Port)
			} else {
				db = harness.StartMariaDB(t)
				dbname = "mail"
				sqlExec(t, db, "CREATE DATABASE mail; USE mail;\n"+sqlSchema+"GRANT SELECT ON mail.* TO 'postgate'@'127.0.0.1', 'postgate'@'localhost';")
				hosts = fmt.Sprintf("inet:127.0.0.1:%d 127.0.0.1:%d", harness.FreePort(t), db.Port)
				socket = "unix:" + db.Socket
			}
			dir := t.TempDir()
			cf := func(name, hosts, query, extra string) string {
				path := filepath.Join(dir, name)
				text := fmt.Sprintf("# %s\nhosts = %s\nuser = postgate\npassword = secret\ndbname = %s\nquery = %s\n%s", name, hosts, dbname, query, extra)
				if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
				return typ + ":" + path
			}
			recipients := cf("recipients.cf", hosts, "SELECT address FROM recipients\n  WHERE address='%s'", "")
			// virtual_alias_domains is $virtual_alias_maps: resolving any
			// address looks its domain up there, and a failure is 451 4.3.0
			// before any restriction runs (as in Postfix). domain keeps
			// those lookups (keys without @) away from the database.
			virtual := cf("virtual.cf", hosts, "SELECT goto FROM aliases WHERE address='%s'", "expansion_limit = 5\ndomain = relay.test\n")
			access := cf("access.cf", socket, "SELECT action FROM access WHERE address='%u@%d'", "domain = access.test\n")

			sink := harness.StartSink(t)
			p := harness.Start(t, fmt.Sprintf(`relay_domains = relay.test, access.test
relay_recipient_maps = %s
virtual_alias_maps = %s
smtpd_recipient_restrictions = check_recipient_access %s, permit_mynetworks, reject_unauth_destination
`, recipients, virtual, access)+routes("relay.test", sink), "")

			expectMapAnswers(t, []mapAnswer{
				{"alias@relay.test", virtual, "user@relay.test\n"},
				{"team@relay.test", virtual, "a@relay.test,b@relay.test\n"},
				{"Alias@Relay.TEST", virtual, "user@relay.test\n"},
				{"blocked@access.test", access, "REJECT no entry here\n"},
			}, mapAnswer{key: "nobody@relay.test", table: recipients})

			c := harness.Dial(t, p.Addr, "")
			c.Expect(250, "EHLO client.test")
			c.Expect(250, "MAIL FROM:<s@src.test>")
			for _, r := range []struct{ rcpt, want string }{
				{"<alias@relay.test>", "250 2.1.5 Ok"},
				{"<team@relay.test>", "250 2.1.5 Ok"},
				{"<nobody@relay.test>", "550 5.1.1 <nobody@relay.test>: Recipient address rejected: User unknown in relay recipient table"},
				{"<blocked@access.test>", "554 5.7.1 <blocked@access.test>: Recipient address rejected: no entry here"},
				// Unquoted, this one would match every row.
				{`<"x' OR address LIKE '%"@relay.test>`, unknownRcpt},
				{`<"x'; DROP TABLE recipients; --"@relay.test>`, unknownRcpt},
				{`<"x\\' OR 1=1 -- "@relay.test>`, unknownRcpt},
			} {
				if code, text := c.Cmd("RCPT TO:%s", r.rcpt); !matchReply(fmt.Sprintf("%d %s", code, text), r.want) {
					t.Errorf("RCPT TO:%s: %d %s\nwant %s", r.rcpt, code, text, r.want)
				}
			}
			c.Expect(354, "DATA")
			c.Expect(250, "Subject: sql\r\n\r\nbody\r\n.")
			c.Expect(221, "QUIT")
			msgs := sink.WaitMessages(1, 10*time.Second)
			if len(msgs) != 1 {
				t.Fatalf("sink got %d messages, want 1", len(msgs))
			}
			var rcpts []string
			for _, m := range sinkArgRe.FindAllStringSubmatch(msgs[0], -1) {
				if m[1] == "Rcpt" {
					rcpts = append(rcpts, m[2])
				}
			}
			slices.Sort(rcpts)
			if want := []string{"a@relay.test", "b@relay.test", "user@relay.test"}; !slices.Equal(rcpts, want) {
				t.Errorf("sink recipients %v, want %v", rcpts, want)
			}
			if out := sqlExec(t, db, "SELECT count(*) FROM "+map[string]string{"pgsql": "recipients", "mysql": "mail.recipients"}[typ]); strings.TrimSpace(out) != "4" {
				t.Errorf("recipients table after the injection attempts: %q", out)
			}

			db.Stop()
			c = harness.Dial(t, p.Addr, "")
			c.Expect(250, "EHLO client.test")
			c.Expect(250, "MAIL FROM:<s@src.test>")
			for _, r := range []struct{ rcpt, want string }{
				{"user@relay.test", "451 4.3.0 <user@relay.test>: Temporary lookup failure"},
				{"u@access.test", "451 4.3.5 <u@access.test>: Recipient address rejected: Server configuration error"},
			} {
				if code, text := c.Cmd("RCPT TO:<%s>", r.rcpt); fmt.Sprintf("%d %s", code, text) != r.want {
					t.Errorf("database stopped: RCPT TO:<%s>: %d %s\nwant %s", r.rcpt, code, text, r.want)
				}
			}
			if out, errOut, code := mapQuery(t, "alias@relay.test", virtual); out != "" || code != 1 || !strings.Contains(errOut, "no host answered") {
				t.Errorf("map -q with the database stopped: %q, exit %d, stderr %q", out, code, errOut)
			}
		})
	}
}

// unknownRcpt matches any "User unknown in relay recipient table" reply.
const unknownRcpt = "550 5.1.1 <*>: Recipient address rejected: User unknown in relay recipient table"

// matchReply compares a reply with want, where "<*>" in want stands for
// any address.
func matchReply(got, want string) bool {
	before, after, wild := strings.Cut(want, "<*>")
	if !wild {
		return got == want
	}
	return len(got) >= len(want) && strings.HasPrefix(got, before+"<") && strings.HasSuffix(got, ">"+after)
}

// sqlExec runs SQL as the server's superuser and fails the test on error.
func sqlExec(t *testing.T, db *harness.DBServer, sql string) string {
	t.Helper()
	out, err := db.Exec(sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}
