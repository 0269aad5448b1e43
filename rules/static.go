package rules

import (
	"context"
	"errors"
	"fmt"
)

// staticTable answers every lookup with one value (static:).
type staticTable struct {
	spec  string
	value string
}

func (t *staticTable) FixedString() bool { return true }

func (t *staticTable) String() string { return t.spec }

func (t *staticTable) Lookup(context.Context, string) (string, bool, error) {
	return t.value, true, nil
}

// openStatic parses static:value and static:{ value with spaces }.
func openStatic(typ, name string, _ OpenOptions) (Table, error) {
	value, err := extpar(name)
	if err != nil {
		return nil, fmt.Errorf("bad static:name syntax: %w", err)
	}
	return &staticTable{spec: typ + ":" + name, value: value}, nil
}

// failTable fails every lookup (fail:name), like Postfix's fail: table.
type failTable struct{ spec string }

func openFail(typ, name string, _ OpenOptions) (Table, error) {
	return &failTable{spec: typ + ":" + name}, nil
}

func (t *failTable) FixedString() bool { return true }

func (t *failTable) String() string { return t.spec }

func (t *failTable) Lookup(context.Context, string) (string, bool, error) {
	return "", false, errors.New("table lookup failed")
}
