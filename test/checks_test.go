package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestHeaderBodyCheckEdits: what header_checks and body_checks change in
// the stored message (IGNORE, REPLACE with $1, PREPEND, STRIP) and in its
// envelope and state (HOLD, REDIRECT, BCC); the replies are compared with
// the real Postfix in testdata/protocol/header_checks.
func TestHeaderBodyCheckEdits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hdr := filepath.Join(dir, "header.pcre")
	body := filepath.Join(dir, "body.pcre")
	os.WriteFile(hdr, []byte(`/^X-Drop:/ IGNORE
/^X-Old: (.*)$/ REPLACE X-New: $1
/^Subject: prepend/ PREPEND X-Prepended: yes
/^Subject: hold/ HOLD
/^Subject: redirect/ REDIRECT other@relay.test
/^Subject: bcc/ BCC archive@relay.test
/^Subject: bad replace/ REPLACE not a header
`), 0o644)
	os.WriteFile(body, []byte("/^strip me$/ STRIP gone\n/^(mark)$/ PREPEND before $1\n"), 0o644)
	p := harness.Start(t, rejectUnauth+fmt.Sprintf("header_checks = pcre:%s\nbody_checks = pcre:%s\n", hdr, body), "")
	send := func(subject, rest string) string {
		return sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: "+subject+"\r\n"+rest))
	}
	edit := send("prepend", "X-Drop: me\r\nX-Old: kept value\r\n\r\nline\r\nstrip me\r\nmark\r\nend\r\n")
	want := "X-Prepended: yes\r\nSubject: prepend\r\nX-New: kept value\r\n\r\nline\r\nbefore mark\r\nmark\r\nend\r\n"
	if got := string(stripReceived(t, showRaw(t, p, edit))); got != want {
		t.Errorf("stored content:\n%q\nwant\n%q", got, want)
	}
	hold := send("hold", "\r\nx\r\n")
	redirect := send("redirect", "\r\nx\r\n")
	bcc := send("bcc", "\r\nx\r\n")
	badReplace := send("bad replace", "\r\nx\r\n")
	msgs := queueJSON(t, p)
	if q := msgs[hold].QueueName; q != "hold" {
		t.Errorf("HOLD: message in queue %q, want hold", q)
	}
	rcpts := func(id string) string {
		var out []string
		for _, r := range msgs[id].Recipients {
			out = append(out, r.Address)
		}
		return strings.Join(out, " ")
	}
	if got := rcpts(redirect); got != "other@relay.test" {
		t.Errorf("REDIRECT: recipients %q, want other@relay.test", got)
	}
	if got := rcpts(bcc); got != "u@relay.test archive@relay.test" {
		t.Errorf("BCC: recipients %q", got)
	}
	if got := string(stripReceived(t, showRaw(t, p, badReplace))); !strings.HasPrefix(got, "Subject: bad replace\r\n") {
		t.Errorf("a REPLACE that is not a header changed the message: %q", got)
	}
	log := p.Log("bad REPLACE header text")
	for _, want := range []string{
		edit + ": prepend: header Subject: prepend from unknown[127.0.0.5]; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<",
		edit + ": strip: body strip me from unknown[127.0.0.5]; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<",
		hold + ": hold: header Subject: hold from ",
		redirect + ": redirect: header Subject: redirect from ",
		`warning: bad REPLACE header text "not a header" in header_checks map -- need "headername: headervalue"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mail log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(log)
	}
}

// TestAccessActionsChangeTheMessage: PREPEND, REDIRECT and BCC from an
// access table take effect on the message, as in Postfix (PREPEND above
// our Received: header).
func TestAccessActionsChangeTheMessage(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_recipient_restrictions = check_recipient_access inline:{ "+
		"{prep@relay.test = PREPEND X-Tag: from access}, {redir@relay.test = REDIRECT else@relay.test}, "+
		"{bcc@relay.test = BCC copy@relay.test}, {ok@relay.test = OK} }\nsmtpd_log_access_permit_actions = static:all\n", "")
	prep := sendGoSMTP(t, p.Addr, "a@src.test", "prep@relay.test", []byte("Subject: p\r\n\r\nx\r\n"))
	if got := string(showRaw(t, p, prep)); !strings.HasPrefix(got, "X-Tag: from access\r\nReceived: from ") {
		t.Errorf("PREPEND: stored message starts %q", got[:min(len(got), 60)])
	}
	redir := sendGoSMTP(t, p.Addr, "a@src.test", "redir@relay.test", []byte("Subject: r\r\n\r\nx\r\n"))
	bcc := sendGoSMTP(t, p.Addr, "a@src.test", "bcc@relay.test", []byte("Subject: b\r\n\r\nx\r\n"))
	msgs := queueJSON(t, p)
	if r := msgs[redir].Recipients; len(r) != 1 || r[0].Address != "else@relay.test" {
		t.Errorf("REDIRECT: recipients %+v", r)
	}
	if r := msgs[bcc].Recipients; len(r) != 2 || r[0].Address != "bcc@relay.test" || r[1].Address != "copy@relay.test" {
		t.Errorf("BCC: recipients %+v", r)
	}
	// smtpd_log_access_permit_actions: an OK is logged.
	sendGoSMTP(t, p.Addr, "a@src.test", "ok@relay.test", []byte("Subject: ok\r\n\r\nx\r\n"))
	want := "NOQUEUE: permit: RCPT from unknown[127.0.0.5]: action=OK for Recipient address=ok@relay.test from inline:"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("mail log lacks %q:\n%s", want, log)
	}
}

// TestVirtualAliasExpansion: the queued message goes to what
// virtual_alias_maps makes of its recipients: lists, an extension carried
// over, a catch-all, an address that expands to itself and more, an
// unqualified result with @$myorigin; duplicates once.
func TestVirtualAliasExpansion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	virtual := filepath.Join(dir, "virtual")
	os.WriteFile(virtual, []byte(`info@alias.test      a@relay.test, b@relay.test
plus@alias.test      dest@relay.test
@catch.test          catchall@relay.test
keep@relay.test      keep@relay.test, copy@relay.test
team@alias.test      info@alias.test, a@relay.test, root
`), 0o644)
	p := harness.Start(t, rejectUnauth+"virtual_alias_domains = alias.test, catch.test\nvirtual_alias_maps = texthash:"+virtual+
		"\nrecipient_delimiter = +\nmyorigin = origin.test\n", "")
	for rcpt, want := range map[string]string{
		"info@alias.test":     "a@relay.test b@relay.test",
		"plus+tag@alias.test": "dest+tag@relay.test",
		"anyone@catch.test":   "catchall@relay.test",
		"keep@relay.test":     "keep@relay.test copy@relay.test",
		"team@alias.test":     "a@relay.test root@origin.test b@relay.test", // Postfix's order: the first result in place, the others after
	} {
		id := sendGoSMTP(t, p.Addr, "s@src.test", rcpt, []byte("Subject: alias\r\n\r\nx\r\n"))
		var got []string
		for _, r := range queueJSON(t, p)[id].Recipients {
			got = append(got, r.Address)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: queued for %q, want %q", rcpt, got, want)
		}
	}
	// Without "virtual" in propagate_unmatched_extensions the extension
	// stays behind.
	q := harness.Start(t, rejectUnauth+"virtual_alias_domains = alias.test\nvirtual_alias_maps = texthash:"+virtual+
		"\nrecipient_delimiter = +\npropagate_unmatched_extensions = canonical\n", "")
	id := sendGoSMTP(t, q.Addr, "s@src.test", "plus+tag@alias.test", []byte("Subject: alias\r\n\r\nx\r\n"))
	if r := queueJSON(t, q)[id].Recipients; len(r) != 1 || r[0].Address != "dest@relay.test" {
		t.Errorf("propagate_unmatched_extensions = canonical: recipients %+v, want dest@relay.test", r)
	}
}

// TestAliasMapsListLocalUsers: the names of an aliases(5) file in
// alias_maps are local users for recipient validation (local_recipient_maps
// defaults to passwd and $alias_maps); other local names are refused. The
// file format against postalias: rules.TestAliasesMatchPostalias.
func TestAliasMapsListLocalUsers(t *testing.T) {
	t.Parallel()
	aliases := filepath.Join(t.TempDir(), "aliases")
	os.WriteFile(aliases, []byte("# site aliases\nsales: alice@corp.test,\n  bob@corp.test\n\"help desk\": carol\n"), 0o644)
	p := harness.Start(t, rejectUnauth+"mydestination = mx.gateway.test\nalias_maps = hash:"+aliases+"\n", "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	for rcpt, want := range map[string]string{
		"sales@mx.gateway.test":       "250 2.1.5 Ok",
		"SALES@mx.gateway.test":       "250 2.1.5 Ok",
		`"help desk"@mx.gateway.test`: "250 2.1.5 Ok",
		"nosuchuser@mx.gateway.test":  "550 5.1.1 <nosuchuser@mx.gateway.test>: Recipient address rejected: User unknown in local recipient table",
	} {
		if code, text := c.Cmd("RCPT TO:<%s>", rcpt); fmt.Sprintf("%d %s", code, text) != want {
			t.Errorf("RCPT %s: %d %s, want %s", rcpt, code, text, want)
		}
	}
}

// TestAliasMapsExpand: mail for a name of the local domain that alias_maps
// lists goes to the alias's addresses, as Postfix's local(8) forwards it:
// recursively (postmaster -> root -> an internal address), several
// targets, an unqualified target in the local domain, an extension
// falling back to the bare name. A command or file destination is left
// out with a warning.
func TestAliasMapsExpand(t *testing.T) {
	t.Parallel()
	internal := harness.StartSink(t)
	aliases := filepath.Join(t.TempDir(), "aliases")
	os.WriteFile(aliases, []byte("postmaster: root\nroot: admin@corp.test\nabuse: security@corp.test, ops\nops: ops-team@corp.test\nlogs: |/usr/bin/logger, archive@corp.test\n"), 0o644)
	p := harness.Start(t, fmt.Sprintf(`mydestination = mx.gateway.test
recipient_delimiter = +
alias_maps = texthash:%s
relay_domains = corp.test
transport_maps = inline:{ corp.test=smtp:[127.0.0.1]:%d }
`, aliases, internal.Port), "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	for i, rcpt := range []string{"postmaster@mx.gateway.test", "abuse+spam@mx.gateway.test", "logs@mx.gateway.test"} {
		c.Expect(250, "MAIL FROM:<a@src.test>")
		c.Expect(250, "RCPT TO:<%s>", rcpt)
		c.Expect(354, "DATA")
		c.Send(fmt.Sprintf("Subject: alias %d\r\n\r\nx\r\n.\r\n", i))
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: %d %s", rcpt, code, text)
		}
	}
	msgs := internal.WaitMessages(3, 20*time.Second)
	var got []string
	for _, m := range msgs {
		env, _ := harness.SinkBody(m)
		got = append(got, strings.Join(sinkRcpts(env), " "))
	}
	sort.Strings(got)
	want := []string{"admin@corp.test", "archive@corp.test", "ops-team@corp.test security@corp.test"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("at the internal server: %q, want %q", got, want)
	}
	if log := p.Log("skipped"); !strings.Contains(log, "warning: ") || !strings.Contains(log, "alias logs: destination |/usr/bin/logger skipped") {
		t.Errorf("no warning for the command destination:\n%s", log)
	}
}

// TestMIMECheckLogLines: the mail log lines of header checks inside the MIME
// structure (a REJECT of an attached message's Subject by
// nested_header_checks, a WARN on a body part's header by
// mime_header_checks, a MIME nesting error) are Postfix's: the same
// messages go to postgate and to the real Postfix with the same settings,
// and cleanup's lines are compared (client name and queue ID aside).
func TestMIMECheckLogLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hdr, mime, nested := filepath.Join(dir, "header"), filepath.Join(dir, "mime"), filepath.Join(dir, "nested")
	os.WriteFile(hdr, []byte("/^Subject: evil/ REJECT header_checks saw it\n"), 0o644)
	os.WriteFile(mime, []byte("/^X-Part:/ WARN part header seen\n"), 0o644)
	os.WriteFile(nested, []byte("/^Subject: evil/ REJECT 5.7.1 nested_header_checks saw it\n"), 0o644)
	settings := fmt.Sprintf("relay_domains = relay.test\nrelay_transport = discard\nmime_nesting_limit = 1\n"+
		"header_checks = pcre:%s\nmime_header_checks = pcre:%s\nnested_header_checks = pcre:%s\n", hdr, mime, nested)
	messages := []struct{ content, reply string }{
		{"Subject: attached\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" +
			"Subject: evil inside\r\n\r\nx\r\n--b--\r\n", "550 5.7.1 nested_header_checks saw it"},
		{"Subject: part\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Part: one\r\n\r\nx\r\n--b--\r\n", "250 "},
		{"Subject: deep\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\nx\r\n",
			"550 5.6.0 MIME nesting exceeds safety limit"},
	}
	send := func(addr string) {
		c := harness.Dial(t, addr, outside)
		c.Expect(250, "EHLO client.src.test")
		for _, m := range messages {
			c.Expect(250, "MAIL FROM:<a@src.test>")
			c.Expect(250, "RCPT TO:<u@relay.test>")
			c.Expect(354, "DATA")
			c.Send(m.content + ".\r\n")
			if code, text := c.Reply(); !strings.HasPrefix(fmt.Sprintf("%d %s", code, text), m.reply) {
				t.Errorf("%s: %q: %d %s, want %s", addr, m.content[:20], code, text, m.reply)
			}
		}
	}
	p := harness.Start(t, settings, "")
	send(p.Addr)
	pf := harness.StartPostfix(t, settings)
	send(pf.Addr)
	// "... cleanup[PID]: QUEUEID: TEXT", with the client's name[addr] as CLIENT.
	line := regexp.MustCompile(`cleanup\[[0-9]+\]: [0-9A-Za-z]+: ((?:reject|warning): (?:header|mime-error) .*)`)
	client := regexp.MustCompile(`from [^ ]*\[127\.0\.0\.5\];`)
	cleanupLines := func(log string) []string {
		var out []string
		for _, m := range line.FindAllStringSubmatch(log, -1) {
			out = append(out, client.ReplaceAllString(m[1], "from CLIENT;"))
		}
		return out
	}
	got := cleanupLines(p.Log("mime-error"))
	var want []string
	for deadline := time.Now().Add(10 * time.Second); len(want) < len(messages) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		want = cleanupLines(pf.Log())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(messages) {
		t.Errorf("postgate logged\n  %s\nPostfix logged\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
