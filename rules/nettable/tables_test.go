package nettable_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/greylist/redistest"
	"postgate/rules"
	"postgate/rules/nettable/nettabletest"
)

// want is one lookup and its expected outcome; err is a substring of the
// error, "" for none.
type want struct {
	key, value string
	found      bool
	err        string
}

func check(t *testing.T, tab rules.Table, cases []want) {
	t.Helper()
	for _, w := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, found, err := tab.Lookup(ctx, w.key)
		cancel()
		if w.err == "" && err != nil || w.err != "" && (err == nil || !strings.Contains(err.Error(), w.err)) {
			t.Errorf("%v: lookup %q: error %v, want %q", tab, w.key, err, w.err)
			continue
		}
		if v != w.value || found != w.found {
			t.Errorf("%v: lookup %q = %q, %v; want %q, %v", tab, w.key, v, found, w.value, w.found)
		}
	}
}

func open(t *testing.T, spec string) rules.Table {
	t.Helper()
	tab, err := rules.Open(spec)
	if err != nil {
		t.Fatalf("open %s: %v", spec, err)
	}
	return tab
}

func writeCf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "table.cf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTCPTable: values and keys cross the %XX encoding both ways; 500 is
// "not found", 400 an error; one connection serves many lookups and is
// replaced after a 400 or when the server dropped it; a server that is
// down is an error.
func TestTCPTable(t *testing.T) {
	t.Parallel()
	srv := nettabletest.TCPTable(t, func(key string) string {
		switch key {
		case "User@Example.com":
			return "200 " + nettabletest.TCPValue("REJECT 100% not here")
		case "with space":
			return "200 spaced"
		case "busy":
			return "400 try again"
		}
		return "500 no such key"
	})
	tab := open(t, "tcp:"+srv.Addr)
	check(t, tab, []want{
		{key: "User@Example.com", value: "REJECT 100% not here", found: true},
		{key: "user@example.com"},
		{key: "with space", value: "spaced", found: true},
		{key: "nobody"},
	})
	if n := srv.Conns(); n != 1 {
		t.Errorf("%d connections for 4 lookups, want 1 (reused)", n)
	}
	check(t, tab, []want{{key: "busy", err: "temporary error"}, {key: "with space", value: "spaced", found: true}})
	if n := srv.Conns(); n != 2 {
		t.Errorf("%d connections, want 2: Postfix drops the connection after a 400", n)
	}
	srv.Drop()
	check(t, tab, []want{{key: "with space", value: "spaced", found: true}})
	srv.Stop()
	// Any error: once the port is free, another process may take it.
	check(t, tab, []want{{key: "with space", err: "tcp table server " + srv.Addr}})
}

// TestSocketmap: the request carries the map name; OK and NOTFOUND
// answer, TEMP, TIMEOUT and PERM are errors; inet and unix sockets;
// connections reused; a server that is down is an error.
func TestSocketmap(t *testing.T) {
	t.Parallel()
	answer := func(name, key string) string {
		switch {
		case name != "virtual":
			return "PERM no map " + name
		case key == "alias@Example.com":
			return "OK target@example.net, other@example.net"
		case key == "slow":
			return "TIMEOUT backend"
		case key == "restart":
			return "TEMP restarting"
		}
		return "NOTFOUND "
	}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			srv := nettabletest.Socketmap(t, network, answer)
			endpoint := "inet:" + srv.Addr
			if network == "unix" {
				endpoint = "unix:" + srv.Addr
			}
			tab := open(t, "socketmap:"+endpoint+":virtual")
			check(t, tab, []want{
				{key: "alias@Example.com", value: "target@example.net, other@example.net", found: true},
				{key: "alias@example.com"},
				{key: "slow", err: "timeout error"},
				{key: "restart", err: "temporary error"},
			})
			check(t, open(t, "socketmap:"+endpoint+":other"), []want{{key: "x", err: "permanent error"}})
			if n := srv.Conns(); n != 2 {
				t.Errorf("%d connections for two tables, want 2 (one each, reused)", n)
			}
			srv.Drop()
			check(t, tab, []want{{key: "alias@Example.com", value: "target@example.net, other@example.net", found: true}})
			srv.Stop()
			check(t, tab, []want{{key: "alias@Example.com", err: "socketmap server"}})
		})
	}
}

// TestNoAnswer: a server that accepts and never answers fails the lookup
// when the caller's deadline passes.
func TestNoAnswer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := nettabletest.TCPTable(t, func(string) string { <-release; return "500 late" })
	defer close(release)
	tab := open(t, "tcp:"+srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := tab.Lookup(ctx, "key"); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("lookup on a silent server: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("lookup took %v past a 300 ms deadline", d)
	}
}

