package test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"postgate/test/harness"
)

// The milters admins run next to Postfix, on loopback, pointed at by
// postgate with the same smtpd_milters line (reference/real-peers.md).

// gtube is SpamAssassin's test pattern; rspamd knows it too.
const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// sendThrough sends one message from outside and returns the reply to its
// end.
func sendThrough(t *testing.T, addr, from, to, message string) (int, string) {
	t.Helper()
	c := harness.Dial(t, addr, outside)
	defer c.Cmd("QUIT")
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<%s>", from)
	c.Expect(250, "RCPT TO:<%s>", to)
	c.Expect(354, "DATA")
	c.Send(message + ".\r\n")
	return c.Reply()
}

// TestSpamassMilter: spamass-milter with spamd, as sites run it with
// Postfix: a clean message is delivered with SpamAssassin's X-Spam-*
// headers; GTUBE is refused at the end of DATA with the milter's reply,
// the same reply Postfix gives through the same milter.
func TestSpamassMilter(t *testing.T) {
	addr := harness.StartSpamassMilter(t)
	sink := harness.StartSink(t)
	p := harness.Start(t, milterConfig(sink, "inet:"+addr), "")

	clean := "From: a@src.test\r\nTo: u@relay.test\r\nSubject: lunch\r\nMessage-ID: <lunch@src.test>\r\n\r\nShall we meet at noon?\r\n"
	code, text := sendThrough(t, p.Addr, "a@src.test", "u@relay.test", clean)
	if code != 250 {
		t.Fatalf("clean message: %d %s", code, text)
	}
	id := queuedRe.FindStringSubmatch(text)[1]
	p.Log(id + ": to=<u@relay.test>")
	msgs := sink.WaitMessages(1, 20*time.Second)
	if !containsAll(msgs, "Subject: lunch", "X-Spam-Status: No, score=", "X-Spam-Checker-Version: SpamAssassin") {
		t.Errorf("delivered without SpamAssassin's headers: %q", msgs)
	}

	spam := "From: a@src.test\r\nTo: u@relay.test\r\nSubject: gtube\r\n\r\n" + gtube + "\r\n"
	code, text = sendThrough(t, p.Addr, "a@src.test", "u@relay.test", spam)
	if code != 550 || text != "5.7.1 Blocked by SpamAssassin" {
		t.Errorf("GTUBE: %d %s, want 550 5.7.1 Blocked by SpamAssassin", code, text)
	}
	want := ": milter-reject: END-OF-MESSAGE from unknown[127.0.0.5]: 5.7.1 Blocked by SpamAssassin; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}

	// Postfix, through the same milter, gives the same reply.
	pf := postfixWithMilter(t, "inet:"+addr, nil)
	pcode, ptext := sendThrough(t, pf.Addr, "a@src.test", "u@relay.test", spam)
	if pcode != code || ptext != text {
		t.Errorf("Postfix answers GTUBE %d %s, postgate %d %s", pcode, ptext, code, text)
	}
}

