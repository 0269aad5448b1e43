package gateway

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNormalizeLF(t *testing.T) {
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
			if _, err := readLimited(&buf, iotest.OneByteReader(strings.NewReader(tc.in)), 0); err != nil {
				t.Fatal(err)
			}
			bare := normalizeLF(&buf, len("H: 1\r\n"))
			if got := buf.String(); got != "H: 1\r\n"+tc.want {
				t.Errorf("got %q, want %q", got, "H: 1\r\n"+tc.want)
			}
			if bare != tc.bare {
				t.Errorf("bare LF %v, want %v", bare, tc.bare)
			}
		})
	}
}

func TestReadLimited(t *testing.T) {
	for _, tc := range []struct {
		in     string
		limit  int64
		want   string
		tooBig bool
	}{
		{"abcdef", 0, "abcdef", false},
		{"abcdef", 6, "abcdef", false},
		{"abcdef", 4, "abcd", true},
	} {
		var buf bytes.Buffer
		r := strings.NewReader(tc.in)
		tooBig, err := readLimited(&buf, r, tc.limit)
		if err != nil || buf.String() != tc.want || tooBig != tc.tooBig || r.Len() != 0 {
			t.Errorf("readLimited(%q, %d) = %q, %v, %v (unread %d); want %q, %v", tc.in, tc.limit, buf.String(), tooBig, err, r.Len(), tc.want, tc.tooBig)
		}
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
