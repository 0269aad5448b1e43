package dbcommon

import (
	"fmt"
	"strings"
)

// The needs of a query or result template, as Postfix's db_common
// gathers them from both templates of one table: a key or result without
// the parts a template uses is skipped (no query, or no result).
const (
	needKeyDomain   = 1 << iota // %d in the query, %D, %1..%9
	needKeyUser                 // %u in the query, %U
	needValueDomain             // %d in result_format
	needValueUser               // %u in result_format
)

// Templates are a table's query template (an SQL query, an LDAP filter,
// a memcache key_format) and its result_format, checked at load.
type Templates struct {
	query, result string
	needs         int
	nparts        int // highest %1..%9: keys need that many domain labels
}

// Quote escapes one expanded value for the query's language (SQL
// literal, LDAP filter); nil inserts it as it is.
type Quote func(string) (string, error)

// ParseTemplates checks both templates and records what they need.
func ParseTemplates(query, result string) (*Templates, error) {
	return parseTemplates(query, result, func(isQuery bool) string {
		if isQuery {
			return "query"
		}
		return "result_format"
	})
}

// Templates reads result_format from the file (default "%s") and checks
// it with query, the value of queryParam (or built from other parameters
// by the caller); errors name the file and line.
func (c *Config) Templates(queryParam, query string) (*Templates, error) {
	return parseTemplates(query, c.Str("result_format", "%s"), func(isQuery bool) string {
		if isQuery {
			return c.Where(queryParam)
		}
		return c.Where("result_format")
	})
}

func parseTemplates(query, result string, where func(isQuery bool) string) (*Templates, error) {
	t := &Templates{query: query, result: result}
	for _, f := range []struct {
		text    string
		isQuery bool
	}{{query, true}, {result, false}} {
		for i := 0; i < len(f.text); i++ {
			if f.text[i] != '%' {
				continue
			}
			i++
			if i == len(f.text) {
				return nil, fmt.Errorf("%s: invalid template %q: %% at the end", where(f.isQuery), f.text)
			}
			switch c := f.text[i]; {
			case c == '%' || c == 's' || c == 'S':
			case c == 'u' && f.isQuery, c == 'U':
				t.needs |= needKeyUser
			case c == 'u':
				t.needs |= needValueUser
			case c == 'd' && f.isQuery, c == 'D':
				t.needs |= needKeyDomain
			case c == 'd':
				t.needs |= needValueDomain
			case c >= '1' && c <= '9':
				t.needs |= needKeyDomain
				t.nparts = max(t.nparts, int(c-'0'))
			default:
				return nil, fmt.Errorf("%s: invalid template %q: unknown %%%c", where(f.isQuery), f.text, c)
			}
		}
	}
	return t, nil
}

// addr is an address split as db_common splits it: the domain after the
// last '@' (hasDomain false when there is none or it is empty).
type addr struct {
	whole, user, domain string
	hasDomain, noUser   bool
}

func splitAddr(s string) addr {
	a := addr{whole: s, user: s}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		a.user, a.domain = s[:at], s[at+1:]
		a.hasDomain = a.domain != ""
		a.noUser = at == 0
	}
	return a
}

// usable reports whether a has the parts needed (domainFlag, userFlag of
// t.needs); nparts > 0 also needs that many domain labels.
func (t *Templates) usable(a addr, domainFlag, userFlag int, nparts int) bool {
	if t.needs&domainFlag != 0 && !a.hasDomain || t.needs&userFlag != 0 && a.noUser {
		return false
	}
	return nparts == 0 || len(labels(a.domain)) >= nparts
}

// ExpandQuery expands the query template for a lookup key, each inserted
// part passed through quote; ok is false when the key is empty or lacks a
// part the template needs: the table answers "not found" without a query,
// as Postfix does.
func (t *Templates) ExpandQuery(key string, quote Quote) (q string, ok bool, err error) {
	k := splitAddr(key)
	if key == "" || !t.usable(k, needKeyDomain, needKeyUser, t.nparts) {
		return "", false, nil
	}
	q, err = expand(t.query, k, k, quote)
	return q, err == nil, err
}

// ExpandResult expands result_format for one value found for key; ok is
// false when the value is empty or lacks a part the template needs (the
// value is skipped).
func (t *Templates) ExpandResult(value, key string) (string, bool) {
	v := splitAddr(value)
	if value == "" || !t.usable(v, needValueDomain, needValueUser, 0) || !t.usable(splitAddr(key), needKeyDomain, needKeyUser, t.nparts) {
		return "", false
	}
	r, _ := expand(t.result, v, splitAddr(key), nil)
	return r, true
}

// expand replaces %s %u %d with parts of v (the key in a query, the value
// in a result), %S %U %D and %1..%9 with parts of k (the lookup key), and
// %% with %.
func expand(format string, v, k addr, quote Quote) (string, error) {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			b.WriteByte(format[i])
			continue
		}
		i++
		var part string
		switch c := format[i]; c {
		case '%':
			b.WriteByte('%')
			continue
		case 's', 'u', 'd', 'S', 'U', 'D':
			a := v
			if c < 'a' {
				a = k
			}
			part = a.whole
			if c|0x20 == 'u' {
				part = a.user
			} else if c|0x20 == 'd' {
				part = a.domain
			}
		default: // '1'..'9', checked by parseTemplates and usable
			l := labels(k.domain)
			part = l[len(l)-int(c-'0')]
		}
		if quote != nil {
			var err error
			if part, err = quote(part); err != nil {
				return "", err
			}
		}
		b.WriteString(part)
	}
	return b.String(), nil
}

// labels splits a domain as Postfix's argv_split does: empty labels (from
// leading, doubled or trailing dots) are dropped, and %1 is the last.
func labels(domain string) []string {
	return strings.FieldsFunc(domain, func(r rune) bool { return r == '.' })
}
