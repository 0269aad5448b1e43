package gateway

import "testing"

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"MAIL FROM:<a@b>\r\n":  `MAIL FROM:<a@b>\r\n`,
		"a\\b\x00\x7f\xc3\xa9": `a\\b\000\177\303\251`,
		"\a\b\f\t\v":           `\a\b\f\t\v`,
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestIsHeader(t *testing.T) {
	for in, want := range map[string]bool{
		"Subject:": true, "X-Foo :": true, "From:": true,
		"MAIL": false, ":": false, "a b:": false, "\x01x:": false, "": false,
	} {
		if got := isHeader(in); got != want {
			t.Errorf("isHeader(%q) = %v, want %v", in, got, want)
		}
	}
}

// The disconnect line: Postfix's command order, ok/total when they
// differ, unknown last, commands=0/0 for a silent client.
func TestCmdStatsFormat(t *testing.T) {
	var st cmdStats
	if got := st.format(false); got != " commands=0/0" {
		t.Errorf("empty: %q", got)
	}
	for name, counts := range map[string][2]int{"EHLO": {1, 1}, "RCPT": {1, 2}, "MAIL": {1, 1}, "QUIT": {1, 1}} {
		i := lookupCommand(name)
		st[i].ok, st[i].total = counts[0], counts[1]
	}
	st[unknownStat].total = 2
	want := " ehlo=1 mail=1 rcpt=1/2 quit=1 unknown=0/2 commands=4/7 notes=bare_lf"
	if got := st.format(true); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
