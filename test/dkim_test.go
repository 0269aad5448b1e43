package test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

// dkimKeys are the test's signing keys: an RSA key made by opendkim-genkey
// (the real tool, which also writes its TXT record) and an Ed25519 key,
// and the zones nsd serves with their public halves and the DMARC and
// SPF records.
type dkimKeys struct {
	dir          string
	rsa, ed25519 string // private key files (PEM)
	zones        map[string]string
}

// dkimZone is dkim.test: SPF fails for every client, so only an aligned
// DKIM signature passes DMARC (p=reject). The key records are appended.
const dkimZone = `$ORIGIN dkim.test.
$TTL 60
@          IN SOA ns.dkim.test. hostmaster.dkim.test. 1 3600 600 86400 60
@          IN NS  ns.dkim.test.
ns         IN A   127.0.0.1
@          IN TXT "v=spf1 -all"
_dmarc     IN TXT "v=DMARC1; p=reject"
`

// dmarcZone has a domain for each policy; SPF passes for the outside
// client (127.0.0.5) at reject. and mailer. (both under dmarc.test, so
// relaxed-aligned with each other, not strictly).
const dmarcZone = `$ORIGIN dmarc.test.
$TTL 60
@          IN SOA ns.dmarc.test. hostmaster.dmarc.test. 1 3600 600 86400 60
@          IN NS  ns.dmarc.test.
ns         IN A   127.0.0.1
_dmarc     IN TXT "v=DMARC1; p=none; sp=reject"
reject     IN TXT "v=spf1 ip4:127.0.0.5 -all"
_dmarc.reject IN TXT "v=DMARC1; p=reject; aspf=s"
mailer     IN TXT "v=spf1 ip4:127.0.0.5 -all"
_dmarc.quar IN TXT "v=DMARC1; p=quarantine"
_dmarc.none IN TXT "v=DMARC1; p=none"
_dmarc.pct IN TXT "v=DMARC1; p=reject; pct=0"
`

// otherZone is an unrelated domain whose SPF passes for the outside client.
const otherZone = `$ORIGIN other.test.
$TTL 60
@          IN SOA ns.other.test. hostmaster.other.test. 1 3600 600 86400 60
@          IN NS  ns.other.test.
ns         IN A   127.0.0.1
@          IN TXT "v=spf1 ip4:127.0.0.5 -all"
`

