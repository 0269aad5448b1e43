package rules

import (
	"context"
	"fmt"
	"strings"
)

// memTable is an in-memory fixed-string table (inline:).
type memTable struct {
	spec string
	m    map[string]string
}

func (t *memTable) FixedString() bool { return true }

func (t *memTable) String() string { return t.spec }

func (t *memTable) List() [][2]string { return sortedEntries(t.m) }

func (t *memTable) Lookup(_ context.Context, key string) (string, bool, error) {
	v, ok := t.m[strings.ToLower(key)]
	return v, ok, nil
}

// openInline parses inline:{ key=value, { key = value with spaces } }.
// Keys are lowercased; a repeated key takes the last value (as Postfix).
func openInline(typ, name string, _ OpenOptions) (Table, error) {
	spec := typ + ":" + name
	bad := fmt.Errorf("bad syntax: %q; need \"inline:{name=value...}\"", spec)
	inner, err := extpar(strings.TrimSpace(name))
	if err != nil || !strings.HasPrefix(strings.TrimSpace(name), "{") {
		return nil, bad
	}
	items := SplitList(inner)
	if len(items) == 0 {
		return nil, bad
	}
	m := make(map[string]string, len(items))
	for _, item := range items {
		if strings.HasPrefix(item, "{") {
			if item, err = extpar(item); err != nil {
				return nil, fmt.Errorf("%s: %w", spec, err)
			}
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("missing '=' after attribute name: %q; need \"inline:{name=value...}\"", spec)
		}
		m[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return &memTable{spec: spec, m: m}, nil
}
