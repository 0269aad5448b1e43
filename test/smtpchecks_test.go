package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestSMTPHeaderChecks: smtp_header_checks, smtp_mime_header_checks,
// smtp_nested_header_checks and smtp_body_checks edit what the smtp client
// sends (a header removed, one replaced, one prepended, a body line
// replaced), log each action as Postfix's smtp does, and refuse actions
// that are not for a delivery agent (REJECT is logged as unsupported and
// does nothing).
func TestSMTPHeaderChecks(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	gw := harness.Start(t, fmt.Sprintf(`relay_domains = relay.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }
smtp_header_checks = regexp:{ {/^X-Secret:/ IGNORE}, {/^Subject: hello/ REPLACE Subject: [ext] replaced}, {/^X-Reject:/ REJECT no}, {/^From:/ PREPEND X-Checked: yes} }
smtp_mime_header_checks = regexp:{ {/^Content-Type: text\/html/ WARN html part} }
smtp_nested_header_checks = regexp:{ {/^Subject: inner/ REPLACE Subject: nested replaced} }
smtp_body_checks = regexp:{ {/^password: / REPLACE password: xxx} }
`, sink.Port), "")
	message := "From: a@src.test\r\nSubject: hello\r\nX-Secret: 42\r\n  continued\r\nX-Reject: yes\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\npassword: hunter2\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n"
	msg := relayOne(t, gw, sink, message)
	for _, want := range []string{"X-Checked: yes\nFrom: a@src.test\n", "Subject: [ext] replaced\n", "X-Reject: yes\n",
		"\npassword: xxx\n", "\nSubject: nested replaced\n", "\ninner body\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, msg)
		}
	}
	for _, gone := range []string{"X-Secret", "continued", "hunter2", "Subject: hello", "Subject: inner"} {
		if strings.Contains(msg, gone) {
			t.Errorf("delivered message still has %q:\n%s", gone, msg)
		}
	}
	log := gw.Log("status=sent")
	id := ""
	if i := strings.Index(log, ": to=<u@relay.test>"); i > 10 {
		id = log[strings.LastIndexByte(log[:i], ' ')+1 : i]
	}
	for _, want := range []string{
		"postgate/smtp[", id + ": replace: header Subject: hello: Subject: [ext] replaced",
		id + ": prepend: header From: a@src.test: X-Checked: yes",
		id + ": warning: header Content-Type: text/html: html part",
		id + ": replace: body password: hunter2: password: xxx",
		id + ": replace: header Subject: inner: Subject: nested replaced",
		"warning: unsupported command in smtp_header_checks map: REJECT no",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "X-Secret") {
		t.Errorf("IGNORE is not logged, as in Postfix:\n%s", log)
	}
}

// TestLMTPHeaderChecks: the lmtp client has its own lmtp_header_checks and
// lmtp_body_checks; the smtp client's do not apply to it.
func TestLMTPHeaderChecks(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, "-L")
	gw := harness.Start(t, fmt.Sprintf(`relay_domains = relay.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = inline:{ relay.test=lmtp:[127.0.0.1]:%d }
lmtp_header_checks = regexp:{ {/^X-Secret:/ IGNORE}, {/^Subject: hello/ REPLACE Subject: lmtp replaced} }
lmtp_body_checks = regexp:{ {/^password: / REPLACE password: xxx} }
smtp_header_checks = regexp:{ {/^Subject:/ PREPEND X-Smtp: wrong client} }
`, sink.Port), "")
	message := "Subject: hello\r\nX-Secret: 42\r\n\r\npassword: hunter2\r\n"
	msg := relayOne(t, gw, sink, message)
	if !strings.Contains(msg, "Subject: lmtp replaced\n") || !strings.Contains(msg, "\npassword: xxx\n") ||
		strings.Contains(msg, "X-Secret") || strings.Contains(msg, "X-Smtp") {
		t.Errorf("delivered message:\n%s", msg)
	}
	want := ": replace: header Subject: hello: Subject: lmtp replaced"
	if log := gw.Log("status=sent"); !strings.Contains(log, "postgate/lmtp[") || !strings.Contains(log, want) {
		t.Errorf("log lacks the lmtp client's %q:\n%s", want, log)
	}
}

// relayOne sends message from outside to u@relay.test and returns it as
// it reached the sink.
func relayOne(t *testing.T, gw *harness.Postgate, sink *harness.Sink, message string) string {
	t.Helper()
	if code, text := sendThrough(t, gw.Addr, "a@src.test", "u@relay.test", message); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	msgs := sink.WaitMessages(1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("sink got %d messages, want 1\n%s", len(msgs), gw.Log(""))
	}
	_, msg := harness.SinkBody(msgs[0])
	return msg
}
