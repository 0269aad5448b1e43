package dbcommon

import (
	"context"
	"fmt"
	"strings"

	"postgate/rules"
)

// DomainFilter is the "domain" parameter of Postfix's database tables:
// when set, only keys user@domain whose domain is in the list (names or
// tables, as in any Postfix string list) are looked up; other keys are
// "not found" without a query.
type DomainFilter struct {
	list *rules.StringList // nil: every key is looked up
}

// DomainFilter reads the "domain" parameter; tables it names are opened
// with o.
func (c *Config) DomainFilter(o rules.OpenOptions) (*DomainFilter, error) {
	items := rules.SplitList(c.Str("domain", ""))
	if len(items) == 0 {
		return &DomainFilter{}, nil
	}
	l, err := rules.NewStringList(items, rules.WithOpener(func(spec string) (rules.Table, error) {
		return rules.OpenWith(spec, o)
	}))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Where("domain"), err)
	}
	return &DomainFilter{list: l}, nil
}

// Allows reports whether key may be looked up; an error is a failed
// lookup in a table the list names.
func (f *DomainFilter) Allows(ctx context.Context, key string) (bool, error) {
	if f.list == nil {
		return true, nil
	}
	at := strings.LastIndexByte(key, '@')
	if at <= 0 || at == len(key)-1 {
		return false, nil
	}
	return f.list.Match(ctx, key[at+1:])
}
