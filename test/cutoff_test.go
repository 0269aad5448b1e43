package test

import (
	"net"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestCutOffContentIsNotQueued: a message whose connection ends before all
// of its content arrived (a BDAT chunk cut short, by a close or a
// half-close; DATA before its final dot) is neither queued nor delivered,
// and the log says the connection was lost inside the content. A whole
// message sent afterwards on the same gateway is delivered, so the sink
// is shown to be listening.
func TestCutOffContentIsNotQueued(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink), "")
	cases := []struct {
		name   string
		before []string // commands answered before the cut content
		send   string
		close  bool // close instead of half-closing
		lost   string
	}{
		{"BDAT LAST cut, closed", nil, "BDAT 100 LAST\r\n" + strings.Repeat("x", 50), true, "lost connection after BDAT (50 bytes)"},
		{"BDAT LAST cut, half-closed", nil, "BDAT 100 LAST\r\n" + strings.Repeat("y", 50), false, "lost connection after BDAT (50 bytes)"},
		{"BDAT cut in a second chunk", []string{"BDAT 12\r\nSubject: 1\r\n"}, "BDAT 100 LAST\r\n" + strings.Repeat("z", 30), false, "lost connection after BDAT (42 bytes)"},
		{"DATA without its final dot", []string{"DATA\r\n"}, "Subject: cut\r\n\r\nno end\r\n", false, "lost connection after DATA (24 bytes)"},
		{"DATA cut after a lone dot-LF", []string{"DATA\r\n"}, "Subject: cut\r\n\r\nx\n.\n", false, "lost connection after DATA (20 bytes)"},
	}
	for _, tc := range cases {
		c := outsideTxn(t, p.Addr)
		for _, b := range tc.before {
			c.Send(b)
			if code, text := c.Reply(); code != 250 && code != 354 {
				t.Fatalf("%s: %q: %d %s", tc.name, b, code, text)
			}
		}
		c.Send(tc.send)
		if tc.close {
			c.Conn.Close()
		} else {
			c.Conn.(*net.TCPConn).CloseWrite()
			// No reply may come back, only the end of the connection.
			if code, text := c.Reply(); code != 0 {
				t.Errorf("%s: reply %d %s to cut-off content", tc.name, code, text)
			}
		}
		if log := p.Log(tc.lost); !strings.Contains(log, tc.lost) {
			t.Errorf("%s: maillog lacks %q:\n%s", tc.name, tc.lost, log)
		}
	}
	// A whole message after them: delivered, and the only one.
	c := outsideTxn(t, p.Addr)
	sendContent(c, "Subject: whole\r\n\r\nwhole\r\n", true)
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("whole message: %d %s", code, text)
	}
	sink.WaitMessages(1, 20*time.Second)
	time.Sleep(time.Second) // a wrongly queued message would be delivered by now too
	msgs := sink.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: whole") {
		t.Fatalf("sink got %d messages, want only the whole one:\n%s", len(msgs), strings.Join(msgs, "\n---\n"))
	}
	out, err := p.Run("queue", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "@relay.test") {
		t.Errorf("queue still holds a message:\n%s", out)
	}
	if log := p.Log("status=sent"); strings.Count(log, "status=sent") != 1 {
		t.Errorf("want exactly one delivery in the log:\n%s", log)
	}
}