// writeFile writes a file under dir, failing the test on error.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := dir + "/" + name
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startRspamd runs rspamd with its proxy worker in milter mode, a private
// configuration (network modules off, DNS only at a dead loopback port,
// the x-spamd-result and x-rspamd-server headers on) and its own
// directories; it returns the milter's address. rspamd takes some 40 s to
// compile its rules when it starts.
func startRspamd(t *testing.T) string {
	t.Helper()
	bin := harness.Need(t, "rspamd", "rspamd")
	dir, err := os.MkdirTemp("", "postgate-rspamd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"conf/local.d", "conf/override.d", "db", "run", "log"} {
		if err := os.MkdirAll(dir+"/"+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	for _, d := range []string{"db", "run", "log"} {
		if out, err := exec.Command("chown", "_rspamd:_rspamd", dir+"/"+d).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	milterPort := harness.FreePort(t)
	conf := dir + "/conf"
	writeFile(t, conf, "override.d/worker-proxy.inc", fmt.Sprintf(`bind_socket = "127.0.0.1:%d";
milter = yes;
timeout = 120s;
upstream "local" { default = yes; self_scan = yes; }
`, milterPort))
	writeFile(t, conf, "override.d/worker-normal.inc", fmt.Sprintf("bind_socket = \"127.0.0.1:%d\";\n", harness.FreePort(t)))
	writeFile(t, conf, "override.d/worker-controller.inc", fmt.Sprintf("bind_socket = \"127.0.0.1:%d\";\n", harness.FreePort(t)))
	writeFile(t, conf, "override.d/logging.inc", "type = \"console\";\nlevel = \"warning\";\n")
	writeFile(t, conf, "local.d/options.inc", fmt.Sprintf("dns { nameserver = [\"127.0.0.1:%d\"]; }\n", harness.FreePort(t)))
	// The test's client is on loopback: skip_local would leave it alone.
	writeFile(t, conf, "local.d/milter_headers.conf", "use = [\"x-spamd-result\", \"x-rspamd-server\", \"authentication-results\"];\nskip_local = false;\nskip_authenticated = false;\n")
	for _, m := range []string{"fuzzy_check", "rbl", "asn", "phishing", "url_reputation", "emails", "dcc", "metadata_exporter", "history_redis"} {
		writeFile(t, conf, "local.d/"+m+".conf", "enabled = false;\n")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", milterPort)
	harness.StartPeer(t, exec.Command(bin, "-f", "-u", "_rspamd", "-g", "_rspamd", "-c", "/etc/rspamd/rspamd.conf",
		"--var=LOCAL_CONFDIR="+conf, "--var=DBDIR="+dir+"/db", "--var=RUNDIR="+dir+"/run", "--var=LOGDIR="+dir+"/log"), addr)
	return addr
}

// TestRspamdMilter: rspamd's proxy worker in milter mode: GTUBE is refused
// with rspamd's reply (as through Postfix); a clean message is delivered
// with the headers the local configuration enables.
func TestRspamdMilter(t *testing.T) {
	addr := startRspamd(t)
	sink := harness.StartSink(t)
	p := harness.Start(t, milterConfig(sink, "inet:"+addr), "")

	spam := "From: a@src.test\r\nTo: u@relay.test\r\nSubject: gtube\r\nMessage-ID: <gtube@src.test>\r\n\r\n" + gtube + "\r\n"
	code, text := sendThrough(t, p.Addr, "a@src.test", "u@relay.test", spam)
	if code != 554 || text != "5.7.1 Gtube pattern" {
		t.Errorf("GTUBE: %d %s, want 554 5.7.1 Gtube pattern", code, text)
	}
	want := ": milter-reject: END-OF-MESSAGE from unknown[127.0.0.5]: 5.7.1 Gtube pattern; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}

	clean := "From: Ann <a@src.test>\r\nTo: u@relay.test\r\nSubject: lunch\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\n" +
		"Message-ID: <lunch@src.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nShall we meet at noon?\r\n"
	if code, text := sendThrough(t, p.Addr, "a@src.test", "u@relay.test", clean); code != 250 {
		t.Fatalf("clean message: %d %s", code, text)
	}
	msgs := sink.WaitMessages(1, 20*time.Second)
	if !containsAll(msgs, "Subject: lunch", "X-Spamd-Result: default: False [", "X-Rspamd-Server: ") {
		t.Errorf("delivered without rspamd's headers: %q", msgs)
	}

	pf := postfixWithMilter(t, "inet:"+addr, nil)
	if pcode, ptext := sendThrough(t, pf.Addr, "a@src.test", "u@relay.test", spam); pcode != code || ptext != text {
		t.Errorf("Postfix answers GTUBE %d %s, postgate %d %s", pcode, ptext, code, text)
	}
}

// startOpenDKIM runs opendkim signing for src.test with a fresh key
// (selector "test") for clients on loopback; it returns the milter's
// address and the key's TXT record as opendkim-genkey wrote it.
func startOpenDKIM(t *testing.T) (addr, txt string) {
	t.Helper()
	bin := harness.Need(t, "opendkim", "opendkim")
	genkey := harness.Need(t, "opendkim-genkey", "opendkim-tools")
	dir, err := os.MkdirTemp("", "postgate-opendkim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	if out, err := exec.Command(genkey, "-D", dir, "-d", "src.test", "-s", "test").CombinedOutput(); err != nil {
		t.Fatalf("opendkim-genkey: %v %s", err, out)
	}
	if out, err := exec.Command("chown", "opendkim", dir+"/test.private").CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	record, err := os.ReadFile(dir + "/test.txt")
	if err != nil {
		t.Fatal(err)
	}
	port := harness.FreePort(t)
	conf := writeFile(t, dir, "opendkim.conf", fmt.Sprintf(`Mode s
Domain src.test
Selector test
KeyFile %s/test.private
Socket inet:%d@127.0.0.1
InternalHosts 127.0.0.0/8
UserID opendkim
Syslog no
RequireSafeKeys false
Canonicalization simple/simple
PidFile %s/opendkim.pid
`, dir, port, dir))
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	harness.StartPeer(t, exec.Command(bin, "-f", "-x", conf), addr)
	return addr, string(record)
}

// txtQuoted joins the quoted strings of a zone file TXT record.
var txtQuoted = regexp.MustCompile(`"([^"]*)"`)

// TestOpenDKIMMilter: opendkim in signing mode (simple/simple) as a milter: it signs the
// message of an internal client from its domain (it decides from the
// client address and Postfix's macros), and the delivered message's
// DKIM-Signature verifies with the published key.
func TestOpenDKIMMilter(t *testing.T) {
	addr, record := startOpenDKIM(t)
	sink := harness.StartSink(t)
	p := harness.Start(t, milterConfig(sink, "inet:"+addr), "")
	// c=simple signs the header bytes: a folded header must reach
	// opendkim as the client wrote it.
	msg := "From: Ann <a@src.test>\r\nTo: u@relay.test\r\nSubject: signed,\r\n\tfolded  twice\r\n  here\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\n" +
		"Message-ID: <signed@src.test>\r\n\r\nThe body is signed.\r\n.. a dot-stuffed line\r\n"
	if code, text := sendThrough(t, p.Addr, "a@src.test", "u@relay.test", msg); code != 250 {
		t.Fatalf("end of DATA: %d %s", code, text)
	}
	msgs := sink.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d messages delivered", len(msgs))
	}
	_, delivered := harness.SinkBody(msgs[0])
	if !strings.Contains(delivered, "DKIM-Signature: v=1;") {
		t.Fatalf("delivered without a DKIM-Signature:\n%s", delivered)
	}
	var key strings.Builder
	for _, m := range txtQuoted.FindAllStringSubmatch(record, -1) {
		key.WriteString(m[1])
	}
	verifications, err := dkim.VerifyWithOptions(strings.NewReader(strings.ReplaceAll(delivered, "\n", "\r\n")), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "test._domainkey.src.test" {
				return nil, fmt.Errorf("no TXT record for %s", domain)
			}
			return []string{key.String()}, nil
		},
	})
	if err != nil || len(verifications) != 1 {
		t.Fatalf("verify: %v, %d signatures", err, len(verifications))
	}
	if v := verifications[0]; v.Err != nil || v.Domain != "src.test" {
		t.Errorf("signature of %s does not verify: %v\n%s", v.Domain, v.Err, delivered)
	}
}
