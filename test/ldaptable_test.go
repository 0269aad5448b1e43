package test

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// ldapData is the directory the LDAP tests serve: people with Active
// Directory style proxyAddresses, a static group (member DNs) and a
// dynamic one (an LDAP URL), readable only after a bind.
const ldapData = "testdata/ldap/"

// TestLDAPTables runs postgate with relay_recipient_maps and
// virtual_alias_maps on a real OpenLDAP slapd started on loopback, as an
// Active Directory setup would use them: addresses listed in
// proxyAddresses (smtp:alias, SMTP:Primary) are accepted and unknown ones
// get 550 5.1.1, over ldaps:// (after a dead server) and STARTTLS with a
// test CA; addresses built to widen the LDAP filter are unknown
// recipients; a group's members (DNs) are the alias's expansion;
// `postgate map -q` answers from the directory; and once slapd is stopped
// the lookup answers 451 4.3.0, as Postfix does.
func TestLDAPTables(t *testing.T) {
	t.Parallel()
	srv := harness.StartSlapd(t, "dc=example,dc=test", []string{ldapData + "proxyaddresses.schema"}, ldapData+"access.conf", ldapData+"directory.ldif")
	dir := t.TempDir()
	cf := func(name, serverHost, extra string) string {
		return "ldap:" + writeFile(t, dir, name, fmt.Sprintf(`# %s
server_host = %s
version = 3
search_base = dc=example,dc=test
bind_dn = cn=postgate,dc=example,dc=test
bind_pw = secret
tls_require_cert = yes
tls_ca_cert_file = %s
%s`, name, serverHost, srv.CAFile, extra))
	}
	ad := cf("ad.cf", fmt.Sprintf("ldap://127.0.0.1:%d, ldaps://localhost:%d", harness.FreePort(t), srv.TLSPort),
		"query_filter = proxyAddresses=smtp:%s\nresult_attribute = mail\n")
	// domain keeps the virtual_alias_domains lookups (keys without @)
	// away from the directory.
	groups := cf("groups.cf", fmt.Sprintf("ldap://127.0.0.1:%d", srv.Port), `start_tls = yes
query_filter = (&(objectClass=groupOfNames)(proxyAddresses=smtp:%s))
result_attribute =
leaf_result_attribute = mail
special_result_attribute = member
domain = example.test
`)
	plain := cf("plain.cf", fmt.Sprintf("127.0.0.1:%d", srv.Port), "query_filter = proxyAddresses=smtp:%s\nresult_attribute = proxyAddresses\n")

	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(`relay_domains = example.test
relay_recipient_maps = %s
virtual_alias_maps = %s
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
`, ad, groups)+routes("example.test", sink), "")

	expectMapAnswers(t, []mapAnswer{
		{"user@example.test", ad, "primary@example.test\n"},
		{"Primary@Example.TEST", ad, "primary@example.test\n"},
		{"team@example.test", groups, "primary@example.test,other@example.test\n"},
		{"user@example.test", plain, "SMTP:Primary@example.test,smtp:user@example.test,X500:/o=Example/ou=people/cn=user\n"},
	}, mapAnswer{key: "nobody@example.test", table: ad})

	c := harness.Dial(t, p.Addr, "")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	for _, r := range []struct{ rcpt, want string }{
		{"<user@example.test>", "250 2.1.5 Ok"},
		{"<Primary@example.test>", "250 2.1.5 Ok"},
		{"<nobody@example.test>", "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in relay recipient table"},
		// Unescaped in the filter, each of these would match a listed
		// address.
		{"<*@example.test>", unknownRcpt},
		{`<"*)(cn=*"@example.test>`, unknownRcpt},
		{`<"x)(|(proxyAddresses=*"@example.test>`, unknownRcpt},
		{`<"\\2a"@example.test>`, unknownRcpt},
	} {
		if code, text := c.Cmd("RCPT TO:%s", r.rcpt); !matchReply(fmt.Sprintf("%d %s", code, text), r.want) {
			t.Errorf("RCPT TO:%s: %d %s\nwant %s", r.rcpt, code, text, r.want)
		}
	}
	// The group alone, so that what reaches the sink is its expansion.
	c.Expect(250, "RSET")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	c.Expect(250, "RCPT TO:<team@example.test>")
	c.Expect(354, "DATA")
	c.Expect(250, "Subject: ldap\r\n\r\nbody\r\n.")
	c.Expect(221, "QUIT")
	msgs := sink.WaitMessages(1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1", len(msgs))
	}
	if rcpts, want := sinkRcpts(msgs[0]), []string{"other@example.test", "primary@example.test"}; !slices.Equal(rcpts, want) {
		t.Errorf("sink recipients %v, want %v", rcpts, want)
	}

	srv.Stop()
	c = harness.Dial(t, p.Addr, "")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<s@src.test>")
	// An address not asked before: answers given are cached
	// (postgate_table_cache_ttl), so user@ would still be accepted.
	if code, text := c.Cmd("RCPT TO:<fresh@example.test>"); fmt.Sprintf("%d %s", code, text) != "451 4.3.0 <fresh@example.test>: Temporary lookup failure" {
		t.Errorf("slapd stopped: RCPT TO:<fresh@example.test>: %d %s", code, text)
	}
	if out, errOut, code := mapQuery(t, "user@example.test", ad); out != "" || code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("map -q with slapd stopped: %q, exit %d, stderr %q", out, code, errOut)
	}
}

// mapQuery runs `postgate map -q key table`: its output, error output and
// exit code.
func mapQuery(t *testing.T, key, table string) (string, string, int) {
	cmd := exec.Command(harness.Binary(t), "map", "-q", key, table)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Run()
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// mapAnswer is what `postgate map -q key table` prints: want, or for a
// key the table lacks, nothing.
type mapAnswer struct{ key, table, want string }

// expectMapAnswers checks each answer (exit 0), then that missing gets no
// output, no error and exit 1, as postmap -q answers a missing key.
func expectMapAnswers(t *testing.T, answers []mapAnswer, missing mapAnswer) {
	t.Helper()
	for _, c := range answers {
		if out, errOut, code := mapQuery(t, c.key, c.table); out != c.want || code != 0 {
			t.Errorf("map -q %s %s: %q (exit %d, %s), want %q", c.key, c.table, out, code, errOut, c.want)
		}
	}
	if out, errOut, code := mapQuery(t, missing.key, missing.table); out != "" || code != 1 || errOut != "" {
		t.Errorf("map -q of a missing key %s: %q, exit %d, %s", missing.key, out, code, errOut)
	}
}
