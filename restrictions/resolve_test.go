package restrictions

import (
	"testing"

	"postgate/rules"
)

func TestResolve(t *testing.T) {
	mydest, err := rules.NewDomainList([]string{"local.test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEval(t, Options{MyDestination: mydest, Myorigin: "local.test"})
	for _, c := range []struct {
		in          string
		addr        string
		routed, fin bool
	}{
		{"u@remote.test", "u@remote.test", false, false},
		{"u@local.test", "u@local.test", false, true},
		{"u@LOCAL.test.", "u@LOCAL.test", false, true},
		{"u", "u@local.test", false, true},
		{"u%remote.test@local.test", "u@remote.test", false, false},
		{"remote.test!u@local.test", "u@remote.test", false, false},
		{"@local.test:u@remote.test", "u@remote.test", true, false},
		{"u%v@remote.test", "u%v@remote.test", true, false},
		{"u%other@local.test", "u@other", false, false},
		{"u%local.test@local.test", "u@local.test", false, true},
		{"a%b%remote.test@local.test", "a%b@remote.test", true, false},
	} {
		r, err := e.resolve(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if r.addr != c.addr || r.routed != c.routed || r.final != c.fin {
			t.Errorf("resolve(%q) = %q routed=%v final=%v; want %q %v %v", c.in, r.addr, r.routed, r.final, c.addr, c.routed, c.fin)
		}
	}
}

func TestStripExtension(t *testing.T) {
	for _, c := range []struct{ local, delims, base, ext string }{
		{"user+foo", "+", "user", "+foo"},
		{"user+foo+bar", "+", "user", "+foo+bar"},
		{"user", "+", "user", ""},
		{"+foo", "+", "+foo", ""},
		{"user-foo", "+-", "user", "-foo"},
		{"owner-list", "-", "owner-list", ""},
		{"list-request", "-", "list-request", ""},
		{"user+foo", "", "user+foo", ""},
	} {
		base, ext := stripExtension(c.local, c.delims)
		if base != c.base || ext != c.ext {
			t.Errorf("stripExtension(%q, %q) = %q, %q; want %q, %q", c.local, c.delims, base, ext, c.base, c.ext)
		}
	}
}
