package rules

import (
	"strconv"
	"strings"
)

// Reply is an SMTP reply as postgate sends it: the one reply type, from a
// restriction's verdict to the wire.
type Reply struct {
	Code int
	// DSN is the enhanced status code ("5.7.1"), written after the code on
	// every line; "" for replies without one (the greeting, HELO, EHLO).
	DSN string
	// Text is the reply text; "\n" separates the lines of a multi-line
	// reply.
	Text string
}

// Lines returns the reply's lines as sent after the code: each with its
// enhanced status code.
func (r Reply) Lines() []string {
	lines := strings.Split(r.Text, "\n")
	if r.DSN != "" {
		for i, l := range lines {
			lines[i] = r.DSN + " " + l
		}
	}
	return lines
}

// String is the reply as one line of text, "550 5.7.1 text", for logs;
// multi-line replies are joined as they are sent, with CRLF.
func (r Reply) String() string {
	var b strings.Builder
	for i, l := range r.Lines() {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(strconv.Itoa(r.Code))
		if i < strings.Count(r.Text, "\n") {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}
