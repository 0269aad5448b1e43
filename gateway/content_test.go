package gateway

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadContent(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		bare           bool
	}{
		{"crlf only", "a\r\nb\r\n", "a\r\nb\r\n", false},
		{"bare lf", "a\nb\r\nc\n", "a\r\nb\r\nc\r\n", true},
		{"leading lf", "\nx\r\n", "\r\nx\r\n", true},
		{"bare cr kept", "a\rb\r\n", "a\rb\r\n", false},
		{"smuggling", "x\n.\nMAIL FROM:<a>\r\n", "x\r\n.\r\nMAIL FROM:<a>\r\n", true},
		{"no final newline", "abc", "abc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			buf.WriteString("H: 1\r\n")
			// One byte per read: line ends split across reads.
			bare, err := readContent(&buf, iotest.OneByteReader(strings.NewReader(tc.in)))
			if err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != "H: 1\r\n"+tc.want {
				t.Errorf("got %q, want %q", got, "H: 1\r\n"+tc.want)
			}
			if bare != tc.bare {
				t.Errorf("bare LF %v, want %v", bare, tc.bare)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"simple", "Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n", "a@b"},
		{"case and fold", "message-id:\r\n <folded@b>\r\nX: y\r\n\r\n", "folded@b"},
		{"none", "Subject: x\r\n\r\nMessage-ID: <in@body>\r\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := messageID([]byte(tc.in)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPostfixReply(t *testing.T) {
	for _, tc := range []struct{ verb, in, want string }{
		{"MAIL", "250 2.0.0 Roger, accepting mail from <a@b>\r\n", "250 2.1.0 Ok\r\n"},
		{"RCPT", "250 2.0.0 I'll make sure <c@d> gets this\r\n", "250 2.1.5 Ok\r\n"},
		{"DATA", "354 Go ahead. End your data with <CR><LF>.<CR><LF>\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"},
		{"FOO", "500 5.5.2 Syntax errors, FOO command unrecognized\r\n", "500 5.5.2 Error: command not recognized\r\n"},
		{"DATA", "250 2.0.0 Ok: queued as ABC\r\n", ""},
		{"", "220 greeting\r\n", ""},
	} {
		got, ok := postfixReply(tc.verb, []byte(tc.in))
		if string(got) != tc.want || ok != (tc.want != "") {
			t.Errorf("%s %q: got %q, want %q", tc.verb, tc.in, got, tc.want)
		}
	}
}
