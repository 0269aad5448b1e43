package config

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Postfix's postconf(1) is the oracle for main.cf syntax. A missing oracle is a
// failure, not a skip: `make test` installs the postfix package.
func postconf(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"postconf", "/usr/sbin/postconf"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("postconf(1) not found: it is the oracle for main.cf syntax; `make test` installs package postfix")
	return ""
}

func runPostconf(path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: errOut.Bytes()}
	}
	return out.String(), nil
}

func writeConfig(t *testing.T, mainCf, masterCf string, master bool) string {
	t.Helper()
	// Not t.TempDir: its name holds the subtest name, and postconf expands
	// $config_directory.
	dir, err := os.MkdirTemp("", "postgate-config")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	write := func(name, text string) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// Postfix waits until a file is a second old, in case it is being
		// edited; age it so each postconf run does not sleep.
		old := time.Now().Add(-time.Minute)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	write("main.cf", mainCf)
	if master {
		write("master.cf", masterCf)
	}
	return dir
}

var nonDefaultCases = []struct {
	name     string
	main     string
	master   string
	noMaster bool
}{
	{name: "empty", main: ""},
	{name: "continuations", main: `smtpd_recipient_restrictions =
    permit_mynetworks,
# a comment inside the value does not end it
	
    reject_unauth_destination
mydestination = $myhostname,
	localhost.$mydomain,	localhost
myhostname=mx.example.com
smtpd_banner	=	$myhostname   ESMTP   
`},
	{name: "comments", main: `# leading comment
   # indented comment
myorigin = example.com # not a comment
relay_domains = a.example, b.example
  # comment between entries
message_size_limit = 0
`},
	{name: "duplicates", main: `smtpd_timeout = 10s
myhostname = one.example
smtpd_timeout = 20s
myhostname = two.example
`},
	{name: "leading_continuation", main: `   orphan = text
	more orphan
myhostname = mx.example
`},
	{name: "references", main: `myhostname = mx.example
relay_domains = $relay_list ${more_relays} $(third)
relay_list = a.example
more_relays = b.example
third = c.example
unused_one = $unused_two
unused_two = referenced by an unused parameter
smtpd_banner = ${banner_set?{$banner_text}:{$banner_fallback}}
banner_set = yes
banner_text = hi
banner_fallback = bye
smtpd_helo_restrictions = ${{$helo_mode} == {strict} ? {reject_invalid_helo_hostname} : {}}
helo_mode = strict
default_rbl_reply = $rbl_code $raw_only
raw_only = raw parameters are never expanded, so this is unused
stranger = nobody refers to me
smtpd_restriction_classes = $classes, spam_class
classes = strict_class
strict_class = reject_unknown_sender_domain
spam_class = reject
`},
	{name: "braces", main: `smtpd_recipient_restrictions = permit_mynetworks,
  check_policy_service { inet:127.0.0.1:9998, timeout=10s },   reject_unauth_destination
smtpd_client_restrictions = check_client_access inline:{ 192.0.2.1=REJECT, {192.0.2.2 = OK fine} }
header_checks = {unbalanced
`},
	{name: "legacy_and_dbms", main: `virtual_maps = hash:/etc/postfix/virtual
fallback_relay = [backup.example]
alias_maps = ldap:ldapaliases, proxy:mysql:mysqlaliases, hash:/etc/aliases, ldap:/etc/postfix/ldap.cf
ldapaliases_server_host = ldap.example
ldapaliases_search_base = dc=example
mysqlaliases_hosts = db.example
mysqlaliases_nonsense = not a mysql suffix
process_id = 42
config_directory = /somewhere/else
`},
	{name: "services", main: `relay_destination_concurrency_limit = 5
mailman_time_limit = 1000s
mailman_destination_recipient_limit = 1
policy_time_limit = 3600s
nosuch_time_limit = 10s
smtp_time_limit = 10s
mua_client_restrictions = permit_sasl_authenticated, reject
submission_classes = cls
cls = reject
smtpd_banner = hi
`, master: `smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o smtpd_client_restrictions=$mua_client_restrictions
  -o smtpd_restriction_classes=$submission_classes
relay     unix  -       -       y       -       -       smtp
mailman   unix  -       n       n       -       -       pipe
  flags=FRX user=list argv=/usr/lib/mailman/bin/postfix-to-mailman.py ${nexthop} ${user}
policy    unix  -       n       n       -       0       spawn
  user=nobody argv=/usr/bin/policy
`},
	{name: "no_master", noMaster: true, main: `relay_destination_concurrency_limit = 5
smtpd_banner = hi
`},
	{name: "crlf", main: "myhostname = mx.example\r\nsmtpd_banner = a\r\n  b\r\nrelay_domains =\r\n"},
	{name: "odd_names", main: `foo-bar = 1
Myhostname = X
a.b:c_time_limit = 10s
smtpd_banner = $foo ${bar}
`},
}

