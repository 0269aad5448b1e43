package gateway

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestMissingHeaders: which headers cleanup adds, in what form and order,
// for the header blocks a message may have.
func TestMissingHeaders(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	log, err := OpenMailLog("", &out, "postgate", "h")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, header, sender, fullName, undisclosed, want string
		long                                              bool
	}{
		{name: "none", header: "Subject: a\r\n", sender: "u@o.test",
			want: "Message-Id: <20261204150000.ID@host.test>\r\nDate: Fri,  4 Dec 2026 15:00:00 +0000 (UTC)\r\nFrom: u@o.test\r\n"},
		{name: "all there", header: "From: x@y\r\nDate: d\r\nMESSAGE-ID : <m>\r\nCc: z@y\r\n", sender: "u@o.test", undisclosed: "To: undisclosed-recipients:;"},
		{name: "no recipient header", header: "From: x@y\r\nDate: d\r\nMessage-ID: <m>\r\nBcc: z@y\r\n", undisclosed: "To: undisclosed-recipients:;",
			want: "To: undisclosed-recipients:;\r\n"},
		{name: "bad undisclosed text", header: "From: x@y\r\nDate: d\r\nMessage-ID: <m>\r\n", undisclosed: "undisclosed"},
		{name: "resent", header: "From: x@y\r\nDate: d\r\nMessage-ID: <m>\r\nResent-To: z@y\r\nResent-Date: e\r\n", sender: "u@o.test",
			want: "Resent-Message-Id: <20261204150000.ID@host.test>\r\nResent-From: u@o.test\r\n"},
		{name: "long queue IDs, null sender", header: "Date: d\r\n", long: true,
			want: "Message-Id: <ID@host.test>\r\nFrom: MAILER-DAEMON\r\n"},
		{name: "quoted local part", header: "Date: d\r\nMessage-ID: <m>\r\n", sender: "john doe@o.test", want: "From: \"john doe\"@o.test\r\n"},
		{name: "full name", header: "Date: d\r\nMessage-ID: <m>\r\n", sender: "u@o.test", fullName: "Jane  Doe", want: "From: Jane Doe <u@o.test>\r\n"},
		{name: "full name with specials", header: "Date: d\r\nMessage-ID: <m>\r\n", sender: "u@o.test", fullName: `J. "Q" Doe`, want: `From: "J. \"Q\" Doe" <u@o.test>` + "\r\n"},
	} {
		s := &session{svc: &service{hostname: "host.test", log: log,
			canonical: &canonical{undisclosed: c.undisclosed, longQueueIDs: c.long}}}
		s.txn.id, s.txn.sender = "ID", c.sender
		content := c.header + "\r\nbody\r\n"
		seen, end, _ := cleanupHeaders(strings.NewReader(content), int64(len(content)), nil)
		if end != int64(len(c.header)) {
			t.Errorf("%s: header block ends at %d, want %d", c.name, end, len(c.header))
		}
		if got := string(s.missingHeaders(seen, at, c.fullName)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	log.Close() // writes what it holds
	if !strings.Contains(out.String(), `warning: bad undisclosed_recipients_header header text "undisclosed" -- need "headername: headervalue"`) {
		t.Errorf("no warning about the bad header text:\n%s", out.String())
	}
}

// TestDropHeaders: the headers of message_drop_headers leave the primary
// header block (any case, folded or not) and still count as seen; a
// nested message's stay.
func TestDropHeaders(t *testing.T) {
	content := "Subject: a\r\nBCC: x@y\r\n z@y\r\nResent-Bcc: w@y\r\nReturn-Path: <r@y>\r\nTo: t@y\r\n\r\nBcc: in the body\r\n"
	drop := map[string]bool{"bcc": true, "resent-bcc": true, "return-path": true}
	seen, end, edits := cleanupHeaders(strings.NewReader(content), int64(len(content)), drop)
	if !seen.resent || !seen.visibleRcpt || end != int64(strings.Index(content, "\r\n\r\n")+2) {
		t.Errorf("seen %+v, end %d", seen, end)
	}
	b, _ := io.ReadAll(editedContent(strings.NewReader(content), int64(len(content)), edits))
	if want := "Subject: a\r\nTo: t@y\r\n\r\nBcc: in the body\r\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}
