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
const outboundConfig = `myorigin = corp.test
mydestination =
relay_domains = corp.test
recipient_delimiter = +
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = texthash:DIR/transport
sender_bcc_maps = texthash:DIR/sender_bcc
recipient_bcc_maps = texthash:DIR/recipient_bcc
recipient_canonical_maps = texthash:DIR/recipient_canonical
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
	"smtp_header_checks":        "/^X-Secret:/ IGNORE\n/^Subject: hello/ REPLACE Subject: [ext] replaced\n/^X-Reject:/ REJECT no\n/^From:/ PREPEND X-Checked: yes\n/^X-Strip:/ STRIP stripped\n",
	"smtp_mime_header_checks":   "/^Content-Type: text\\/html/ WARN html part\n",
	"smtp_nested_header_checks": "/^Subject: inner/ REPLACE Subject: nested replaced\n",
	"smtp_body_checks":          "/^password: / REPLACE password: xxx\n/^secret line/ IGNORE\n/^mark$/ PREPEND before the mark\n",
}

// outboundCases are the messages of TestOutboundAgainstPostfix: envelope
// and message, named by their Subject's first word.
var outboundCases = []struct{ name, from, to, body string }{
	{"bcc", "boss@src.test", "bob+tag@corp.test", "Subject: bcc\r\n\r\nbody\r\n"},
	{"always", "other@src.test", "carol@corp.test", "Subject: always\r\n\r\nbody\r\n"},
	{"hello", "other@src.test", "dave@corp.test", "Subject: hello\r\nX-Secret: 42\r\n  continued\r\nX-Reject: yes\r\nX-Strip: me\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\npassword: hunter2\r\nsecret line\r\nmark\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n"},
}

// TestOutboundAgainstPostfix runs the same messages through the real
// Postfix and through postgate, each relaying to its own smtp-sink, with
// sender_bcc_maps, recipient_bcc_maps (found without the extension, the
// copy canonical-mapped), always_bcc, and the smtp client's
// smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks
// and smtp_body_checks, and compares what reached the sinks: the
// recipients with their NOTIFY, and the messages without the Received:
// headers (ORCPT parameters left out: see outboundResults). The smtp
// client's action log lines are compared too.
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
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nMessage-ID: <%s@src.test>\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\n%s", m.from, m.to, m.name, m.body)
		if code, text := sendThrough(t, addr, m.from, m.to, msg); code != 250 {
			t.Fatalf("%s at %s: %d %s", m.name, addr, code, text)
		}
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
				// Postfix's cleanup gives every recipient an ORCPT;
				// postgate sends only those the client gave (a
				// difference of its queue, not of these features).
				rcpts = append(rcpts, orcptRe.ReplaceAllString(r, ""))
			}
		}
		sort.Strings(rcpts)
		out[name] += strings.Join(rcpts, "\n") + "\n" + receivedRe.ReplaceAllString(msg, "")
	}
	return out
}

var orcptRe = regexp.MustCompile(` ORCPT=\S+`)

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