// TestMemcache against a real memcached: key_format and domain as
// memcache_table(5) define them, keys folded to lower case, white space
// and data_size_limit, a server that is down.
func TestMemcache(t *testing.T) {
	t.Parallel()
	mc := nettabletest.StartMemcached(t)
	mc.Set("pg:user@example.com", "OK from memcache")
	mc.Set("pg:big@example.com", strings.Repeat("x", 21))
	mc.Set("pg:user@example.org", "OK .org")
	mc.Set("pg:empty@example.com", "")
	mc.Set("other:user@example.com", "wrong prefix")
	tab := open(t, "memcache:"+writeCf(t, `# memcache_table(5)
memcache = inet:`+mc.Addr+`
key_format = pg:%s
domain = example.com,
  example.org
data_size_limit = 20
timeout = 1
ttl = 60
`))
	check(t, tab, []want{
		{key: "user@example.com", value: "OK from memcache", found: true},
		{key: "USER@Example.COM", value: "OK from memcache", found: true},
		{key: "empty@example.com", value: "", found: true},
		{key: "user@example.org", value: "OK .org", found: true},
		{key: "nobody@example.com"},
		{key: "user@example.net"},       // outside domain: no query
		{key: "with space@example.com"}, // memcached cannot take it
		{key: "big@example.com", err: "data_size_limit is 20"},
	})
	mc.Stop()
	check(t, tab, []want{{key: "user@example.com", err: "memcache server " + mc.Addr}})

	for text, msg := range map[string]string{
		"memcache = localhost:11211\n":     "need inet:host:port or unix:/path",
		"key_format = %x\n":                "line 1: key_format: invalid template",
		"max_try = 0\n":                    "line 1: max_try: bad value",
		"backup = texthash:/etc/aliases\n": "backup database is not supported",
		"timeout = soon\n":                 "line 1: timeout",
	} {
		if _, err := rules.Open("memcache:" + writeCf(t, text)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("open with %q: %v, want %q", text, err, msg)
		}
	}
}

// TestRedis against a real redis-server: GET and HGET, key_format,
// database and password, a server that is down.
func TestRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for _, cmd := range [][]string{
		{"-n", "2", "SET", "alias:user@example.com", "target@example.net"},
		{"-n", "2", "HSET", "domain:example.com", "action", "OK"},
		{"-n", "0", "SET", "alias:user@example.com", "in the wrong database"},
		{"CONFIG", "SET", "requirepass", "s3cret"},
	} {
		if out, err := srv.CLI(cmd...); err != nil || strings.Contains(out, "ERR") {
			t.Fatalf("redis-cli %v: %v %s", cmd, err, out)
		}
	}
	common := "address = " + srv.Addr + "\ndb = 2\npassword = s3cret\ntimeout = 1\n"
	get := open(t, "redis:"+writeCf(t, common+"key_format = alias:%s\n"))
	check(t, get, []want{
		{key: "User@Example.com", value: "target@example.net", found: true},
		{key: "nobody@example.com"},
	})
	hget := open(t, "redis:"+writeCf(t, common+"key_format = domain:%d\nhash_field = action\ndomain = example.com\n"))
	check(t, hget, []want{
		{key: "anyone@example.com", value: "OK", found: true},
		{key: "anyone@example.org"},
		{key: "postmaster"},
	})
	wrongPass := open(t, "redis:"+writeCf(t, "address = "+srv.Addr+"\npassword = wrong\nkey_format = alias:%s\n"))
	check(t, wrongPass, []want{{key: "user@example.com", err: "redis server"}})

	// README's example, pointed at this server, loads without warnings
	// and reads what it says.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, _ := strings.Cut(string(readme), "# /etc/postgate/redis.cf")
	example, _, _ = strings.Cut(example, "```")
	_, example, _ = strings.Cut(example, "\n")
	example = strings.ReplaceAll(example, "127.0.0.1:6379", srv.Addr)
	example = strings.ReplaceAll(example, "\n  ", "\n") // indented in a list item
	example = strings.TrimSpace(example) + "\n"
	if out, err := srv.CLI("-a", "s3cret", "HSET", "virtual:info@example.com", "target", "team@example.net"); err != nil {
		t.Fatal(err, out)
	}
	var warnings []string
	fromReadme, err := rules.OpenWith("redis:"+writeCf(t, example+"password = s3cret\n"),
		rules.OpenOptions{Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil || len(warnings) > 0 || !strings.Contains(example, "hash_field") {
		t.Fatalf("README example %q: %v %q", example, err, warnings)
	}
	check(t, fromReadme, []want{{key: "info@example.com", value: "team@example.net", found: true}})

	srv.Stop()
	check(t, get, []want{{key: "user@example.com", err: "redis server " + srv.Addr}})
}
