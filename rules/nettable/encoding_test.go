package nettable

import (
	"bufio"
	"strings"
	"testing"
)

func TestHexQuote(t *testing.T) {
	for raw, quoted := range map[string]string{
		"user@example.com":   "user@example.com",
		"a b\tc":             "a%20b%09c",
		"100%":               "100%25",
		"caf\xc3\xa9":        "caf%C3%A9",
		"x\x7f\x00":          "x%7F%00",
		"<a+b=c>,;\"'\\/!~#": "<a+b=c>,;\"'\\/!~#",
	} {
		if got := hexQuote(raw); got != quoted {
			t.Errorf("hexQuote(%q) = %q, want %q", raw, got, quoted)
		}
		if got, ok := hexUnquote(quoted); !ok || got != raw {
			t.Errorf("hexUnquote(%q) = %q, %v", quoted, got, ok)
		}
	}
	if got, ok := hexUnquote("a%2fb%2Fc"); !ok || got != "a/b/c" {
		t.Errorf("hexUnquote of lower-case digits: %q %v", got, ok)
	}
	for _, bad := range []string{"%", "%4", "%zz", "a%g1"} {
		if _, ok := hexUnquote(bad); ok {
			t.Errorf("hexUnquote(%q) accepted", bad)
		}
	}
}

func TestTCPReply(t *testing.T) {
	for _, tc := range []struct {
		name, line, value string
		found, keep, err  bool
	}{
		{"found", "200 relay%20ok", "relay ok", true, true, false},
		{"found empty", "200 ", "", true, true, false},
		{"not found", "500 no such key", "", false, true, false},
		{"temporary failure", "400 try again", "", false, false, true},
		{"other status", "300 what", "", false, false, true},
		{"no text separator", "200", "", false, false, true},
		{"tab separator", "250\tv", "v", true, true, false},
		{"bad status digits", "2x0 v", "", false, false, true},
		{"bad encoding", "200 a%zz", "", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, found, keep, err := parseTCPReply(tc.line)
			if v != tc.value || found != tc.found || keep != tc.keep || (err != nil) != tc.err {
				t.Errorf("parseTCPReply(%q) = %q, %v, %v, %v", tc.line, v, found, keep, err)
			}
		})
	}
}

func TestNetstring(t *testing.T) {
	if got := netstring("aliases user@example.com"); got != "24:aliases user@example.com," {
		t.Errorf("netstring: %q", got)
	}
	if got := netstring(""); got != "0:," {
		t.Errorf("empty netstring: %q", got)
	}
	for _, tc := range []struct{ in, want, err string }{
		{"5:hello,", "hello", ""},
		{"0:,", "", ""},
		{"9:OK a, b c,", "OK a, b c", ""},
		{":x,", "", "bad length"},
		{"3x:abc,", "", "bad length"},
		{"3:abc;", "", "missing ','"},
		{"3:ab", "", "EOF"},
		{"11:hello world,", "", "longer than 10"},
	} {
		got, err := readNetstring(bufio.NewReader(strings.NewReader(tc.in)), 10)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("readNetstring(%q) = %q, %v; want %q, error %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestSocketmapReply(t *testing.T) {
	for _, tc := range []struct{ reply, value, err string }{
		{"OK relay:[mx.test]", "relay:[mx.test]", ""},
		{"OK ", "", ""},
		{"NOTFOUND ", "", ""},
		{"NOTFOUND", "", ""},
		{"TEMP database restarting", "", "temporary error: \"database restarting\""},
		{"TIMEOUT", "", "timeout error"},
		{"PERM no such map", "", "permanent error"},
		{"WHAT", "", "unknown error"},
	} {
		v, found, err := parseSocketmapReply(tc.reply)
		if v != tc.value || found != strings.HasPrefix(tc.reply, "OK") ||
			tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseSocketmapReply(%q) = %q, %v, %v; want error %q", tc.reply, v, found, err, tc.err)
		}
	}
}
