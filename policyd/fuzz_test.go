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

// FuzzReadRequest: whatever a client sends, ReadRequest gives a request
// or an error, never a panic, and a request it read is the same when the
// client's encoding of it is read back.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nsize=12\n\n",
		"request=smtpd_access_policy\nrecipient_count=x\n\n",
		"no equals\n\n",
		"sender=a\nsender=b\nunknown=1\n\n",
		"\n",
		"size=+7\nencryption_keysize=\n\n",
		"protocol_state=RCPT",
	} {
		f.Add(s)
	}
	lim := Limits{Line: 512, Request: 4096}
	f.Fuzz(func(t *testing.T, in string) {
		_, req, err := ReadRequest(bufio.NewReader(strings.NewReader(in)), lim)
		if err != nil {
			return
		}
		var b strings.Builder
		req.encode(&b, req.PolicyContext)
		kind, again, err := ReadRequest(bufio.NewReader(strings.NewReader(b.String())), Limits{Line: 1 << 20, Request: 1 << 20})
		if err != nil || kind != RequestType || *again != *req {
			t.Errorf("%q: read back %q %+v %v, want %+v", in, kind, again, err, req)
		}
	})
}
