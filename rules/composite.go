package rules

import (
	"context"
	"fmt"
	"strings"
)

// unionmap:{type:name, ...} and pipemap:{type:name, ...}: tables made of
// tables. Like Postfix, the first table decides whether the whole is a
// fixed-string table (partial keys, lowercased) or a pattern table.

// unionTable answers with the values of every table that has the key,
// joined by commas, in the order listed (Postfix's dict_union).
type unionTable struct{ composite }

// pipeTable looks the key up in the first table, that value in the next,
// and so on: found only when every table answers (Postfix's dict_pipe).
type pipeTable struct{ composite }

type composite struct {
	spec   string
	tables []Table
}

func (c *composite) String() string { return c.spec }

func (c *composite) FixedString() bool { return IsFixedString(c.tables[0]) }

// Lookup stops at the first table that fails: a partial union is not an
// answer.
func (t *unionTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	var vals []string
	for _, tb := range t.tables {
		v, ok, err := tb.Lookup(ctx, key)
		if err != nil {
			return "", false, err
		}
		if ok {
			vals = append(vals, v)
		}
	}
	return strings.Join(vals, ","), len(vals) > 0, nil
}

func (t *pipeTable) Lookup(ctx context.Context, key string) (string, bool, error) {
	for _, tb := range t.tables {
		v, ok, err := tb.Lookup(ctx, key)
		if err != nil || !ok {
			return "", false, err
		}
		key = v
	}
	return key, true, nil
}

func openUnion(typ, name string, o OpenOptions) (Table, error) {
	c, err := openComposite(typ, name, o)
	if err != nil {
		return nil, err
	}
	return &unionTable{c}, nil
}

func openPipe(typ, name string, o OpenOptions) (Table, error) {
	c, err := openComposite(typ, name, o)
	if err != nil {
		return nil, err
	}
	return &pipeTable{c}, nil
}

// openComposite opens the tables of "{type:name, ...}" with Postfix's
// syntax error text.
func openComposite(typ, name string, o OpenOptions) (composite, error) {
	spec := typ + ":" + name
	bad := fmt.Errorf("bad syntax: %q; need \"%s:{type:name...}\"", spec, typ)
	inner, err := extpar(name)
	if err != nil || !strings.HasPrefix(name, "{") {
		return composite{}, bad
	}
	items := SplitList(inner)
	if len(items) == 0 {
		return composite{}, bad
	}
	c := composite{spec: spec}
	for _, item := range items {
		if !strings.Contains(item, ":") {
			return composite{}, bad
		}
		tb, err := OpenWith(item, o)
		if err != nil {
			return composite{}, fmt.Errorf("%s: %w", spec, err)
		}
		c.tables = append(c.tables, tb)
	}
	return c, nil
}
