package dnsbl

import (
	"net/netip"
	"testing"
)

// The cases of Postfix's own ip_match test (src/util/ip_match.in and .ref).
func TestParseFilterPostfixCases(t *testing.T) {
	bad := map[string]string{
		"1.2.300.4":               `need decimal number 0..255 or "[" at "1.2.>300<.4"`,
		"1.2.3000.4":              `need decimal number 0..255 or "[" at "1.2.>3000<.4"`,
		"1.2.3.":                  `need decimal number 0..255 or "[" at "1.2.3.><"`,
		"1.2.3":                   `need "." at "1.2.3><"`,
		"a":                       `need decimal number 0..255 or "[" at ">a<"`,
		"1.2.3;4":                 `need "." at "1.2.3>;<4"`,
		"1.2.[].4":                `need decimal number 0..255 at "1.2.[>]<.4"`,
		"1.2.[.4":                 `need decimal number 0..255 at "1.2.[>.<4"`,
		"1.2.].4":                 `need decimal number 0..255 or "[" at "1.2.>]<.4"`,
		"1.2.[1-255].5":           `need ";" or "]" at "1.2.[1>-<255].5"`,
		"1.2.[1..127.128..255].5": `need ";" or "]" at "1.2.[1..127>.<128..255].5"`,
		"1.2.3.[4..1]":            `numeric range error at "1.2.3.[4..>1<]"`,
		"1.2.3.[4.1]":             `numeric range error at "1.2.3.[4.>1<]"`,
		"1.2.3.[4.x]":             `numeric range error at "1.2.3.[4.>x<]"`,
		"1.2.3.[x]":               `need decimal number 0..255 at "1.2.3.[>x<]"`,
		"1.2.3.4x":                `garbage after pattern at "1.2.3.4>x<"`,
		"[[1;2].3.4.5":            `missing "]" character`,
		"1;2].3.4.5":              `need "." at "1>;<2].3.4.5"`,
		"":                        `empty address pattern`,
		"[]":                      `empty address pattern`,
	}
	for pattern, want := range bad {
		if _, err := ParseFilter(pattern); err == nil || err.Error() != want {
			t.Errorf("ParseFilter(%q) error = %v, want %s", pattern, err, want)
		}
	}
	matches := []struct {
		pattern string
		yes, no []string
	}{
		{"1.2.3.4", []string{"1.2.3.4"}, []string{"1.2.3.5"}},
		{"1.2.[3].4", []string{"1.2.3.4"}, []string{"1.2.4.4"}},
		{"1.2.[1..127;128..255].5", []string{"1.2.1.5", "1.2.255.5"}, []string{"1.2.0.5"}},
		{"1.2.[3..11].5", []string{"1.2.3.5", "1.2.11.5"}, []string{"1.2.2.5", "1.2.12.5", "1.2.11.6"}},
		{"1.2.[3;5;7;9;11].5", []string{"1.2.3.5", "1.2.11.5"}, []string{"1.2.2.5", "1.2.4.5", "1.2.12.5", "1.2.11.6"}},
		{"[1;2].3.4.5", []string{"1.3.4.5", "2.3.4.5"}, []string{"3.3.4.5"}},
		{"[[1;2].3.4.5]", []string{"1.3.4.5", "2.3.4.5"}, []string{"3.3.4.5"}},
		{"127.0.0.[2..11]", []string{"127.0.0.2", "127.0.0.11"}, []string{"127.0.0.1", "127.0.0.12", "::ffff:127.0.0.1"}},
		{"127.0.[0..255].[2;4;10..12]", []string{"127.0.9.4", "127.0.255.12"}, []string{"127.0.9.3", "2001:db8::2"}},
	}
	for _, c := range matches {
		f, err := ParseFilter(c.pattern)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", c.pattern, err)
			continue
		}
		if f.String() != c.pattern {
			t.Errorf("String() = %q, want %q", f, c.pattern)
		}
		for _, a := range c.yes {
			if !f.Match(netip.MustParseAddr(a)) {
				t.Errorf("%s does not match %s", c.pattern, a)
			}
		}
		for _, a := range c.no {
			if f.Match(netip.MustParseAddr(a)) {
				t.Errorf("%s matches %s", c.pattern, a)
			}
		}
	}
}

func TestParseSite(t *testing.T) {
	s, err := ParseSite("zen.test=127.0.0.[2..11]")
	if err != nil || s.Domain != "zen.test" || s.Arg != "zen.test=127.0.0.[2..11]" || s.Filter == nil || s.Filter.String() != "127.0.0.[2..11]" {
		t.Fatalf("ParseSite = %+v, %v", s, err)
	}
	if s, err := ParseSite("bl.test"); err != nil || s.Domain != "bl.test" || s.Filter != nil {
		t.Fatalf("ParseSite(bl.test) = %+v, %v", s, err)
	}
	_, err = ParseSite("zen.test=127.0.0.300")
	if want := `RBL reply error: need decimal number 0..255 or "[" at "127.0.0.>300<"`; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"127.0.0.2", "[127.0.0.[2;3..4]]", "1.2.[1..127;128..255].5", "[[", "1.2.3.[4..1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFilter(s)
		if err != nil {
			return
		}
		fl.Match(netip.MustParseAddr("127.0.0.2"))
	})
}
