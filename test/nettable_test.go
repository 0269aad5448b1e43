package test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"postgate/greylist/redistest"
	"postgate/rules/nettable/nettabletest"
	"postgate/test/harness"
)

// netTable starts one server of a network table type holding entries and
// returns the table's spec and a function that stops the server.
type netTable func(t *testing.T, entries map[string]string) (spec string, stop func())

var netTables = map[string]netTable{
	"memcache": func(t *testing.T, entries map[string]string) (string, func()) {
		mc := nettabletest.StartMemcached(t)
		for k, v := range entries {
			mc.Set("pg:"+k, v)
		}
		cf := writeFile(t, t.TempDir(), "memcache.cf", "memcache = inet:"+mc.Addr+"\nkey_format = pg:%s\n")
		return "memcache:" + cf, mc.Stop
	},
	"redis": func(t *testing.T, entries map[string]string) (string, func()) {
		srv := redistest.Start(t)
		for k, v := range entries {
			if out, err := srv.CLI("HSET", "pg:"+k, "value", v); err != nil {
				t.Fatalf("redis-cli HSET: %v %s", err, out)
			}
		}
		cf := writeFile(t, t.TempDir(), "redis.cf", "address = "+srv.Addr+"\nkey_format = pg:%s\nhash_field = value\n")
		return "redis:" + cf, srv.Stop
	},
	"tcp": func(t *testing.T, entries map[string]string) (string, func()) {
		srv := nettabletest.TCPTable(t, func(key string) string {
			if v, ok := entries[key]; ok {
				return "200 " + nettabletest.TCPValue(v)
			}
			return "500 not found"
		})
		return "tcp:" + srv.Addr, srv.Stop
	},
	"socketmap": func(t *testing.T, entries map[string]string) (string, func()) {
		srv := nettabletest.Socketmap(t, "tcp", func(name, key string) string {
			if v, ok := entries[key]; ok && name == "pg" {
				return "OK " + v
			}
			return "NOTFOUND "
		})
		return "socketmap:inet:" + srv.Addr + ":pg", srv.Stop
	},
}

// TestNetworkTables: check_recipient_access and virtual_alias_maps answer
// through each network table type, and postgate map -q reads them; a
// server that is down fails the lookup as Postfix's smtpd_check.c does
// (451 4.3.0 Temporary lookup failure for a recipient validation table,
// 451 4.3.5 Server configuration error for an access table), never as
// "not found".
func TestNetworkTables(t *testing.T) {
	t.Parallel()
	for typ, start := range netTables {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			access, stopAccess := start(t, map[string]string{"blocked@relay.test": "REJECT blocked by " + typ})
			virtual, stopVirtual := start(t, map[string]string{"info@alias.test": "dest@relay.test"})
			p := harness.Start(t, rejectUnauth+"smtpd_recipient_restrictions = check_recipient_access "+access+
				"\nvirtual_alias_domains = alias.test\nvirtual_alias_maps = "+virtual+"\n", "")
			rcpt := func(to string) string {
				c := harness.Dial(t, p.Addr, outside)
				defer c.Conn.Close()
				c.Expect(250, "EHLO client.src.test")
				c.Expect(250, "MAIL FROM:<s@src.test>")
				code, text := c.Cmd("RCPT TO:<%s>", to)
				c.Cmd("QUIT")
				return fmt.Sprintf("%d %s", code, text)
			}
			expect := func(to, want string) {
				t.Helper()
				if got := rcpt(to); got != want {
					t.Errorf("RCPT TO:<%s>:\ngot  %s\nwant %s", to, got, want)
				}
			}
			expect("blocked@relay.test", "554 5.7.1 <blocked@relay.test>: Recipient address rejected: blocked by "+typ)
			expect("other@relay.test", "250 2.1.5 Ok")
			expect("nobody@alias.test", "550 5.1.1 <nobody@alias.test>: Recipient address rejected: User unknown in virtual alias table")
			id := sendGoSMTP(t, p.Addr, "s@src.test", "info@alias.test", []byte("Subject: alias\r\n\r\nx\r\n"))
			if r := queueJSON(t, p)[id].Recipients; len(r) != 1 || r[0].Address != "dest@relay.test" {
				t.Errorf("virtual_alias_maps = %s: queued for %+v, want dest@relay.test", virtual, r)
			}
			if out, err := exec.Command(harness.Binary(t), "map", "-q", "blocked@relay.test", access).CombinedOutput(); err != nil ||
				string(out) != "REJECT blocked by "+typ+"\n" {
				t.Errorf("postgate map -q blocked@relay.test %s: %v %q", access, err, out)
			}

			// Keys not asked before: answers already given are served
			// from the table cache for their TTL (TestTableCache).
			stopVirtual()
			expect("info2@alias.test", "451 4.3.0 <info2@alias.test>: Temporary lookup failure")
			stopAccess()
			expect("other2@relay.test", "451 4.3.5 <other2@relay.test>: Recipient address rejected: Server configuration error")
			const warning = "warning: " // the log says which table failed
			if log := p.Log(access); !strings.Contains(log, warning) || !strings.Contains(log, access) {
				t.Errorf("mail log does not name the failed table %s:\n%s", access, log)
			}
			cmd := exec.Command(harness.Binary(t), "map", "-q", "blocked@relay.test", access)
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "postgate: fatal: table "+access) {
				t.Errorf("postgate map -q with the server down: exit %d, %q; want exit 1 and the error", cmd.ProcessState.ExitCode(), out)
			}
		})
	}
}
