package ldaptable

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/rules"
	"postgate/test/harness"
)

// testdata is the directory the end-to-end tests use too.
const testdata = "../../test/testdata/ldap/"

// startSlapd runs a private slapd with the test directory, and returns it
// and a function that opens an ldap: table from .cf lines (after a
// server_host, search_base and bind for it).
func startSlapd(t testing.TB) (*harness.LDAPServer, func(cf string) rules.Table) {
	t.Helper()
	srv := harness.StartSlapd(t, "dc=example,dc=test", []string{testdata + "proxyaddresses.schema"}, testdata+"access.conf", testdata+"directory.ldif")
	dir := t.TempDir()
	n := 0
	return srv, func(cf string) rules.Table {
		t.Helper()
		n++
		text := fmt.Sprintf("server_host = ldap://127.0.0.1:%d\nsearch_base = dc=example,dc=test\nversion = 3\n"+
			"bind_dn = cn=postgate,dc=example,dc=test\nbind_pw = secret\n%s", srv.Port, cf)
		tbl, err := rules.Open("ldap:" + writeCf(t, dir, n, text))
		if err != nil {
			t.Fatal(err)
		}
		return tbl
	}
}

func writeCf(t testing.TB, dir string, n int, text string) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("%d.cf", n))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The ldap_table(5) semantics against a real slapd.
func TestLookup(t *testing.T) {
	t.Parallel()
	srv, open := startSlapd(t)
	ctx := context.Background()
	const ad = "query_filter = proxyAddresses=smtp:%s\n"
	for _, c := range []struct {
		name, cf, key, want string
		found               bool
		err                 string
	}{
		{name: "proxyAddresses", cf: ad + "result_attribute = mail\n", key: "user@example.test", want: "primary@example.test", found: true},
		{name: "primary in capitals, key folded", cf: ad + "result_attribute = mail\n", key: "PRIMARY@Example.Test", want: "primary@example.test", found: true},
		{name: "unknown", cf: ad + "result_attribute = mail\n", key: "nobody@example.test"},
		{name: "default result_attribute maildrop is absent", cf: ad, key: "user@example.test"},
		{name: "values joined with commas", cf: ad + "result_attribute = proxyAddresses\n", key: "user@example.test",
			want: "SMTP:Primary@example.test,smtp:user@example.test,X500:/o=Example/ou=people/cn=user", found: true},
		{name: "result_format", cf: ad + "result_attribute = mail, uid\nresult_format = smtp:[%d] %u for %U\n", key: "user@example.test",
			want: "smtp:[example.test] primary for user", found: true},
		{name: "query in parentheses, %u %d", cf: "query_filter = (&(uid=%u)(mail=*@%d))\nresult_attribute = uid\n", key: "other@example.test", want: "other", found: true},
		{name: "key without the domain the filter needs", cf: "query_filter = (mail=*@%d)\nresult_attribute = uid\n", key: "other"},
		{name: "anonymous cannot search addresses", cf: ad + "result_attribute = mail\nbind = no\n", key: "user@example.test"},
		{name: "wrong password", cf: ad + "bind_pw = wrong\n", key: "user@example.test", err: `bind as "cn=postgate,dc=example,dc=test"`},
		{name: "domain filter", cf: ad + "result_attribute = mail\ndomain = other.test\n", key: "user@example.test"},
		{name: "static group members (DNs)", cf: ad + "result_attribute = mail\nspecial_result_attribute = member\n", key: "team@example.test",
			want: "team-list@example.test,primary@example.test,other@example.test", found: true},
		{name: "members are leaves", cf: ad + "result_attribute =\nleaf_result_attribute = mail\nspecial_result_attribute = member\n", key: "team@example.test",
			want: "primary@example.test,other@example.test", found: true},
		{name: "terminal attribute stops expansion", cf: ad + "result_attribute = mail\nterminal_result_attribute = cn\nspecial_result_attribute = member\n", key: "team@example.test",
			want: "team", found: true},
		{name: "dynamic group (LDAP URL)", cf: ad + "result_attribute = mail\nspecial_result_attribute = labeledURI\n", key: "everyone@example.test",
			want: "primary@example.test,other@example.test", found: true},
		{name: "recursion limit", cf: ad + "result_attribute = mail\nspecial_result_attribute = member\nrecursion_limit = 1\n", key: "team@example.test",
			err: "recursion limit 1 exceeded"},
		{name: "expansion limit", cf: ad + "result_attribute = mail\nspecial_result_attribute = member\nexpansion_limit = 2\n", key: "team@example.test",
			err: "expansion limit 2 exceeded"},
		{name: "size limit", cf: "query_filter = (|(uid=%u)(objectClass=inetOrgPerson))\nresult_attribute = uid\nsize_limit = 1\n", key: "user@example.test",
			err: "Size Limit Exceeded"},
		{name: "scope one", cf: ad + "result_attribute = mail\nsearch_base = ou=people,dc=example,dc=test\nscope = one\n", key: "user@example.test", want: "primary@example.test", found: true},
		{name: "scope base misses", cf: ad + "result_attribute = mail\nscope = base\n", key: "user@example.test"},
		{name: "dynamic base that does not exist", cf: "search_base = uid=%u,ou=people,dc=example,dc=test\nscope = base\nquery_filter = (objectClass=*)\nresult_attribute = mail\n",
			key: "nobody@example.test"},
		{name: "dynamic base", cf: "search_base = uid=%u,ou=people,dc=example,dc=test\nscope = base\nquery_filter = (objectClass=*)\nresult_attribute = mail\n",
			key: "other@example.test", want: "other@example.test", found: true},
		{name: "dynamic base quoted as a DN", cf: "search_base = uid=%u,ou=people,dc=example,dc=test\nscope = base\nquery_filter = (objectClass=*)\nresult_attribute = mail\n",
			key: "other,ou=people@example.test"},
		{name: "static base that does not exist", cf: ad + "search_base = ou=nowhere,dc=example,dc=test\n", key: "user@example.test", err: "No Such Object"},
		// Unescaped, each of these would match user@example.test.
		{name: "wildcard", cf: ad + "result_attribute = mail\n", key: "*@example.test"},
		{name: "filter injection", cf: ad + "result_attribute = mail\n", key: "x)(proxyAddresses=*"},
		{name: "backslash", cf: ad + "result_attribute = mail\n", key: `\2a@example.test`},
		{name: "NUL", cf: ad + "result_attribute = mail\n", key: "user@example.test\x00)(uid=*"},
		{name: "not UTF-8", cf: ad + "result_attribute = mail\n", key: "us\xffer@example.test"},
		{name: "next server", cf: fmt.Sprintf("%sresult_attribute = mail\nserver_host = ldap://127.0.0.1:%d, 127.0.0.1:%d\n", ad, harness.FreePort(t), srv.Port),
			key: "user@example.test", want: "primary@example.test", found: true},
		{name: "no server answers", cf: fmt.Sprintf("%sserver_host = 127.0.0.1:%d ldap://127.0.0.1:%d\n", ad, harness.FreePort(t), harness.FreePort(t)),
			key: "user@example.test", err: "connection refused"},
		{name: "plain host name and server_port", cf: fmt.Sprintf("%sresult_attribute = mail\nserver_host = 127.0.0.1\nserver_port = %d\n", ad, srv.Port),
			key: "user@example.test", want: "primary@example.test", found: true},
		{name: "ldaps", cf: fmt.Sprintf("%sresult_attribute = mail\nserver_host = ldaps://localhost:%d\ntls_require_cert = yes\ntls_ca_cert_file = %s\n", ad, srv.TLSPort, srv.CAFile),
			key: "user@example.test", want: "primary@example.test", found: true},
		{name: "ldaps, CA in a directory with other files", cf: fmt.Sprintf("%sresult_attribute = mail\nserver_host = ldaps://127.0.0.1:%d\ntls_require_cert = yes\ntls_ca_cert_dir = %s\n", ad, srv.TLSPort, filepath.Dir(srv.CAFile)),
			key: "user@example.test", want: "primary@example.test", found: true},
		{name: "ldaps, certificate not checked by default", cf: fmt.Sprintf("%sresult_attribute = mail\nserver_host = ldaps://127.0.0.1:%d\n", ad, srv.TLSPort),
			key: "user@example.test", want: "primary@example.test", found: true},
		{name: "ldaps, unknown CA", cf: fmt.Sprintf("%sserver_host = ldaps://127.0.0.1:%d\ntls_require_cert = yes\n", ad, srv.TLSPort),
			key: "user@example.test", err: "certificate signed by unknown authority"},
		{name: "start_tls", cf: fmt.Sprintf("%sresult_attribute = mail\nserver_host = ldap://127.0.0.1:%d\nstart_tls = yes\ntls_require_cert = yes\ntls_ca_cert_file = %s\n", ad, srv.Port, srv.CAFile),
			key: "user@example.test", want: "primary@example.test", found: true},
		{name: "start_tls, unknown CA", cf: fmt.Sprintf("%sserver_host = ldap://127.0.0.1:%d\nstart_tls = yes\ntls_require_cert = yes\n", ad, srv.Port),
			key: "user@example.test", err: "STARTTLS: LDAP Result Code 200 \"Network Error\": TLS handshake failed"},
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
}

// README's example, pointed at the test server, loads without warnings
// and finds what it says.
func TestReadmeExample(t *testing.T) {
	t.Parallel()
	srv, _ := startSlapd(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, _ := strings.Cut(string(readme), "# /etc/postfix/ad.cf")
	example, _, _ = strings.Cut(example, "```")
	_, example, _ = strings.Cut(example, "\n")
	example = strings.NewReplacer(
		"ldaps://dc1.example.com", fmt.Sprintf("ldaps://localhost:%d", harness.FreePort(t)),
		"ldaps://dc2.example.com", fmt.Sprintf("ldaps://localhost:%d", srv.TLSPort),
		"cn=postfix,ou=services,dc=example,dc=com", "cn=postgate,dc=example,dc=test",
		"dc=example,dc=com", "dc=example,dc=test",
		"/etc/ssl/certs/example-ca.pem", srv.CAFile,
	).Replace(example)
	var warnings []string
	tbl, err := rules.OpenWith("ldap:"+writeCf(t, t.TempDir(), 1, example), rules.OpenOptions{Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil || len(warnings) > 0 || !strings.Contains(example, "proxyAddresses=smtp:%s") {
		t.Fatalf("README example %q: %v %q", example, err, warnings)
	}
	if v, found, err := tbl.Lookup(context.Background(), "user@example.test"); v != "primary@example.test" || !found || err != nil {
		t.Errorf("README example: Lookup = %q, %v, %v", v, found, err)
	}
}

// Load errors name the file, line and parameter; unknown and unused
// parameters are warned about.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct{ cf, err string }{
		{"version = 2\n", "line 1: version: LDAP version 2 is not supported"},
		{"bind = sasl\n", "line 1: bind: SASL binds are not supported"},
		{"bind = maybe\n", `line 1: bind: unsupported value "maybe"`},
		{"query_filter = (uid=%s\n", "line 1: query_filter: \"(uid=%s\" is not a valid LDAP filter"},
		{"query_filter = (uid=%x)\n", "line 1: query_filter: invalid template"},
		{"\nsearch_base = ou=%q\n", "line 2: search_base: invalid template"},
		{"server_host = http://x\n", `line 1: server_host: "http://x": unknown scheme`},
		{"server_host = ldaps://x\nstart_tls = yes\n", "line 2: start_tls: start_tls = yes with ldaps://x"},
		{"timeout = 0\n", "line 1: timeout: bad value"},
		{"dereference = 4\n", "line 1: dereference: bad value 4"},
		{"chase_referrals = yes\n", "following referrals is not supported"},
		{"tls_ca_cert_file = /nonexistent\n", "line 1: tls_ca_cert_file"},
		{"result_filter = %s\n", "line 1: result_filter: the old name of result_format"},
	} {
		_, err := rules.Open("ldap:" + writeCf(t, dir, i, c.cf))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want %q", c.cf, err, c.err)
		}
	}
	if _, err := rules.Open("ldap:ldapsource"); err == nil || !strings.Contains(err.Error(), "use ldap:/path/file.cf") {
		t.Errorf("ldap:ldapsource: %v", err)
	}
	var warnings []string
	_, err := rules.OpenWith("ldap:"+writeCf(t, dir, 99, "server_host = ldap://127.0.0.1:1\nqeury_filter = x\ncache = yes\nscope = subtree\n"),
		rules.OpenOptions{Warn: func(m string) { warnings = append(warnings, m) }})
	want := []string{`line 2: unknown parameter "qeury_filter" ignored`, "line 3: cache: ignored", `line 4: scope: unrecognized value "subtree": using sub`}
	if err != nil || len(warnings) != len(want) {
		t.Fatalf("warnings %q, %v; want %q", warnings, err, want)
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %q, want %q", warnings[i], w)
		}
	}
}

