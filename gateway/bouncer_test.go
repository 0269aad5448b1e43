package gateway

import (
	"bytes"
	"context"
	"io"
	"net/mail"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"postgate/queue"
	"postgate/queue/bounce"
)

// TestNoticeLikePostfix builds the notices of the delivery failures and
// the delay that a real Postfix 3.7.11 reported in queue/bounce's
// fixtures, from what
// the delivery attempt holds: the reasons as logged and the remote replies
// as data (the lines the test server sent). Remote-MTA, Diagnostic-Code
// (a multi-line reply joined, "smtp" for LMTP too) and the rest are
// compared byte for byte; only the Message-Id differs, as it names the
// notice's own queue ID.
func TestNoticeLikePostfix(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		rcpts   []string
		failed  []queue.FailedRcpt
		delayed []queue.FailedRcpt
	}{
		{
			fixture: "multiline_reply",
			rcpts:   []string{"multi@example.com"},
			failed: []queue.FailedRcpt{{Index: 0, DSN: "5.1.1", Relay: "127.0.0.1[127.0.0.1]:33241",
				Reason: "host 127.0.0.1[127.0.0.1] said: 550-5.1.1 <multi@example.com>: Recipient address rejected: 550-5.1.1 this mailbox was closed on 2026-01-01, see https://help.example.com/mailboxes/closed-accounts for details 550 5.1.1 User unknown in virtual mailbox table (in reply to RCPT TO command)",
				Reply: &queue.Reply{Host: "127.0.0.1", Code: 550, DSN: "5.1.1",
					Text: "550-5.1.1 <multi@example.com>: Recipient address rejected:\n550-5.1.1 this mailbox was closed on 2026-01-01, see https://help.example.com/mailboxes/closed-accounts for details\n550 5.1.1 User unknown in virtual mailbox table"}}},
		},
		{
			fixture: "delay_reply",
			rcpts:   []string{"later@example.com"},
			delayed: []queue.FailedRcpt{{Index: 0, DSN: "4.2.1", Relay: "127.0.0.1[127.0.0.1]:43613", Action: "delayed",
				Reason: "host 127.0.0.1[127.0.0.1] said: 450-4.2.1 <later@example.com>: Recipient address rejected: 450 4.2.1 Greylisted, see https://greylist.example.com/about for the reasons and how long it lasts (in reply to RCPT TO command)",
				Reply: &queue.Reply{Host: "127.0.0.1", Code: 450, DSN: "4.2.1",
					Text: "450-4.2.1 <later@example.com>: Recipient address rejected:\n450 4.2.1 Greylisted, see https://greylist.example.com/about for the reasons and how long it lasts"}}},
		},
		{
			fixture: "lmtp",
			rcpts:   []string{"nobody@lmtp.test", "ok@lmtp.test", "full@lmtp.test"},
			failed: []queue.FailedRcpt{
				{Index: 0, DSN: "5.1.1", Relay: "127.0.0.1[127.0.0.1]:43111",
					Reason: "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nobody@lmtp.test> User doesn't exist: nobody@lmtp.test (in reply to RCPT TO command)",
					Reply:  &queue.Reply{Host: "127.0.0.1", Code: 550, DSN: "5.1.1", Text: "550 5.1.1 <nobody@lmtp.test> User doesn't exist: nobody@lmtp.test"}},
				{Index: 2, DSN: "5.2.2", Relay: "127.0.0.1[127.0.0.1]:43111",
					Reason: "host 127.0.0.1[127.0.0.1] said: 552-5.2.2 <full@lmtp.test> Mailbox is full: 552 5.2.2 quota exceeded (mailbox for user is full) (in reply to end of DATA command)",
					Reply:  &queue.Reply{Host: "127.0.0.1", Code: 552, DSN: "5.2.2", Text: "552-5.2.2 <full@lmtp.test> Mailbox is full:\n552 5.2.2 quota exceeded (mailbox for user is full)"}},
			},
		},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			want, err := os.ReadFile("../queue/bounce/testdata/postfix-3.7/" + tc.fixture + ".eml")
			if err != nil {
				t.Fatal(err)
			}
			field := func(re string) string {
				m := regexp.MustCompile(re).FindSubmatch(want)
				if m == nil {
					t.Fatalf("fixture lacks %s", re)
				}
				return string(m[1])
			}
			boundary := field(`boundary="([^"]+)"`)
			stamp, _ := strconv.ParseInt(boundary[strings.IndexByte(boundary, '.')+1:strings.IndexByte(boundary, '/')], 10, 64)
			arrival, err := mail.ParseDate(field(`Arrival-Date: ([^\r]+)`))
			if err != nil {
				t.Fatal(err)
			}
			// The original as queued: the returned message without the
			// Return-Path the notice adds.
			att := want[bytes.Index(want, []byte("Return-Path: ")):]
			att = att[bytes.Index(att, []byte("\r\n"))+2 : bytes.LastIndex(att, []byte("\r\n\r\n--"+boundary+"--"))+2]
			if tc.delayed != nil {
				att = append(bytes.Clone(att), "\r\nbody\r\n"...) // a delay notice returns the headers only
			}

			b := &bouncer{opts: bounce.Options{
				Myhostname: "mail.example.test", BounceSizeLimit: bounce.DefaultBounceSizeLimit,
				Now:                  func() time.Time { return time.Unix(stamp, 0).UTC() },
				MaximalQueueLifetime: 5 * 24 * time.Hour, DelayWarningTime: time.Second, SMTPUTF8Enable: true, NoThreading: true,
			}, classes: map[string]bool{}}
			n := &queue.Notice{Failed: tc.failed, Delays: tc.delayed,
				Content: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(att)), nil }}
			n.Msg.ID = field(`X-Postfix-Queue-ID: (\S+)`)
			n.Msg.Sender = strings.TrimPrefix(field(`X-Postfix-Sender: ([^\r]+)`), "rfc822; ")
			n.Msg.Arrival = arrival.UTC()
			for _, r := range tc.rcpts {
				n.Msg.Recipients = append(n.Msg.Recipients, queue.Recipient{Addr: r, ORCPT: "rfc822;" + r})
			}
			out, err := b.Notify(context.Background(), n)
			if err != nil || len(out) != 1 {
				t.Fatalf("Notify: %d notices, %v", len(out), err)
			}
			msgID := regexp.MustCompile(`(?m)^Message-Id: <[^>]*>\r$`)
			got := msgID.ReplaceAll(out[0].Content, []byte("Message-Id: <...>\r"))
			if w := msgID.ReplaceAll(want, []byte("Message-Id: <...>\r")); !bytes.Equal(got, w) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(w), "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("differs from Postfix at line %d:\n got %q\nwant %q", i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("differs from Postfix in length: %d lines, want %d", len(gl), len(wl))
			}
		})
	}
}

// A failure that quotes no remote reply (a lost connection, a local
// problem) is reported with its reason and no Remote-MTA, as Postfix does,
// even when a host was talked to.
func TestNoticeWithoutReply(t *testing.T) {
	r := noticeRcpt(queue.Recipient{Addr: "u@example.com"}, queue.FailedRcpt{DSN: "4.4.2", Relay: "mx.example.com[192.0.2.1]:25",
		Reason: "lost connection with mx.example.com[192.0.2.1] while sending RCPT TO"}, "delayed")
	if r.Diagnostic != "" || r.RemoteMTA != "" || r.Status != "4.4.2" || r.Action != "delayed" {
		t.Errorf("notice recipient %+v", r)
	}
}