func newDKIMKeys(t *testing.T) *dkimKeys {
	t.Helper()
	genkey := harness.Need(t, "opendkim-genkey", "opendkim-tools")
	k := &dkimKeys{dir: t.TempDir()}
	if out, err := exec.Command(genkey, "-D", k.dir, "-d", "dkim.test", "-s", "sel").CombinedOutput(); err != nil {
		t.Fatalf("opendkim-genkey: %v\n%s", err, out)
	}
	k.rsa = filepath.Join(k.dir, "sel.private")
	record, err := os.ReadFile(filepath.Join(k.dir, "sel.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k.ed25519 = filepath.Join(k.dir, "ed.pem")
	if err := os.WriteFile(k.ed25519, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	k.zones = map[string]string{
		"dkim.test": dkimZone + string(record) + "\n" +
			fmt.Sprintf("ed._domainkey.ed IN TXT \"v=DKIM1; k=ed25519; p=%s\"\n", base64.StdEncoding.EncodeToString(pub)),
		"dmarc.test": dmarcZone,
		"other.test": otherZone,
	}
	return k
}

const authRelay = spfRelay + `postgate_dkim_verify = yes
postgate_dmarc_enforce = yes
`

// sendMessage sends one message from client address from and returns the
// reply to the end of DATA (or to RCPT when it is refused).
func sendMessage(t *testing.T, addr, from, mailFrom, message string) string {
	t.Helper()
	cl := harness.Dial(t, addr, from)
	cl.Expect(250, "EHLO client.src.test")
	cl.Expect(250, "MAIL FROM:<%s>", mailFrom)
	if code, text := cl.Cmd("RCPT TO:<u@corp.test>"); code != 250 {
		return fmt.Sprintf("%d %s", code, text)
	}
	cl.Expect(354, "DATA")
	cl.Send(message + ".\r\n")
	code, text := cl.Reply()
	cl.Expect(221, "QUIT")
	return fmt.Sprintf("%d %s", code, text)
}

// sinkMessages waits for n complete messages (each ends with endLine) at
// the sink and returns them by Subject, with LF line ends.
func sinkMessages(t *testing.T, sink *harness.Sink, n int, endLine string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for deadline := time.Now().Add(30 * time.Second); len(out) < n && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		clear(out)
		for _, d := range sink.WaitMessages(n, time.Until(deadline)) {
			_, msg := harness.SinkBody(d)
			if !strings.HasSuffix(msg, "\n"+endLine+"\n") {
				continue
			}
			head, _, _ := strings.Cut(msg, "\n\n")
			if m := subjectRe.FindStringSubmatch(head); m != nil {
				out[m[1]] = msg
			}
		}
	}
	if len(out) < n {
		t.Fatalf("%d complete messages at the sink, want %d", len(out), n)
	}
	return out
}

// headerFields are the fields of msg's header block named name, each
// unfolded (continuation lines joined with their whitespace).
func headerFields(msg, name string) []string {
	head, _, _ := strings.Cut(msg, "\n\n")
	var fields []string
	for _, line := range strings.Split(head, "\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(fields) > 0 {
			fields[len(fields)-1] += " " + strings.TrimSpace(line)
		} else {
			fields = append(fields, line)
		}
	}
	var out []string
	for _, f := range fields {
		if n, _, ok := strings.Cut(f, ":"); ok && strings.EqualFold(n, name) {
			out = append(out, f)
		}
	}
	return out
}

// TestDMARCAgainstNSD: DMARC with postgate_dmarc_enforce = yes, each
// policy against a real authoritative server (nsd), aligned through SPF
// (strict and relaxed) and unaligned: p=reject refuses with 550 5.7.1,
// p=quarantine holds the message, p=none only reports; sp= applies to a
// subdomain without its own record; pct=0 lowers reject to quarantine.
// Every accepted message carries one Authentication-Results: header with
// the spf, dkim and dmarc results, and those that claimed our
// authserv-id are gone (another host's stays).
func TestDMARCAgainstNSD(t *testing.T) {
	t.Parallel()
	k := newDKIMKeys(t)
	ns := startNSD(t, k.zones)
	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(authRelay, sink.Port, ns), "")
	const ok = "250 2.0.0 Ok: queued as"
	cases := []struct {
		name, mailFrom, from, reply string
		held                        bool
		results                     string // at the sink, or in the log for a refusal
	}{
		{"strict_aligned", "a@reject.dmarc.test", "x@reject.dmarc.test", ok, false,
			"spf=pass smtp.mailfrom=a@reject.dmarc.test; dkim=none; dmarc=pass (p=reject dis=none) header.from=reject.dmarc.test"},
		{"strict_unaligned", "a@mailer.dmarc.test", "x@reject.dmarc.test", "550 5.7.1 rejected by DMARC policy for reject.dmarc.test", false,
			"spf=pass smtp.mailfrom=a@mailer.dmarc.test; dkim=none; dmarc=fail (p=reject dis=reject) header.from=reject.dmarc.test"},
		{"relaxed_aligned", "a@mailer.dmarc.test", "x@quar.dmarc.test", ok, false,
			"dmarc=pass (p=quarantine dis=none) header.from=quar.dmarc.test"},
		{"quarantine", "a@other.test", "x@quar.dmarc.test", ok, true,
			"spf=pass smtp.mailfrom=a@other.test; dkim=none; dmarc=fail (p=quarantine dis=quarantine) header.from=quar.dmarc.test"},
		{"none", "a@other.test", "x@none.dmarc.test", ok, false,
			"dmarc=fail (p=none dis=none) header.from=none.dmarc.test"},
		{"subdomain_policy", "a@other.test", "x@sub.dmarc.test", "550 5.7.1 rejected by DMARC policy for sub.dmarc.test", false,
			"dmarc=fail (p=reject dis=reject) header.from=sub.dmarc.test"},
		{"pct_zero", "a@other.test", "x@pct.dmarc.test", ok, true,
			"dmarc=fail (p=reject dis=quarantine) header.from=pct.dmarc.test"},
		{"no_record", "a@other.test", "x@other.test", ok, false,
			"spf=pass smtp.mailfrom=a@other.test; dkim=none; dmarc=none header.from=other.test"},
		// Not evaluated, never refused (RFC 7489 6.6.1).
		{"two_from_domains", "a@other.test", "x@reject.dmarc.test, y@other.test", ok, false,
			`dkim=none; dmarc=permerror reason="From: addresses in more than one domain"`},
	}
	delivered := 0
	for _, c := range cases {
		msg := fmt.Sprintf("Subject: %s\r\nFrom: %s\r\n"+
			"Authentication-Results: mx.gateway.test; dkim=pass header.d=%s; dmarc=pass\r\n"+
			"Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=%s\r\n"+
			"\r\nbody\r\n", c.name, c.from, c.from, c.mailFrom)
		got := sendMessage(t, p.Addr, outside, c.mailFrom, msg)
		if !strings.HasPrefix(got, c.reply) {
			t.Errorf("%s: reply %q, want %q", c.name, got, c.reply)
			continue
		}
		if !strings.HasPrefix(got, ok) {
			if log := p.Log("rejected by DMARC policy for"); !strings.Contains(log, c.results) {
				t.Errorf("%s: the mail log lacks %q", c.name, c.results)
			}
			continue
		}
		id := queuedRe.FindStringSubmatch(got)[1]
		if c.held {
			if q := queueJSON(t, p)[id].QueueName; q != "hold" {
				t.Errorf("%s: message %s in queue %q, want hold", c.name, id, q)
			}
			continue
		}
		delivered++
	}
	msgs := sinkMessages(t, sink, delivered, "body")
	for _, c := range cases {
		msg, ok := msgs[c.name]
		if c.held || !strings.HasPrefix(c.reply, "250") {
			if ok {
				t.Errorf("%s: reached the sink", c.name)
			}
			continue
		}
		ar := headerFields(msg, "Authentication-Results")
		if len(ar) != 2 || !strings.HasPrefix(ar[0], "Authentication-Results: mx.gateway.test; ") ||
			!strings.Contains(ar[0], c.results) || ar[1] != "Authentication-Results: mx.other.example; spf=pass smtp.mailfrom="+c.mailFrom {
			t.Errorf("%s: Authentication-Results: at the sink\n%s\nwant ours with %q, then mx.other.example's", c.name, strings.Join(ar, "\n"), c.results)
		}
	}
	if log := p.Log("removed Authentication-Results"); !strings.Contains(log, "removed Authentication-Results: header with our authserv-id mx.gateway.test from unknown[127.0.0.5]") {
		t.Errorf("the mail log lacks the removal of forged headers:\n%s", log)
	}
	if log := p.Log("hold: END-OF-MESSAGE"); !strings.Contains(log, "hold: END-OF-MESSAGE from unknown[127.0.0.5]: quarantined by DMARC policy for quar.dmarc.test; from=<a@other.test> to=<u@corp.test>") {
		t.Errorf("the mail log lacks the DMARC hold:\n%s", log)
	}
}