// TestNonDefaultMatchesPostconf compares NonDefault with `postconf -n -c DIR`
// byte for byte, on inline cases and on the good fixtures.
func TestNonDefaultMatchesPostconf(t *testing.T) {
	type tc struct{ name, dir string }
	var cases []tc
	for _, c := range nonDefaultCases {
		cases = append(cases, tc{c.name, writeConfig(t, c.main, c.master, !c.noMaster)})
	}
	fixtures, _ := filepath.Glob("testdata/good/*")
	for _, dir := range fixtures {
		cases = append(cases, tc{"fixture_" + filepath.Base(dir), dir})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := runPostconf(postconf(t), "-n", "-c", c.dir)
			if err != nil {
				t.Fatalf("postconf -n -c %s: %v: %s", c.dir, err, err.(*exec.ExitError).Stderr)
			}
			var got string
			for _, l := range mustLoad(t, c.dir).NonDefault() {
				// postgate's own parameters are built in for postgate, unknown to postconf.
				if !strings.HasPrefix(l, "postgate_") {
					got += l + "\n"
				}
			}
			if got != want {
				t.Errorf("NonDefault():\n%s\npostconf -n:\n%s", got, want)
			}
		})
	}
}

// TestExpansionMatchesPostconf checks each expansion form against
// `postconf -x`, including which ones postconf rejects.
func TestExpansionMatchesPostconf(t *testing.T) {
	const context = `myhostname = h.example
mail_name = MN
compatibility_level = 3.6
empty =
ref_empty = $empty
smtpd_restriction_classes = t
`
	exprs := []string{
		"$myhostname", "${myhostname}", "$(mail_name)", "$myhostname.foo", "$$x", "a$$", "$1",
		"${ myhostname }", "${myhostname?yes}", "${empty?yes}", "${myhostname:no}", "${empty:no}",
		"${nope?{yes}:{no}}", "${myhostname?{yes}:{no}}", "${myhostname?x:y}", "${nope?x:y}",
		"${nope?{x}:y}", "${nope?{x}:y z}", "${myhostname?{x}  :  {y}  }", "${myhostname ? {x} : {y}}",
		"${myhostname?{nested {braces} ok}:{n}}", "${myhostname?${mail_name}}",
		"${myhostname?{${mail_name?{a}:{b}}}}", "${ref_empty?{raw}:{expanded}}", "$(myhostname?a)",
		"${{3} < {10} ? {num} : {lex}}", "${{ 3 } < { 10 } ? {num} : {lex}}", "${{abc} == {abc}?{eq}:{ne}}",
		"${{b} > {a} ? {gt}:{le}}", "${{-1} < {2} ? {lt}:{ge}}", "${{010} == {10} ? {a}:{b}}",
		"${{$empty} == {} ? {empty} : {non}}", "${{3}<{10}}", "${{3}>{10}}",
		"${{$compatibility_level} <level {2} ? {old} : {new}}", "${{3.6} <level {3.10} ? {lt}:{ge}}",
		"${{1} ==level {1.0} ? {eq}:{ne}}", "${{3.6.1} >level {3.6} ? {gt}:{le}}",
		// errors
		"a $ b", "a$", "$-x", "${b", "$(b", "${myhostname?{x}z}", "${myhostname?{x}:{y}z}",
		"${nope:{x}:{y}}", "${a{b}c}", "${name!x}", "${{a}}", "${{a} =~ {b} ? {a}:{b}}",
		"${{abc} <level {1} ? {lt}:{ge}}", "${{a} < b}", "${{a} <bogus {b}}",
	}
	// postconf sleeps a second before it exits on an error, so run them all at once.
	type result struct {
		dir, out string
		err      error
	}
	results := make([]result, len(exprs))
	pc := postconf(t)
	var wg sync.WaitGroup
	for i, expr := range exprs {
		dir := writeConfig(t, context+"t = "+expr+"\n", "", true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runPostconf(pc, "-x", "-c", dir, "-h", "t")
			results[i] = result{dir, out, err}
		}()
	}
	wg.Wait()
	for i, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			want, perr := results[i].out, results[i].err
			c, err := Load(results[i].dir)
			switch {
			case perr != nil && err == nil:
				t.Errorf("postconf rejects %q (%s), postgate gives %q", expr, perr.(*exec.ExitError).Stderr, c.Get("t"))
			case perr == nil && err != nil:
				t.Errorf("postconf gives %q, postgate fails: %v", want, err)
			case perr == nil:
				if got := squeeze(c.Get("t")) + "\n"; got != want {
					t.Errorf("postgate %q, postconf %q", got, want)
				}
			}
		})
	}
}
