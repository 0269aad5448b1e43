package rules

import "testing"

func TestSplitExtension(t *testing.T) {
	for _, c := range []struct{ local, delims, base, ext string }{
		{"user+foo", "+", "user", "+foo"},
		{"user+foo+bar", "+", "user", "+foo+bar"},
		{"user", "+", "user", ""},
		{"+foo", "+", "+foo", ""},
		{"user-foo", "+-", "user", "-foo"},
		{"owner-list", "-", "owner-list", ""},
		{"list-request", "-", "list-request", ""},
		{"user+foo", "", "user+foo", ""},
		{"postmaster+x", "+", "postmaster", "+x"},
		{"postmaster", "+", "postmaster", ""},
		{"MAILER-DAEMON", "-", "MAILER-DAEMON", ""},
	} {
		base, ext := SplitExtension(c.local, c.delims)
		if base != c.base || ext != c.ext {
			t.Errorf("SplitExtension(%q, %q) = %q, %q; want %q, %q", c.local, c.delims, base, ext, c.base, c.ext)
		}
	}
}