// opendkimVerify verifies msg (LF line ends) with the real opendkim in
// test mode (-t), its resolver (libunbound) sent to nsd at ns, and
// returns what it said.
func opendkimVerify(t *testing.T, ns, msg string) string {
	t.Helper()
	bin := harness.Need(t, "opendkim", "opendkim")
	dir := t.TempDir()
	host, port, _ := strings.Cut(ns, ":")
	// unbound answers .test names itself (RFC 6761) unless told not to.
	unbound := fmt.Sprintf("server:\n  do-not-query-localhost: no\n  module-config: \"iterator\"\n  local-zone: \"test.\" nodefault\n"+
		"forward-zone:\n  name: \"test.\"\n  forward-addr: %s@%s\n", host, port)
	files := map[string]string{
		"unbound.conf":  unbound,
		"opendkim.conf": "Mode v\nSyslog no\nResolverConfiguration " + filepath.Join(dir, "unbound.conf") + "\n",
		"message":       strings.ReplaceAll(msg, "\n", "\r\n"),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-x", filepath.Join(dir, "opendkim.conf"), "-vv", "-t", filepath.Join(dir, "message"))
	done := make(chan struct{})
	time.AfterFunc(30*time.Second, func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	})
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		t.Fatalf("opendkim -t: %v\n%s", err, out)
	}
	return string(out)
}

