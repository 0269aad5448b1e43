package rules

import (
	"context"
	"testing"
)

func TestCompositeTables(t *testing.T) {
	// Errors: Postfix's texts (postmap: fatal: ...).
	for _, spec := range []string{"unionmap:{}", "unionmap:{inline}", "pipemap:x", "pipemap:{a b}"} {
		typ := spec[:len("unionmap")]
		if spec[0] == 'p' {
			typ = "pipemap"
		}
		_, err := Open(spec)
		if want := `bad syntax: "` + spec + `"; need "` + typ + `:{type:name...}"`; err == nil || err.Error() != want {
			t.Errorf("Open(%s) = %v, want %s", spec, err, want)
		}
	}
	// A failing part fails the whole lookup, never a partial answer.
	for _, spec := range []string{"unionmap:{inline:{a=1}, fail:x}", "pipemap:{inline:{a=b}, fail:x}"} {
		tb, err := Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok, err := tb.Lookup(context.Background(), "a"); err == nil {
			t.Errorf("%s: Lookup = %q, %v, nil; want an error", spec, v, ok)
		}
	}
	// The first table decides the kind.
	for spec, fixed := range map[string]bool{
		"unionmap:{inline:{a=1}, cidr:{{10.0.0.0/8 x}}}": true,
		"pipemap:{cidr:{{10.0.0.0/8 x}}, inline:{x=y}}":  false,
	} {
		tb, err := Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		if IsFixedString(tb) != fixed {
			t.Errorf("%s: fixed-string = %v, want %v", spec, !fixed, fixed)
		}
	}
}
