package relay

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// checkRemote compares the server reply a result carries.
func checkRemote(t *testing.T, got *Reply, want *Reply) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Errorf("Remote = %+v, want none", *got)
	case want != nil && got == nil:
		t.Errorf("Remote = nil, want %+v", *want)
	case want != nil && *got != *want:
		t.Errorf("Remote = %+v\n        want %+v", *got, *want)
	}
}

// Each result that quotes a server reply carries it as data: the host,
// the code, the enhanced code, the lines as sent, and the command it
// answered; a multi-line reply keeps its lines, which the reason joins
// with spaces.
func TestResultRemoteReply(t *testing.T) {
	f := newFakeServer(t, nil)
	f.rcptReply["gone@example.com"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "5.1.1 <gone@example.com>: Recipient address rejected:\nUser unknown in virtual mailbox table"}
	f.rcptReply["later@example.com"] = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.NoEnhancedCode, Message: "try later"}
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "ok@example.com", "gone@example.com", "later@example.com"))
	checkRemote(t, res[0].Remote, &Reply{Host: "127.0.0.1", Code: 250, DSN: "2.0.0", Text: "250 2.0.0 OK: queued", Command: "end of DATA"})
	checkRemote(t, res[1].Remote, &Reply{Host: "127.0.0.1", Code: 550, DSN: "5.1.1", Command: "RCPT TO",
		Text: "550-5.1.1 <gone@example.com>: Recipient address rejected:\n550 5.1.1 User unknown in virtual mailbox table"})
	if want := "host 127.0.0.1[127.0.0.1] said: 550-5.1.1 <gone@example.com>: Recipient address rejected: 550 5.1.1 User unknown in virtual mailbox table (in reply to RCPT TO command)"; res[1].Reply != want {
		t.Errorf("reason %q\n  want %q", res[1].Reply, want)
	}
	checkRemote(t, res[2].Remote, &Reply{Host: "127.0.0.1", Code: 450, DSN: "4.0.0", Text: "450 try later", Command: "RCPT TO"})

	f.mailReply = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Access denied"}
	res = tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com"))
	checkRemote(t, res[0].Remote, &Reply{Host: "127.0.0.1", Code: 553, DSN: "5.7.1", Text: "553 5.7.1 Access denied", Command: "MAIL FROM"})
}

// Failures of our own (no connection, a lost session) quote no reply.
func TestResultNoRemoteReply(t *testing.T) {
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message(fmt.Sprintf("[127.0.0.1]:%d", closedPort(t)), simpleContent, "a@example.com"))
	if res[0].Status != Deferred || res[0].Remote != nil {
		t.Errorf("connection refused: %+v", res[0])
	}
	f := newFakeServer(t, nil)
	f.data = func(c *smtp.Conn, r io.Reader) error {
		io.Copy(io.Discard, r)
		c.Conn().Close()
		return nil
	}
	res = tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com"))
	if res[0].Status != Deferred || res[0].Remote != nil {
		t.Errorf("lost connection: %+v", res[0])
	}
}

// A greeting refused with a multi-line 5xx reply is a soft failure that
// quotes the greeting, which answered no command.
func TestGreetingRemoteReply(t *testing.T) {
	r := newRawServer(t, func(r *rawServer) {
		r.greeting = "554-5.7.1 No SMTP service here\r\n554 5.7.1 Bad DNS PTR resource record\r\n"
	})
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, "a@example.com"))
	checkRemote(t, res[0].Remote, &Reply{Host: "127.0.0.1", Code: 554, DSN: "4.7.1",
		Text: "554-5.7.1 No SMTP service here\n554 5.7.1 Bad DNS PTR resource record"})
}

// LMTP: each recipient's reply after the content is its own; a server
// that drops the connection during LHLO is described as Postfix's lmtp
// does.
func TestLMTPRemoteReply(t *testing.T) {
	f := newFakeServer(t, func(s *smtp.Server) { s.LMTP = true })
	f.rcptReply["gone@example.com"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<gone@example.com> User doesn't exist: gone@example.com"}
	tr := newTransport(t, Options{LMTP: true})
	res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "ok@example.com", "gone@example.com"))
	checkRemote(t, res[0].Remote, &Reply{Host: "127.0.0.1", Code: 250, DSN: "2.0.0", Text: "250 2.0.0 <ok@example.com> OK: queued", Command: "end of DATA"})
	checkRemote(t, res[1].Remote, &Reply{Host: "127.0.0.1", Code: 550, DSN: "5.1.1", Text: "550 5.1.1 <gone@example.com> User doesn't exist: gone@example.com", Command: "RCPT TO"})

	raw := newRawServer(t, nil) // it knows no LHLO
	res = tr.Deliver(context.Background(), message(raw.nexthop(), simpleContent, "a@example.com"))
	if want := "host 127.0.0.1[127.0.0.1] refused to talk to me: 502 5.5.2 Error: command not recognized"; res[0].Reply != want {
		t.Errorf("LHLO refused: %q, want %q", res[0].Reply, want)
	}
	checkRemote(t, res[0].Remote, &Reply{Host: "127.0.0.1", Code: 502, DSN: "5.5.2", Text: "502 5.5.2 Error: command not recognized", Command: "LHLO"})
	if got := raw.commands("QUIT"); len(got) == 0 || !strings.HasPrefix(got[0], "LHLO ") {
		t.Errorf("commands %q, want LHLO first", got)
	}

	// A server that greets and then says nothing more.
	l := listenLocal(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "220 mute.test LMTP\r\n")
		}
	}()
	t.Cleanup(func() { l.Close(); l.closeConns() })
	tr = newTransport(t, Options{LMTP: true, HeloTimeout: 100 * time.Millisecond})
	res = tr.Deliver(context.Background(), message(fmt.Sprintf("[127.0.0.1]:%d", portOf(l)), simpleContent, "a@example.com"))
	if want := "conversation with 127.0.0.1[127.0.0.1] timed out while performing the LHLO handshake"; res[0].Reply != want || res[0].Remote != nil {
		t.Errorf("LHLO timeout: %q %+v, want %q", res[0].Reply, res[0].Remote, want)
	}
}

func TestCommandName(t *testing.T) {
	for line, want := range map[string]string{
		"MAIL FROM:<a@b> SIZE=10": "MAIL FROM",
		"rcpt to:<a@b>":           "RCPT TO",
		"DATA":                    "DATA",
		".":                       "end of DATA",
		"LHLO relay.test":         "LHLO",
		"STARTTLS":                "STARTTLS",
	} {
		if got := commandName(line); got != want {
			t.Errorf("commandName(%q) = %q, want %q", line, got, want)
		}
	}
}
