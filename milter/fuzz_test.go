package milter

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseMessage: a message whose lines all end in CRLF comes out of
// ParseMessage and Reader unchanged when no milter changed it, and
// milterValue/headerValue give back a header's value (one without a bare
// CR before a line end).
func FuzzParseMessage(f *testing.F) {
	f.Add("From: a@src.test\r\nSubject: one\r\n two\r\n\r\nbody\r\n")
	f.Add("Subject: x\r\nnot a header\r\nbody\r\n")
	f.Add("\r\nonly a body\r\n")
	f.Add(" leading continuation\r\nX: y\r\n")
	f.Fuzz(func(t *testing.T, content string) {
		if !strings.HasSuffix(content, "\r\n") || strings.Count(content, "\n") != strings.Count(content, "\r\n") {
			return
		}
		m, err := ParseMessage(strings.NewReader(content), int64(len(content)), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(m.Reader()); err != nil {
			t.Fatal(err)
		}
		if b.String() != content {
			t.Fatalf("round trip:\n%q\n%q", content, b.String())
		}
		for _, h := range m.Header {
			// A bare CR before a line end cannot survive the milter form,
			// whose lines end in LF: "\r\r\n" and "\r\n" both become "\r\n".
			// Only a header a milter changes goes through it.
			if v := h.Value; strings.HasPrefix(v, " ") && !strings.Contains(v, "\r\r") && headerValue(milterValue(v)) != v {
				t.Errorf("value %q comes back as %q", v, headerValue(milterValue(v)))
			}
		}
	})
}
