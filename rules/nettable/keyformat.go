package nettable

import (
	"context"
	"fmt"
	"strings"

	"postgate/rules"
)

// keyFormat is a key template with Postfix's db_common expansions (the
// query side): %s the key, %u its local part (the whole key when it has
// no '@'), %d its domain, %[1-9] the domain's labels counted from the
// right, %S %U %D the same as %s %u %d, %% a '%'.
type keyFormat struct {
	format     string
	needDomain bool // %d %D %[1-9]: keys without a domain are not looked up
	needUser   bool // %u %U: keys with an empty local part are not looked up
	nparts     int  // highest %[1-9]
}

// parseKeyFormat checks a template once, at open.
func parseKeyFormat(format string) (*keyFormat, error) {
	k := &keyFormat{format: format}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		if i == len(format) {
			return nil, fmt.Errorf("invalid template %q: %% at the end", format)
		}
		switch c := format[i]; c {
		case '%', 's', 'S':
		case 'u', 'U':
			k.needUser = true
		case 'd', 'D':
			k.needDomain = true
		case '1', '2', '3', '4', '5', '6', '7', '8', '9':
			k.needDomain = true
			k.nparts = max(k.nparts, int(c-'0'))
		default:
			return nil, fmt.Errorf("invalid template %q: unknown %%%c", format, c)
		}
	}
	return k, nil
}

// expand fills the template in for key; ok=false means the key cannot
// have an entry (an empty key, no domain where the template needs one,
// too few domain labels), so the table answers "not found" without a
// network call, as Postfix does.
func (k *keyFormat) expand(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	user, domain, hasAt := key, "", false
	if at := strings.LastIndexByte(key, '@'); at >= 0 {
		user, domain, hasAt = key[:at], key[at+1:], true
	}
	if k.needDomain && domain == "" || k.needUser && hasAt && user == "" {
		return "", false
	}
	// Postfix splits with mystrtok: empty labels are dropped.
	labels := strings.FieldsFunc(domain, func(r rune) bool { return r == '.' })
	if len(labels) < k.nparts {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(k.format); i++ {
		c := k.format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = k.format[i]; c {
		case '%':
			b.WriteByte('%')
		case 's', 'S':
			b.WriteString(key)
		case 'u', 'U':
			b.WriteString(user)
		case 'd', 'D':
			b.WriteString(domain)
		default: // '1'..'9', checked by parseKeyFormat
			b.WriteString(labels[len(labels)-int(c-'0')])
		}
	}
	return b.String(), true
}

// domainFilter is the "domain" parameter of Postfix's database tables:
// when set, only keys user@domain whose domain is in the list are looked
// up; other keys are "not found" without a query.
type domainFilter struct {
	list *rules.StringList
}

func parseDomainFilter(value string) (*domainFilter, error) {
	items := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(items) == 0 {
		return &domainFilter{}, nil
	}
	l, err := rules.NewStringList(items)
	if err != nil {
		return nil, err
	}
	return &domainFilter{list: l}, nil
}

// allows reports whether key may be looked up; an error is a failed
// lookup in a table the list names.
func (f *domainFilter) allows(ctx context.Context, key string) (bool, error) {
	if f.list == nil {
		return true, nil
	}
	at := strings.LastIndexByte(key, '@')
	if at <= 0 || at == len(key)-1 {
		return false, nil
	}
	return f.list.Match(ctx, key[at+1:])
}
