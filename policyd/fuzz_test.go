package policyd

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzReadReply: a policy server's reply, whatever it is, gives an action
// or an error with warnings, never a panic; an action never spans lines,
// and a reply that reads cleanly ended with an empty line.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"action=DUNNO\n\n",
		"foo=bar\naction=REJECT no\naction=OK\n\n",
		"action\n\n",
		"\n",
		"garbage",
		"action=DEFER_IF_PERMIT Greylisted, see http://x/\nx=y\n\n",
		"act",
		"action=" + strings.Repeat("x", 70000) + "\n\n",
	} {
		f.Add(s)
	}
	c := &Client{ep: endpoint{name: "127.0.0.1:1"}}
	f.Fuzz(func(t *testing.T, reply string) {
		action, err := c.readReply(bufio.NewReader(strings.NewReader(reply)), func(string) {})
		if err != nil {
			return
		}
		if strings.Contains(action, "\n") {
			t.Errorf("action %q spans lines", action)
		}
		if !strings.Contains(reply, "action="+action+"\n") || !strings.Contains(reply, "\n\n") && !strings.HasPrefix(reply, "\n") {
			t.Errorf("action %q from %q", action, reply)
		}
	})
}
