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

// outboundConfig is the main.cf both servers run for
// TestOutboundAgainstPostfix, with DIR the table directory and SINK the
// internal server's port.
const outboundConfig = `myhostname = mx.gateway.test
myorigin = corp.test
mydestination =
relay_domains = corp.test
recipient_delimiter = +
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = texthash:DIR/transport
sender_bcc_maps = texthash:DIR/sender_bcc
recipient_bcc_maps = texthash:DIR/recipient_bcc
recipient_canonical_maps = texthash:DIR/recipient_canonical
virtual_alias_maps = texthash:DIR/virtual
always_bcc = journal@corp.test
smtp_header_checks = regexp:DIR/smtp_header_checks
smtp_mime_header_checks = regexp:DIR/smtp_mime_header_checks
smtp_nested_header_checks = regexp:DIR/smtp_nested_header_checks
smtp_body_checks = regexp:DIR/smtp_body_checks
`

var outboundTables = map[string]string{
	"transport":                 "corp.test smtp:[127.0.0.1]:SINK\n",
	"sender_bcc":                "boss@src.test archive-boss\n",
	"recipient_bcc":             "bob@corp.test bob-copy@corp.test\n",
	"recipient_canonical":       "bob-copy@corp.test bob-archive@corp.test\n",
	"virtual":                   "alias@corp.test real@corp.test\n",
	"smtp_header_checks":        "/^X-Secret:/ IGNORE\n/^Subject: hello/ REPLACE Subject: [ext] replaced\n/^X-Reject:/ REJECT no\n/^From:/ PREPEND X-Checked: yes\n/^X-Strip:/ STRIP stripped\n",
	"smtp_mime_header_checks":   "/^Content-Type: text\\/html/ WARN html part\n",
	"smtp_nested_header_checks": "/^Subject: inner/ REPLACE Subject: nested replaced\n",
	"smtp_body_checks":          "/^password: / REPLACE password: xxx\n/^secret line/ IGNORE\n/^mark$/ PREPEND before the mark\n",
}

// outboundCases are the messages of TestOutboundAgainstPostfix: client
// address, envelope and message, named by their Subject's first word.
// A message is sent with From:, To:, Message-ID: and Date: unless bare;
// a bare one from 127.0.0.1 (a local client, permit_inet_interfaces) gets
// cleanup's missing headers, one from outside none.
var outboundCases = []struct {
	name, client, from string
	to                 []string
	body               string
	bare               bool
}{
	{"bcc", outside, "boss@src.test", []string{"bob+tag@corp.test"}, "Subject: bcc\r\n\r\nbody\r\n", false},
	{"always", outside, "other@src.test", []string{"carol@corp.test"}, "Subject: always\r\n\r\nbody\r\n", false},
	{"hello", outside, "other@src.test", []string{"dave@corp.test"}, "Subject: hello\r\nX-Secret: 42\r\n  continued\r\nX-Reject: yes\r\nX-Strip: me\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\npassword: hunter2\r\nsecret line\r\nmark\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n", false},
	// The ORCPT each recipient gets: its original address (before
	// virtual_alias_maps), quoted where its local part needs it.
	{"orcpt", outside, "other@src.test", []string{"alias@corp.test", "plain@corp.test", `"john doe"@corp.test`}, "Subject: orcpt\r\n\r\nbody\r\n", false},
	{"local", "127.0.0.1", "lo@src.test", []string{"erin@corp.test"}, "Subject: local\r\n\r\nbody\r\n", true},
	{"outside", outside, "out@src.test", []string{"frank@corp.test"}, "Subject: outside\r\n\r\nbody\r\n", true},
}