// TestDKIMSigningVerifiedByOpendkim: messages from mynetworks are signed
// by their From: domain as postgate_dkim_signing_table says (an opendkim
// KeyTable entry: domain:selector:keyfile), with an RSA key from
// opendkim-genkey and with an Ed25519 key; the real opendkim verifies
// both, as they reached the internal server, against the keys nsd
// publishes. A domain the table lacks is not signed, and a message from
// outside is not signed. The signature covers the fields of
// postgate_dkim_sign_headers that the message has, in its order. A key
// file that cannot be read defers the message.
func TestDKIMSigningVerifiedByOpendkim(t *testing.T) {
	t.Parallel()
	k := newDKIMKeys(t)
	ns := startNSD(t, k.zones)
	sink := harness.StartSink(t)
	table := filepath.Join(k.dir, "signing")
	if err := os.WriteFile(table, []byte("# sender domain  domain:selector:keyfile\n"+
		"dkim.test     dkim.test:sel:"+k.rsa+"\n"+
		"ed.dkim.test  ed.dkim.test:ed:"+k.ed25519+"\n"+
		"broken.test   broken.test:sel:"+filepath.Join(k.dir, "missing.private")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, fmt.Sprintf(spfRelay, sink.Port, ns)+"postgate_dkim_signing_table = texthash:"+table+"\n"+
		"postgate_dkim_sign_headers = From, Reply-To, To, Subject, Message-ID, Date\n", "")
	const ok = "250 2.0.0 Ok: queued as"
	for _, c := range []struct{ name, client, from string }{
		{"rsa", "127.0.0.1", "x@dkim.test"}, {"ed25519", "127.0.0.1", "y@ed.dkim.test"},
		{"not_in_table", "127.0.0.1", "z@other.test"}, {"outside", outside, "x@dkim.test"},
	} {
		msg := fmt.Sprintf("From: Someone <%s>\r\nTo: <u@corp.test>\r\nSubject: %s\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n"+
			"Message-ID: <%s@dkim.test>\r\n\r\nbody  with  spaces \r\n\r\n\r\nbody\r\n", c.from, c.name, c.name)
		if got := sendMessage(t, p.Addr, c.client, "a@dkim.test", msg); !strings.HasPrefix(got, ok) {
			t.Fatalf("%s: reply %q, want %q", c.name, got, ok)
		}
	}
	// A key that cannot be used defers the message: it never leaves unsigned.
	const deferred = "451 4.7.1 Service unavailable - try again later"
	msg := "From: <b@broken.test>\r\nSubject: broken\r\n\r\nbody\r\n"
	if got := sendMessage(t, p.Addr, "127.0.0.1", "b@broken.test", msg); got != deferred {
		t.Errorf("missing key file: reply %q, want %q", got, deferred)
	}
	if log := p.Log("DKIM signing for"); !strings.Contains(log, "warning: ") ||
		!strings.Contains(log, ": DKIM signing for b@broken.test: postgate_dkim_signing_table: stat "+filepath.Join(k.dir, "missing.private")+": no such file or directory") {
		t.Errorf("the mail log lacks the signing failure:\n%s", log)
	}
	msgs := sinkMessages(t, sink, 4, "body")
	for name, want := range map[string][]string{
		"rsa":     {"a=rsa-sha256;", "d=dkim.test;", "s=sel;"},
		"ed25519": {"a=ed25519-sha256;", "d=ed.dkim.test;", "s=ed;"},
	} {
		sigs := headerFields(msgs[name], "DKIM-Signature")
		if len(sigs) != 1 {
			t.Errorf("%s: DKIM-Signature at the sink %q, want one", name, sigs)
			continue
		}
		for _, tag := range append(want, "v=1;", "c=relaxed/relaxed;", "h=From:To:Subject:Message-ID:Date;") {
			if !strings.Contains(sigs[0], " "+tag) {
				t.Errorf("%s: DKIM-Signature at the sink lacks %s: %q", name, tag, sigs[0])
			}
		}
		d := strings.TrimSuffix(want[1], ";")
		if out := opendkimVerify(t, ns, msgs[name]); !strings.Contains(out, "dkim=pass") || !strings.Contains(out, "header."+d) {
			t.Errorf("%s: opendkim does not verify postgate's signature:\n%s\n%s", name, out, msgs[name])
		}
	}
	for _, name := range []string{"not_in_table", "outside"} {
		if sigs := headerFields(msgs[name], "DKIM-Signature"); len(sigs) != 0 {
			t.Errorf("%s: signed: %q", name, sigs)
		}
	}
	if log := p.Log("DKIM-Signature field added"); !strings.Contains(log, ": DKIM-Signature field added (s=ed, d=ed.dkim.test)") {
		t.Errorf("the mail log lacks the signing:\n%s", log)
	}
	// A body changed after signing fails, with opendkim's own words.
	changed := strings.Replace(msgs["rsa"], "\nbody\n", "\nchanged body\n", 1)
	if out := opendkimVerify(t, ns, changed); !strings.Contains(out, "dkim=fail") {
		t.Errorf("opendkim verifies a changed body:\n%s", out)
	}
}

// startOpendkimSigner runs the real opendkim as a signing milter on a
// loopback port (relaxed/relaxed, rsa-sha256, the key of d=dkim.test
// s=sel) and returns its milter address; it is stopped by its PID when
// the test ends.
func startOpendkimSigner(t *testing.T, k *dkimKeys) string {
	t.Helper()
	bin := harness.Need(t, "opendkim", "opendkim")
	dir := t.TempDir()
	port := harness.FreePort(t)
	conf := fmt.Sprintf("Mode s\nDomain dkim.test\nSelector sel\nKeyFile %s\nSocket inet:%d@127.0.0.1\n"+
		"InternalHosts 127.0.0.0/8\nCanonicalization relaxed/relaxed\nSignatureAlgorithm rsa-sha256\n"+
		"Syslog no\nRequireSafeKeys false\nPidFile %s/opendkim.pid\n", k.rsa, port, dir)
	path := filepath.Join(dir, "opendkim.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-x", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	harness.StartPeer(t, cmd, addr)
	return addr
}

// TestDKIMVerifyOpendkimSigned: a message signed by the real opendkim (a
// signing milter of a real Postfix that relays to postgate from an
// outside address) verifies: dkim=pass, and DMARC passes through the
// aligned signature although SPF fails (p=reject, enforced). The same
// message with its body changed fails the signature, and so DMARC: 550
// 5.7.1.
func TestDKIMVerifyOpendkimSigned(t *testing.T) {
	t.Parallel()
	k := newDKIMKeys(t)
	ns := startNSD(t, k.zones)
	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(authRelay, sink.Port, ns), "")
	milter := startOpendkimSigner(t, k)
	pf := harness.StartPostfix(t, fmt.Sprintf(`mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:%d
smtp_bind_address = 127.0.0.5
smtpd_milters = inet:%s
milter_default_action = tempfail
`, p.Port, milter))
	msg := "From: Someone <x@dkim.test>\r\nTo: <u@corp.test>\r\nSubject: signed\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n" +
		"Message-ID: <signed@dkim.test>\r\n\r\nbody  with  spaces \r\n\r\nbody\r\n"
	if got := sendMessage(t, pf.Addr, "127.0.0.1", "a@dkim.test", msg); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("Postfix answered %q\n%s", got, pf.Log())
	}
	at := sinkMessages(t, sink, 1, "body")["signed"]
	sigs := headerFields(at, "DKIM-Signature")
	if len(sigs) != 1 || !strings.Contains(sigs[0], "a=rsa-sha256;") || !strings.Contains(sigs[0], "d=dkim.test;") {
		t.Fatalf("not signed by opendkim as configured: %q\n%s", sigs, pf.Log())
	}
	b := sigs[0][strings.Index(sigs[0], " b=")+3:]
	b = strings.Join(strings.Fields(b), "")[:8]
	ar := headerFields(at, "Authentication-Results")
	want := "Authentication-Results: mx.gateway.test; spf=fail smtp.mailfrom=a@dkim.test; " +
		"dkim=pass header.a=rsa-sha256 header.b=" + b + " header.d=dkim.test header.i=@dkim.test header.s=sel; " +
		"dmarc=pass (p=reject dis=none) header.from=dkim.test"
	if len(ar) != 1 || ar[0] != want {
		t.Errorf("Authentication-Results: at the sink\n%q\nwant\n%q", ar, want)
	}

	// The body changed after signing, sent straight from outside: our
	// Authentication-Results: of the first pass is in its header now.
	changed := strings.ReplaceAll(strings.Replace(at, "\nbody\n", "\nchanged body\n", 1), "\n", "\r\n")
	want550 := "550 5.7.1 rejected by DMARC policy for dkim.test"
	if got := sendMessage(t, p.Addr, outside, "a@dkim.test", changed); got != want550 {
		t.Errorf("changed body: reply %q, want %q", got, want550)
	}
	log := p.Log(want550)
	for _, want := range []string{
		`dkim=fail reason="body hash did not verify" header.a=rsa-sha256 header.b=` + b + ` header.d=dkim.test header.i=@dkim.test header.s=sel; dmarc=fail (p=reject dis=reject) header.from=dkim.test`,
		"reject: END-OF-MESSAGE from unknown[127.0.0.5]: " + want550 + "; from=<a@dkim.test> to=<u@corp.test> proto=ESMTP helo=<client.src.test>",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mail log lacks %q:\n%s", want, log)
		}
	}
}

