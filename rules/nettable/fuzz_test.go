package nettable

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzServerReplies: what a tcp or socketmap server sends is remote
// input. Parsing never panics, and a value found is what the server
// encoded.
func FuzzServerReplies(f *testing.F) {
	for _, s := range []string{"200 a%20b", "500 no", "400 x", "2x0 y", "200 %", "200 %4", "5:OK ab,", "0:,", "9:NOTFOUND ,", "3:ab", "12:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, found, _, err := parseTCPReply(s); err == nil && found && v != mustUnquote(t, s[4:]) {
			t.Fatalf("parseTCPReply(%q) = %q", s, v)
		}
		reply, err := readNetstring(bufio.NewReader(strings.NewReader(s)), socketmapMaxReply)
		if err != nil {
			return
		}
		// Leading zeros in the length are accepted and not reproduced.
		if enc := netstring(reply); !strings.HasPrefix(s, enc) && !strings.HasPrefix(s, "0") {
			t.Fatalf("readNetstring(%q) = %q", s, reply)
		}
		parseSocketmapReply(reply)
	})
}

func mustUnquote(t *testing.T, s string) string {
	t.Helper()
	v, ok := hexUnquote(s)
	if !ok {
		t.Fatalf("hexUnquote(%q) failed after parseTCPReply accepted it", s)
	}
	return v
}