// TestOutboundAgainstPostfix runs the same messages through the real
// Postfix and through postgate, each relaying to its own smtp-sink, with
// sender_bcc_maps, recipient_bcc_maps (found without the extension, the
// copy canonical-mapped), always_bcc, and the smtp client's
// smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks
// and smtp_body_checks, and compares what reached the sinks: the
// recipients with their NOTIFY, and the messages without the Received:
// headers (the Message-Id: and Date: cleanup adds are compared by their
// form, see addedRe). The smtp client's action log lines are compared
// too.
func TestOutboundAgainstPostfix(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "postgate-outbound-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Postfix reads the tables as user postfix
		t.Fatal(err)
	}
	postfixSink, postgateSink := harness.StartSink(t), harness.StartSink(t)
	write := func(sub string, sink *harness.Sink) string {
		d := filepath.Join(dir, sub)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range outboundTables {
			text = strings.ReplaceAll(text, "SINK", fmt.Sprint(sink.Port))
			if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return strings.ReplaceAll(outboundConfig, "DIR", d)
	}
	pf := harness.StartPostfix(t, write("postfix", postfixSink))
	pg := harness.Start(t, write("postgate", postgateSink), "")
	want := outboundResults(t, pf.Addr, postfixSink)
	got := outboundResults(t, pg.Addr, postgateSink)
	for _, c := range outboundCases {
		if got[c.name] != want[c.name] {
			t.Errorf("%s: postgate relayed\n%s\nPostfix\n%s", c.name, got[c.name], want[c.name])
		}
	}
	// What Postfix's cleanup added, so the comparison above is not of
	// two messages without them (X-Checked: is smtp_header_checks'
	// PREPEND, on the added From:).
	if local := "Message-Id: <YYYYMMDDHHMMSS.QUEUEID@mx.gateway.test>\nDate: DATE\nX-Checked: yes\nFrom: lo@src.test\n"; !strings.Contains(want["local"], local) {
		t.Errorf("Postfix's local message lacks %q:\n%s", local, want["local"])
	}
	if strings.Contains(want["outside"], "Date:") {
		t.Errorf("Postfix added headers to the message from outside:\n%s", want["outside"])
	}
	g, w := smtpActions(pg.Log("status=sent")), smtpActions(pf.Log())
	if len(w) == 0 || strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("smtp action lines, postgate:\n%s\nPostfix:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// outboundResults sends the cases to addr and returns, by case, what
// reached the sink: the recipients (sorted, with their parameters) and
// the message without Received: headers.
func outboundResults(t *testing.T, addr string, sink *harness.Sink) map[string]string {
	t.Helper()
	for _, m := range outboundCases {
		msg := m.body
		if !m.bare {
			msg = fmt.Sprintf("From: %s\r\nTo: %s\r\nMessage-ID: <%s@src.test>\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\n%s", m.from, m.to[0], m.name, m.body)
		}
		c := harness.Dial(t, addr, m.client)
		c.Expect(250, "EHLO client.test")
		c.Expect(250, "MAIL FROM:<%s>", m.from)
		for _, to := range m.to {
			c.Expect(250, "RCPT TO:<%s>", to)
		}
		c.Expect(354, "DATA")
		c.Send(msg + ".\r\n")
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s at %s: %d %s", m.name, addr, code, text)
		}
		c.Cmd("QUIT")
	}
	// Each case is one transaction: all its recipients go to one next hop.
	out := map[string]string{}
	for _, dump := range sink.WaitMessages(len(outboundCases), 30*time.Second) {
		env, msg := harness.SinkBody(dump)
		name := ""
		if m := subjectRe.FindStringSubmatch(msg); m != nil {
			name = m[1]
		}
		if strings.Contains(msg, "Message-ID: <hello@src.test>") {
			name = "hello" // its Subject is replaced
		}
		var rcpts []string
		for _, l := range strings.Split(env, "\n") {
			if r, ok := strings.CutPrefix(l, "X-Rcpt-Args: "); ok {
				rcpts = append(rcpts, r)
			}
		}
		sort.Strings(rcpts)
		out[name] += strings.Join(rcpts, "\n") + "\n" + comparable(msg)
	}
	return out
}

// comparable is a relayed message without its Received: headers, and
// with the queue ID and time in the Message-Id: and Date: that cleanup
// added replaced by words.
func comparable(msg string) string {
	msg = addedIDRe.ReplaceAllString(receivedRe.ReplaceAllString(msg, ""), "${1}<YYYYMMDDHHMMSS.QUEUEID@$2>")
	return addedDateRe.ReplaceAllString(msg, "${1}DATE")
}

// addedIDRe and addedDateRe match the Message-Id: and Date: headers
// cleanup adds, in the forms Postfix writes them; the queue ID and time
// in them differ from run to run.
var (
	addedIDRe   = regexp.MustCompile(`(?m)^((?:Resent-)?Message-Id: )<\d{14}\.[0-9A-Za-z]+@([^>]+)>$`)
	addedDateRe = regexp.MustCompile(`(?m)^((?:Resent-)?Date: )(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 1-3]\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4} \([A-Z]+\)$`)
)

var receivedRe = regexp.MustCompile(`(?m)^Received: .*\n(?:[ \t].*\n)*`)

var smtpActionRe = regexp.MustCompile(`/smtp\[\d+\]: (?:[0-9A-Z]+: )?((?:replace|prepend|strip|warning|info): .*)`)

// smtpActions returns the smtp client's action lines of a mail log and its
// warnings, without the queue IDs, sorted.
func smtpActions(log string) []string {
	var out []string
	for _, m := range smtpActionRe.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

// TestMissingHeadersAgainstPostfix: with always_add_missing_headers and
// undisclosed_recipients_header, messages from outside get cleanup's
// missing headers from the real Postfix and from postgate alike: all of
// them, the Resent- ones for a message with a Resent- header, the
// undisclosed recipients header for one with only a Bcc:, and none for
// one that has them all; message_drop_headers set to a list of its own
// removes its headers and no longer the default Return-Path:. The
// messages at the sinks are compared.
func TestMissingHeadersAgainstPostfix(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"bare":     "Subject: bare\r\n\r\nbody\r\n",
		"resent":   "Subject: resent\r\nFrom: a@src.test\r\nTo: b@corp.test\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\nMessage-ID: <r@src.test>\r\nResent-To: c@corp.test\r\n\r\nbody\r\n",
		"bcc":      "Subject: bcc\r\nBcc: d@corp.test\r\n\r\nbody\r\n",
		"complete": "Subject: complete\r\nFrom: a@src.test\r\nCc: b@corp.test\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\nMessage-ID: <c@src.test>\r\n\r\nbody\r\n",
		"dropped":  "Subject: dropped\r\nFrom: a@src.test\r\nTo: b@corp.test\r\nX-Internal-Route: 7\r\nReturn-Path: <x@src.test>\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\nMessage-ID: <d@src.test>\r\n\r\nbody\r\n",
	}
	run := func(start func(string) string, sink *harness.Sink) map[string]string {
		addr := start("myhostname = mx.gateway.test\nrelay_domains = corp.test\nalways_add_missing_headers = yes\n" +
			"undisclosed_recipients_header = To: undisclosed-recipients:;\n" +
			"message_drop_headers = bcc, resent-bcc, x-internal-route\n" + rejectUnauth + routes("corp.test", sink))
		for name, msg := range cases {
			if code, text := sendThrough(t, addr, "s@src.test", "u@corp.test", msg); code != 250 {
				t.Fatalf("%s at %s: %d %s", name, addr, code, text)
			}
		}
		out := map[string]string{}
		for _, dump := range sink.WaitMessages(len(cases), 30*time.Second) {
			_, msg := harness.SinkBody(dump)
			if m := subjectRe.FindStringSubmatch(msg); m != nil {
				out[m[1]] = comparable(msg)
			}
		}
		return out
	}
	postfixSink, postgateSink := harness.StartSink(t), harness.StartSink(t)
	want := run(func(cf string) string { return harness.StartPostfix(t, cf).Addr }, postfixSink)
	got := run(func(cf string) string { return harness.Start(t, cf, "").Addr }, postgateSink)
	for name := range cases {
		if got[name] != want[name] || want[name] == "" {
			t.Errorf("%s: postgate relayed\n%s\nPostfix\n%s", name, got[name], want[name])
		}
	}
	if d := want["dropped"]; strings.Contains(d, "X-Internal-Route") || !strings.Contains(d, "Return-Path: <x@src.test>") {
		t.Errorf("Postfix did not drop what message_drop_headers lists, or dropped more:\n%s", d)
	}
	if !strings.Contains(want["bare"], "Message-Id: <YYYYMMDDHHMMSS.QUEUEID@mx.gateway.test>\nDate: DATE\nFrom: s@src.test\nTo: undisclosed-recipients:;\n") {
		t.Errorf("Postfix did not add the headers to the bare message:\n%s", want["bare"])
	}
}