// TestAuthTemperror: a DNS server that answers SERVFAIL for the DKIM key
// and the DMARC record makes both temperror: the message is accepted
// (postgate_dmarc_enforce never refuses on an error) with the results in
// its Authentication-Results: header.
func TestAuthTemperror(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, "temp.test. 60 IN TXT \"v=spf1 ip4:127.0.0.5 -all\"\n")
	srv.SetServfail("sel._domainkey.temp.test")
	srv.SetServfail("_dmarc.temp.test")
	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(authRelay, sink.Port, srv.Addr()), "")
	msg := "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=temp.test; s=sel;\r\n\th=From:Subject; bh=AAAA; b=BBBBCCCCDDDD\r\n" +
		"From: x@temp.test\r\nSubject: temperror\r\n\r\nbody\r\n"
	if got := sendMessage(t, p.Addr, outside, "a@temp.test", msg); !strings.HasPrefix(got, "250 2.0.0 Ok: queued as") {
		t.Fatalf("reply %q", got)
	}
	ar := headerFields(sinkMessages(t, sink, 1, "body")["temperror"], "Authentication-Results")
	for _, want := range []string{
		"Authentication-Results: mx.gateway.test; spf=pass smtp.mailfrom=a@temp.test; " +
			`dkim=temperror reason="key unavailable: lookup sel._domainkey.temp.test: server misbehaving" ` +
			"header.a=rsa-sha256 header.b=BBBBCCCC header.d=temp.test header.i=@temp.test header.s=sel; " +
			`dmarc=temperror reason="TXT record unavailable: lookup _dmarc.temp.test: server misbehaving" header.from=temp.test`,
	} {
		if len(ar) != 1 || !strings.Contains(ar[0], want) {
			t.Errorf("Authentication-Results: at the sink %q, want it with %q", ar, want)
		}
	}
	if log := p.Log("DMARC record of"); !strings.Contains(log, ": DMARC record of temp.test: TXT record unavailable: lookup _dmarc.temp.test: server misbehaving") {
		t.Errorf("the mail log lacks the DMARC temperror:\n%s", log)
	}
}