// One connection serves many lookups, also concurrent ones; a connection
// the server (here a proxy in front of it) drops is opened again for the
// next lookup, which succeeds.
func TestReconnect(t *testing.T) {
	t.Parallel()
	srv, open := startSlapd(t)
	p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.Port))
	tbl := open(fmt.Sprintf("server_host = ldap://%s\nquery_filter = proxyAddresses=smtp:%%s\nresult_attribute = mail\n", p.addr))
	ctx := context.Background()
	lookup := func(what string) {
		t.Helper()
		if v, _, err := tbl.Lookup(ctx, "user@example.test"); err != nil || v != "primary@example.test" {
			t.Fatalf("%s: %q, %v", what, v, err)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if v, _, err := tbl.Lookup(ctx, "other@example.test"); err != nil || v != "other@example.test" {
					t.Errorf("concurrent lookup: %q, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := p.accepted(); n != 1 {
		t.Errorf("%d connections for 160 lookups, want 1", n)
	}
	p.cut()
	lookup("after the connection was cut")
	if n := p.accepted(); n != 2 {
		t.Errorf("%d connections after a cut, want 2", n)
	}
}

// A server that accepts and never answers: the lookup fails after
// timeout, or sooner when the caller's deadline passes.
func TestTimeout(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	dir := t.TempDir()
	tbl, err := rules.Open("ldap:" + writeCf(t, dir, 1, fmt.Sprintf("server_host = ldap://%s\ntimeout = 1\nbind = no\n", l.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := tbl.Lookup(context.Background(), "user@example.test"); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("lookup: %v after %v, want an error after about 1s", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, _, err := tbl.Lookup(ctx, "user@example.test"); err == nil || time.Since(start) > 800*time.Millisecond {
		t.Errorf("lookup with a 200ms deadline: %v after %v", err, time.Since(start))
	}
}

// proxy forwards connections to a server and can cut them all.
type proxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
	n     int
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &proxy{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns, p.n = append(p.conns, c, s), p.n+1
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	time.Sleep(100 * time.Millisecond) // the client's reader sees the close
}

// BenchmarkLookup: lookups per second against the real slapd over one
// connection, one at a time and from parallel callers.
func BenchmarkLookup(b *testing.B) {
	_, open := startSlapd(b)
	tbl := open("query_filter = proxyAddresses=smtp:%s\nresult_attribute = mail\n")
	ctx := context.Background()
	check := func(b *testing.B) {
		if v, _, err := tbl.Lookup(ctx, "user@example.test"); err != nil || v != "primary@example.test" {
			b.Fatalf("%q, %v", v, err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			check(b)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(2) // 2 callers per CPU: 4 lookups in flight here
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				check(b)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
}
