package gateway

import "testing"

// TestLocalContent: a submitted message gets CRLF line ends and an empty
// line between its header section and a body, whatever shape it has.
func TestLocalContent(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"headers and body", "Subject: a\n\nbody\n", "Subject: a\r\n\r\nbody\r\n"},
		{"folded header", "Subject: a\n b\n\nbody\n", "Subject: a\r\n b\r\n\r\nbody\r\n"},
		{"headers only", "Subject: a\n", "Subject: a\r\n"},
		{"last header without line end", "Subject: a", "Subject: a\r\n"},
		{"body only", "just text\n", "\r\njust text\r\n"},
		{"body right after headers", "Subject: a\nnot a header line\n", "Subject: a\r\n\r\nnot a header line\r\n"},
		{"empty", "", ""},
	} {
		if got := string(localContent([]byte(c.in))); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
