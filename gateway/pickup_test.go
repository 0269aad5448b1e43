package gateway

import (
	"strings"
	"testing"
	"time"
)

// TestLocalContent: the headers cleanup adds to local mail go at the end
// of the header section, whatever shape the submitted message has.
func TestLocalContent(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	added := "Message-Id: <20261204150000.ID@host.test>\r\nDate: Fri,  4 Dec 2026 15:00:00 +0000 (UTC)\r\nFrom: u@o.test\r\n"
	for _, c := range []struct{ name, in, want string }{
		{"headers and body", "Subject: a\n\nbody\n", "Subject: a\r\n" + added + "\r\nbody\r\n"},
		{"folded header", "Subject: a\n b\n\nbody\n", "Subject: a\r\n b\r\n" + added + "\r\nbody\r\n"},
		{"headers only", "Subject: a\n", "Subject: a\r\n" + added},
		{"last header without line end", "Subject: a", "Subject: a\r\n" + added},
		{"body only", "just text\n", added + "\r\njust text\r\n"},
		{"body right after headers", "Subject: a\nnot a header line\n", "Subject: a\r\n" + added + "\r\nnot a header line\r\n"},
		{"empty", "", added},
		{"has them all", "From: x@y\nDate: d\nMessage-ID: <m>\n\nb\n", "From: x@y\r\nDate: d\r\nMessage-ID: <m>\r\n\r\nb\r\n"},
	} {
		if got := string(localContent([]byte(c.in), "ID", "u@o.test", "", "host.test", at)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	if got := fromHeader("u@o.test", "Jane  Doe"); got != "From: Jane Doe <u@o.test>\r\n" {
		t.Errorf("fromHeader: %q", got)
	}
	if got := fromHeader("", "Jane"); !strings.HasPrefix(got, "From: MAILER-DAEMON") {
		t.Errorf("fromHeader for the null sender: %q", got)
	}
}
