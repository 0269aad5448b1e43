package rules

import (
	"context"
	"fmt"
	"strings"
)

// StringList is a Postfix string match list (smtpd_forbidden_commands,
// smtpd_noop_commands): literal strings, compared without case, and
// type:table items, matched when the lowercased string is a key; '!'
// excludes and /file/name includes, as in every match list. The first
// matching item decides.
type StringList struct {
	items []stringItem
}

type stringItem struct {
	negate bool
	text   string // lowercased literal, or the table spec
	table  Table
}

// NewStringList compiles a string list.
func NewStringList(items []string, opts ...ListOption) (*StringList, error) {
	cfg := newListConfig(opts)
	expanded, err := expandItems(items, false, 0)
	if err != nil {
		return nil, err
	}
	l := &StringList{}
	for _, it := range expanded {
		si := stringItem{negate: it.negate, text: strings.ToLower(it.pattern)}
		if isTableItem(it.pattern) {
			si.text = it.pattern
			if si.table, err = cfg.open(it.pattern); err != nil {
				return nil, err
			}
		}
		l.items = append(l.items, si)
	}
	return l, nil
}

// Match reports whether s is in the list. A table lookup failure is
// returned as an error, never as "no match". A nil or empty list matches
// nothing.
func (l *StringList) Match(ctx context.Context, s string) (bool, error) {
	if l == nil || len(l.items) == 0 {
		return false, nil
	}
	s = strings.ToLower(s)
	for _, it := range l.items {
		ok := it.text == s
		if it.table != nil {
			var err error
			if _, ok, err = it.table.Lookup(ctx, s); err != nil {
				return false, fmt.Errorf("%s: %w", it.text, err)
			}
		}
		if ok {
			return !it.negate, nil
		}
	}
	return false, nil
}
