package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

// startNSD runs Debian's nsd, a real authoritative DNS server, on a
// loopback port serving the zones (name -> master-file text) from a temp
// dir, and returns its "127.0.0.1:PORT". It is stopped by its PID when
// the test ends.
func startNSD(t testing.TB, zones map[string]string) string {
	t.Helper()
	bin := harness.Need(t, "nsd", "nsd")
	dir := t.TempDir()
	port := freeUDPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
  ip-address: 127.0.0.1@%[2]d
  port: %[2]d
  username: ""
  chroot: ""
  zonesdir: "%[1]s"
  pidfile: "%[1]s/nsd.pid"
  database: ""
  zonelistfile: "%[1]s/zone.list"
  xfrdfile: "%[1]s/xfrd.state"
  xfrdir: "%[1]s"
  logfile: "%[1]s/nsd.log"
  verbosity: 1
remote-control:
  control-enable: no
`, dir, port)
	var first string
	for name, text := range zones {
		if first == "" {
			first = name
		}
		file := name + ".zone"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "zone:\n  name: %s\n  zonefile: %s\n", name, file)
	}
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath, "-d")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Ready when it answers for its zone with authority (nsd answers
	// REFUSED until it has loaded it).
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(first), dns.TypeSOA)
	harness.StartDNSPeer(t, cmd, addr, m, func(r *dns.Msg) bool { return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 },
		func() string {
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			return out.String() + string(log)
		})
	return addr
}

// spfZone is the test zone nsd serves. The client is outside
// (127.0.0.5); "many" needs 11 DNS lookups, one past RFC 7208's limit.
var spfZone = `$ORIGIN spf.test.
$TTL 60
@          IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 600 86400 60
@          IN NS  ns.spf.test.
ns         IN A   127.0.0.1
pass       IN TXT "v=spf1 ip4:127.0.0.5 -all"
fail       IN TXT "v=spf1 ip4:192.0.2.1 -all"
softfail   IN TXT "v=spf1 ip4:192.0.2.1 ~all"
neutral    IN TXT "v=spf1 ?all"
none       IN A   192.0.2.1
none       IN TXT "not an SPF record"
syntax     IN TXT "v=spf1 ip4:999.0.0.1 -all"
many       IN TXT "v=spf1 a:h1.spf.test a:h2.spf.test a:h3.spf.test a:h4.spf.test a:h5.spf.test a:h6.spf.test a:h7.spf.test a:h8.spf.test a:h9.spf.test a:h10.spf.test a:h11.spf.test ip4:127.0.0.5 -all"
viamx      IN TXT "v=spf1 mx -all"
viamx      IN MX  10 mail.spf.test.
mail       IN A   127.0.0.5
split      IN TXT "v=spf1 ip4:192.0.2.1 " "ip4:127.0.0.5 -all"
helo-fail  IN TXT "v=spf1 -all"
helo-pass  IN TXT "v=spf1 a -all"
helo-pass  IN A   127.0.0.5
` + manyHosts()

func manyHosts() string {
	var b strings.Builder
	for i := 1; i <= 11; i++ {
		fmt.Fprintf(&b, "h%d IN A 192.0.2.%d\n", i, i)
	}
	return b.String()
}

// spfCase is one transaction: its HELO (default client.src.test), MAIL
// FROM and RCPT TO (default u@corp.test), the reply to RCPT (or to the
// end of DATA when RCPT is accepted), and the Received-SPF: header the
// message has at the sink ("" for none).
type spfCase struct {
	name, helo, from, rcpt string
	reply                  string
	header                 string
}

// sendSPF runs one transaction from outside and returns the reply that
// ended it: to RCPT when refused, else to the end of DATA.
func sendSPF(t *testing.T, addr string, c spfCase) string {
	t.Helper()
	if c.helo == "" {
		c.helo = "client.src.test"
	}
	if c.rcpt == "" {
		c.rcpt = "u@corp.test"
	}
	cl := harness.Dial(t, addr, outside)
	cl.Expect(250, "EHLO %s", c.helo)
	cl.Expect(250, "MAIL FROM:<%s>", c.from)
	if code, text := cl.Cmd("RCPT TO:<%s>", c.rcpt); code != 250 {
		return fmt.Sprintf("%d %s", code, text)
	}
	cl.Expect(354, "DATA")
	cl.Send(fmt.Sprintf("Subject: %s\r\nFrom: x@spf.test\r\n\r\nbody\r\n.\r\n", c.name))
	code, text := cl.Reply()
	cl.Expect(221, "QUIT")
	return fmt.Sprintf("%d %s", code, text)
}

var receivedSPFRe = regexp.MustCompile(`(?m)^Received-SPF: .*$`)

// sinkSPFHeaders waits for n messages at the sink and returns each one's
// Received-SPF: header lines by Subject; a Received-SPF: below our
// Received: header fails the test.
func sinkSPFHeaders(t *testing.T, sink *harness.Sink, n int) map[string]string {
	t.Helper()
	// smtp-sink creates a dump before it has written it: wait until each
	// one has the message's last line.
	var dumps []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		dumps = sink.WaitMessages(n, time.Until(deadline))
		complete := 0
		for _, d := range dumps {
			if _, msg := harness.SinkBody(d); strings.HasSuffix(msg, "\nbody\n") {
				complete++
			}
		}
		if complete >= n || time.Now().After(deadline) {
			break
		}
	}
	out := map[string]string{}
	for _, dump := range dumps {
		_, msg := harness.SinkBody(dump)
		head, _, _ := strings.Cut(msg, "\n\n")
		name := ""
		if m := subjectRe.FindStringSubmatch(head); m != nil {
			name = m[1]
		}
		out[name] = strings.Join(receivedSPFRe.FindAllString(head, -1), "\n")
		if h := out[name]; h != "" && strings.Index(head, "Received-SPF:") > strings.Index(head, "Received: from") {
			t.Errorf("%s: Received-SPF: is not above our Received: header:\n%s", name, head)
		}
	}
	return out
}

// checkSPFCases runs the cases against a postgate and checks the replies,
// then the headers at the sink.
func checkSPFCases(t *testing.T, p *harness.Postgate, sink *harness.Sink, cases []spfCase) {
	t.Helper()
	queued := 0
	for _, c := range cases {
		got := sendSPF(t, p.Addr, c)
		if !strings.HasPrefix(got, c.reply) {
			t.Errorf("%s: reply %q, want %q", c.name, got, c.reply)
		}
		if strings.HasPrefix(got, "250") {
			queued++
		}
	}
	headers := sinkSPFHeaders(t, sink, queued)
	for _, c := range cases {
		if !strings.HasPrefix(c.reply, "250") {
			continue
		}
		if got := headers[c.name]; got != c.header {
			t.Errorf("%s: at the sink\n%q\nwant\n%q", c.name, got, c.header)
		}
	}
}

// spfHeader is the Received-SPF: header policyd-spf writes, with the
// harness's myhostname as receiver.
func spfHeader(result, comment, identity, helo, from string) string {
	return fmt.Sprintf("Received-SPF: %s (%s) identity=%s; client-ip=127.0.0.5; helo=%s; envelope-from=%s; receiver=mx.gateway.test",
		result, comment, identity, helo, from)
}

const spfRelay = `smtpd_peername_lookup = no
relay_domains = corp.test
transport_maps = inline:{ corp.test=smtp:[127.0.0.1]:%d }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
postgate_dns_servers = %s
`

// TestSPFAgainstNSD: every SPF result against a real authoritative
// server (nsd), through reject_spf_fail, defer_spf_temperror and
// warn_spf_softfail in smtpd_sender_restrictions: the reply the client
// gets, the Received-SPF: header at the internal server, and the mail log.
// The reject text is policyd-spf's default (Reason_Message) with RFC
// 7372's codes, as a Postfix site running policyd-spf answers.
func TestSPFAgainstNSD(t *testing.T) {
	t.Parallel()
	ns := startNSD(t, map[string]string{"spf.test": spfZone})
	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(spfRelay, sink.Port, ns)+
		"smtpd_sender_restrictions = reject_spf_fail, defer_spf_temperror, warn_spf_softfail\n", "")
	const why = ". Please see http://www.openspf.net/Why?s="
	// Accepted with each result, in the header: name, result, domain.
	var cases []spfCase
	for _, q := range [][3]string{
		{"pass", "Pass", "pass"}, {"softfail", "Softfail", "softfail"}, {"neutral", "Neutral", "neutral"},
		{"none_no_record", "None", "none"}, {"none_no_domain", "None", "nxdomain"},
		{"permerror_lookup_limit", "Permerror", "many"}, {"permerror_syntax", "Permerror", "syntax"},
		{"pass_through_mx", "Pass", "viamx"}, {"pass_split_txt", "Pass", "split"},
	} {
		from := "a@" + q[2] + ".spf.test"
		cases = append(cases, spfCase{name: q[0], from: from, reply: "250 2.0.0 Ok: queued as",
			header: spfHeader(q[1], "mailfrom", "mailfrom", "client.src.test", from)})
	}
	checkSPFCases(t, p, sink, append(cases,
		spfCase{name: "fail", from: "a@fail.spf.test",
			reply: "550 5.7.23 <a@fail.spf.test>: Sender address rejected: Message rejected due to: SPF fail - not authorized" + why + "mfrom;id=a@fail.spf.test;ip=127.0.0.5;r=u@corp.test"},
		// The null sender: the HELO identity.
		spfCase{name: "null_sender_helo_fail", helo: "helo-fail.spf.test",
			reply: "550 5.7.23 <>: Sender address rejected: Message rejected due to: SPF fail - not authorized" + why + "helo;id=helo-fail.spf.test;ip=127.0.0.5;r=u@corp.test"},
		spfCase{name: "null_sender_helo_pass", helo: "helo-pass.spf.test", reply: "250 2.0.0 Ok: queued as",
			header: spfHeader("Pass", "sender SPF authorized", "helo", "helo-pass.spf.test", "<>")},
	))
	log := p.Log("a@split.spf.test")
	for _, want := range []string{
		"NOQUEUE: reject: RCPT from unknown[127.0.0.5]: 550 5.7.23 <a@fail.spf.test>: Sender address rejected: Message rejected due to: SPF fail - not authorized" + why + "mfrom;id=a@fail.spf.test;ip=127.0.0.5;r=u@corp.test; from=<a@fail.spf.test> to=<u@corp.test> proto=ESMTP helo=<client.src.test>",
		"NOQUEUE: reject_warning: RCPT from unknown[127.0.0.5]: 550 5.7.23 <a@softfail.spf.test>: Sender address rejected: Message rejected due to: domain owner discourages use of this host" + why + "mfrom;id=a@softfail.spf.test;ip=127.0.0.5;r=u@corp.test; from=<a@softfail.spf.test> to=<u@corp.test>",
		"NOQUEUE: Received-SPF: Pass (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo=client.src.test; envelope-from=a@pass.spf.test; receiver=mx.gateway.test",
		"NOQUEUE: Received-SPF: Permerror (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo=client.src.test; envelope-from=a@many.spf.test; receiver=mx.gateway.test; problem=lookup limit reached",
		"NOQUEUE: Received-SPF: Permerror (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo=client.src.test; envelope-from=a@syntax.spf.test; receiver=mx.gateway.test; problem=invalid ipX value",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("mail log lacks %q", want)
		}
	}
	// Once per transaction: one line per transaction, though three
	// restrictions asked.
	if n := strings.Count(log, "Received-SPF: Softfail"); n != 1 {
		t.Errorf("softfail logged %d times, want once", n)
	}
	if t.Failed() {
		t.Log(log)
	}
}

// TestSPFTemperror: a DNS server that answers SERVFAIL makes SPF a
// temperror: defer_spf_temperror answers 451 4.7.24 (here reached
// through a restriction class, for one recipient), and with
// postgate_spf_received_header = always and no SPF restriction the
// message carries the temperror in its Received-SPF: header.
func TestSPFTemperror(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, "temp.test. 60 IN TXT \"v=spf1 -all\"\n")
	srv.SetServfail("temp.test")
	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(spfRelay, sink.Port, srv.Addr())+`postgate_spf_received_header = always
smtpd_restriction_classes = spf_defer
spf_defer = defer_spf_temperror
smtpd_recipient_restrictions = check_recipient_access inline:{ defer@corp.test=spf_defer }
`, "")
	checkSPFCases(t, p, sink, []spfCase{
		{name: "deferred", from: "a@temp.test", rcpt: "defer@corp.test",
			reply: "451 4.7.24 <defer@corp.test>: Recipient address rejected: Message deferred due to: temporary DNS error in processing. Please see http://www.openspf.net/Why?s=mfrom;id=a@temp.test;ip=127.0.0.5;r=defer@corp.test"},
		{name: "header_only", from: "a@temp.test", reply: "250 2.0.0 Ok: queued as",
			header: spfHeader("Temperror", "mailfrom", "mailfrom", "client.src.test", "a@temp.test")},
	})
	log := p.Log("Received-SPF: Temperror")
	if want := "Received-SPF: Temperror (mailfrom) identity=mailfrom; client-ip=127.0.0.5; helo=client.src.test; envelope-from=a@temp.test; receiver=mx.gateway.test; problem="; !strings.Contains(log, want) {
		t.Errorf("mail log lacks %q:\n%s", want, log)
	}
}

// TestSPFPermitAndNoHeader: permit_spf_pass ends the sender restrictions
// for a pass; postgate_spf_received_header = no keeps the header out
// though SPF was evaluated.
func TestSPFPermitAndNoHeader(t *testing.T) {
	t.Parallel()
	ns := startNSD(t, map[string]string{"spf.test": spfZone})
	sink := harness.StartSink(t)
	p := harness.Start(t, fmt.Sprintf(spfRelay, sink.Port, ns)+`postgate_spf_received_header = no
smtpd_sender_restrictions = permit_spf_pass, reject
`, "")
	checkSPFCases(t, p, sink, []spfCase{
		{name: "pass_permitted", from: "a@pass.spf.test", reply: "250 2.0.0 Ok: queued as"},
		{name: "neutral_rejected", from: "a@neutral.spf.test",
			reply: "554 5.7.1 <a@neutral.spf.test>: Sender address rejected: Access denied"},
	})
	if log := p.Log("Received-SPF: Neutral"); !strings.Contains(log, "Received-SPF: Pass (mailfrom)") {
		t.Errorf("the SPF results are not in the mail log:\n%s", log)
	}
}
