package rules

import "testing"

func TestParseAction(t *testing.T) {
	for _, c := range []struct {
		name  string
		value string
		want  Action
	}{
		{"ok", "OK", Action{Kind: ActionOK}},
		{"ok lower with text", "ok whatever", Action{Kind: ActionOK, Text: "whatever"}},
		{"relay", "RELAY", Action{Kind: ActionOK}},
		{"all digits", "1234567", Action{Kind: ActionOK}},
		{"bare 550 is OK", "550", Action{Kind: ActionOK}},
		{"empty is OK", "", Action{Kind: ActionOK}},
		{"reject", "REJECT", Action{Kind: ActionReject}},
		{"reject text", "REJECT go away", Action{Kind: ActionReject, Text: "go away"}},
		{"reject dsn", "reject 5.1.1 no such user", Action{Kind: ActionReject, DSN: "5.1.1", Text: "no such user"}},
		{"defer", "DEFER try later", Action{Kind: ActionDefer, Text: "try later"}},
		{"code", "550 no such user", Action{Kind: ActionCode, Code: 550, Text: "no such user"}},
		{"code dsn", "450 4.2.0 busy", Action{Kind: ActionCode, Code: 450, DSN: "4.2.0", Text: "busy"}},
		{"421 code", "421 bye", Action{Kind: ActionCode, Code: 421, Text: "bye"}},
		{"6xx is a restriction", "600 text", Action{Kind: ActionRestrictions}},
		{"defer_if_reject", "DEFER_IF_REJECT maybe", Action{Kind: ActionDeferIfReject, Text: "maybe"}},
		{"defer_if_permit", "defer_if_permit 4.7.2 x", Action{Kind: ActionDeferIfPermit, DSN: "4.7.2", Text: "x"}},
		{"dunno", "DUNNO ignored", Action{Kind: ActionDunno, Text: "ignored"}},
		{"hold", "HOLD", Action{Kind: ActionHold}},
		{"discard", "DISCARD spam", Action{Kind: ActionDiscard, Text: "spam"}},
		{"filter", "FILTER smtp:[127.0.0.1]:10025", Action{Kind: ActionFilter, Arg: "smtp:[127.0.0.1]:10025"}},
		{"redirect", "REDIRECT a@b", Action{Kind: ActionRedirect, Arg: "a@b"}},
		{"bcc", "BCC a@b", Action{Kind: ActionBCC, Arg: "a@b"}},
		{"prepend", "PREPEND X-Foo: bar", Action{Kind: ActionPrepend, Arg: "X-Foo: bar"}},
		{"info", "INFO hello", Action{Kind: ActionInfo, Text: "hello"}},
		{"warn", "WARN hello", Action{Kind: ActionWarn, Text: "hello"}},
		{"ignore", "IGNORE", Action{Kind: ActionIgnore}},
		{"replace", "REPLACE X-A: b", Action{Kind: ActionReplace, Arg: "X-A: b"}},
		{"restriction list", "permit_mynetworks, reject", Action{Kind: ActionRestrictions}},
		{"class name", "permissive", Action{Kind: ActionRestrictions}},
		{"tab separator", "REJECT\tgo", Action{Kind: ActionReject, Text: "go"}},
		{"non-ASCII fold is not a keyword", "DIſCARD", Action{Kind: ActionRestrictions}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.want.Raw = c.value
			if got := ParseAction(c.value); got != c.want {
				t.Errorf("ParseAction(%q) = %+v, want %+v", c.value, got, c.want)
			}
		})
	}
}

func TestValidDSN(t *testing.T) {
	for s, want := range map[string]int{
		"5.7.1": 5, "5.7.1 text": 5, "4.123.456 x": 9, "2.0.0": 5,
		"3.7.1": 0, "5.7": 0, "5..1": 0, "5.1234.1": 0, "5.7.1x": 0, "": 0, "5.7.1234": 0,
	} {
		if got := ValidDSN(s); got != want {
			t.Errorf("ValidDSN(%q) = %d, want %d", s, got, want)
		}
	}
}

func FuzzParseAction(f *testing.F) {
	for _, s := range []string{"OK", "REJECT 5.7.1 x", "550 text", "", "DEFER_IF_PERMIT", "1234", "a, b", "450 4.1.1", "4\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := ParseAction(s)
		if a.Raw != s {
			t.Fatalf("Raw = %q, want %q", a.Raw, s)
		}
		if a.Kind == ActionCode && (a.Code < 400 || a.Code > 599) {
			t.Fatalf("code %d out of range for %q", a.Code, s)
		}
		if a.DSN != "" && ValidDSN(a.DSN) != len(a.DSN) {
			t.Fatalf("bad DSN %q from %q", a.DSN, s)
		}
		_ = a.Kind.String()
		_ = a.Command()
	})
}
