package rules

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// cidrTable is Postfix's cidr: table (cidr_table(5)): address patterns
// (an address, or network/prefix) tried in file order against the whole
// key; the first that matches gives the value. "!" negates a pattern, and
// "if PATTERN" ... "endif" blocks nest. A key that is not an IP address
// matches nothing. It is not a fixed-string table: callers pass the full
// key once. The file is reloaded when it changes.
type cidrTable struct {
	spec string
	src  interface{ get() []cidrRule }
}

type cidrOp int

const (
	cidrMatch cidrOp = iota // PATTERN result
	cidrIf                  // if PATTERN
	cidrEndif               // endif
)

// cidrRule is one line of the table.
type cidrRule struct {
	op     cidrOp
	line   int
	net    netip.Prefix
	negate bool
	value  string // cidrMatch
	endif  int    // cidrIf: index of the matching endif
}

// matches reports whether the rule's pattern holds for addr. Like
// Postfix, an IPv4 pattern never matches an IPv6 key, mapped or not.
func (r *cidrRule) matches(addr netip.Addr) bool {
	if r.net.Addr().Is4() != addr.Is4() {
		return false
	}
	return r.net.Contains(addr) != r.negate
}

func (t *cidrTable) String() string { return t.spec }

func (t *cidrTable) Lookup(_ context.Context, key string) (string, bool, error) {
	addr, ok := cidrKey(key)
	if !ok {
		return "", false, nil
	}
	rules := t.src.get()
	for i := 0; i < len(rules); i++ {
		r := &rules[i]
		switch r.op {
		case cidrIf:
			if !r.matches(addr) {
				i = r.endif
			}
		case cidrMatch:
			if r.matches(addr) {
				return r.value, true, nil
			}
		}
	}
	return "", false, nil
}

// cidrKey parses a lookup key as inet_pton does for the family its form
// names (a colon means IPv6): no zone, no brackets, and no IPv4 octet
// with a leading zero.
func cidrKey(key string) (netip.Addr, bool) {
	if strings.ContainsAny(key, "%[]") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(key)
	if err != nil {
		return netip.Addr{}, false
	}
	if strings.Contains(key, ":") != a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// openCIDR opens cidr:/path/file and the inline form cidr:{ {rule}, ... }.
func openCIDR(typ, name string, o OpenOptions) (Table, error) {
	spec := typ + ":" + name
	if strings.HasPrefix(name, "{") {
		text, err := inlineRules(typ, name)
		if err != nil {
			return nil, err
		}
		rules, err := parseCIDRTable(name, text)
		if err != nil {
			return nil, err
		}
		return &cidrTable{spec: spec, src: staticRules[cidrRule](rules)}, nil
	}
	ft, err := openFileTable(name, o, func(data string) ([]cidrRule, error) {
		return parseCIDRTable(name, data)
	})
	if err != nil {
		return nil, err
	}
	return &cidrTable{spec: spec, src: ft}, nil
}

// staticRules serves rules that never change (an inline table).
type staticRules[T any] []T

func (s staticRules[T]) get() []T { return s }

// parseCIDRTable compiles table text as dict_cidr.c does. Where Postfix
// warns and skips a rule, or warns about an if without endif, this is a
// load error naming the line: a table that silently lost a rule would
// decide differently from the file the admin wrote.
func parseCIDRTable(name, text string) ([]cidrRule, error) {
	lines, err := logicalLines(text)
	if err != nil {
		return nil, fmt.Errorf("cidr map %s, line %w", name, err)
	}
	var rules []cidrRule
	var open []int
	for _, l := range lines {
		r, err := parseCIDRRule(strings.TrimLeft(l.text, " \t\r\n\v\f"), len(open))
		if err != nil {
			return nil, fmt.Errorf("cidr map %s, line %d: %w", name, l.num, err)
		}
		r.line = l.num
		switch r.op {
		case cidrIf:
			open = append(open, len(rules))
		case cidrEndif:
			rules[open[len(open)-1]].endif = len(rules)
			open = open[:len(open)-1]
		}
		rules = append(rules, r)
	}
	if n := len(open); n > 0 {
		return nil, fmt.Errorf("cidr map %s, line %d: IF has no matching ENDIF", name, rules[open[n-1]].line)
	}
	return rules, nil
}

func parseCIDRRule(p string, nesting int) (cidrRule, error) {
	switch {
	case hasKeyword(p, "if"):
		negate, rest := cutNegation(p[2:])
		if rest == "" {
			return cidrRule{}, errors.New("no address pattern")
		}
		net, err := parseCIDRPattern(strings.TrimRight(rest, " \t\r\n\v\f"))
		if err != nil {
			return cidrRule{}, err
		}
		return cidrRule{op: cidrIf, net: net, negate: negate}, nil
	case hasKeyword(p, "endif"):
		if strings.TrimLeft(p[5:], " \t\r\n\v\f") != "" {
			return cidrRule{}, errors.New("garbage after ENDIF")
		}
		if nesting == 0 {
			return cidrRule{}, errors.New("ENDIF without IF")
		}
		return cidrRule{op: cidrEndif}, nil
	}
	negate, rest := cutNegation(p)
	pattern, value := rest, ""
	if i := strings.IndexAny(rest, " \t\r\n\v\f"); i >= 0 {
		pattern, value = rest[:i], strings.Trim(rest[i:], " \t\r\n\v\f")
	}
	if pattern == "" {
		return cidrRule{}, errors.New("no address pattern")
	}
	net, err := parseCIDRPattern(pattern)
	if err != nil {
		return cidrRule{}, err
	}
	if value == "" {
		return cidrRule{}, errors.New("no lookup result")
	}
	return cidrRule{op: cidrMatch, net: net, negate: negate, value: value}, nil
}

// cutNegation skips blanks and '!'s, each '!' flipping the sense.
func cutNegation(s string) (negate bool, rest string) {
	i := 0
	for ; i < len(s) && (s[i] == '!' || isSpace(s[i])); i++ {
		if s[i] == '!' {
			negate = !negate
		}
	}
	return negate, s[i:]
}

// parseCIDRPattern parses addr, addr/len, [addr], [addr]/len or
// [addr/len] with cidr_match_parse's messages. Host bits must be zero.
func parseCIDRPattern(pattern string) (netip.Prefix, error) {
	addr, mask, hasMask := pattern, "", false
	if strings.HasPrefix(pattern, "[") {
		inner, after, ok := strings.Cut(pattern[1:], "]")
		if !ok {
			return netip.Prefix{}, fmt.Errorf("missing ']' character after \"[%s\"", pattern[1:])
		}
		switch {
		case strings.HasPrefix(after, "/"):
			addr, mask, hasMask = inner, after[1:], true
		case after != "":
			return netip.Prefix{}, fmt.Errorf("garbage after \"[%s]\"", inner)
		default:
			addr, mask, hasMask = strings.Cut(inner, "/")
		}
	} else {
		addr, mask, hasMask = strings.Cut(pattern, "/")
	}
	if !hasMask {
		a, ok := cidrKey(addr)
		if !ok {
			return netip.Prefix{}, fmt.Errorf("bad address pattern: %q", addr)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	bits := 32
	if strings.Contains(addr, ":") {
		bits = 128
	}
	n, err := strconv.Atoi(mask)
	switch {
	case !AllDigits(mask) || err != nil:
		return netip.Prefix{}, fmt.Errorf("bad mask value in \"%s/%s\"", addr, mask)
	case n > bits:
		return netip.Prefix{}, fmt.Errorf("bad mask length in \"%s/%s\"", addr, mask)
	}
	a, ok := cidrKey(addr)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("bad network value in \"%s/%s\"", addr, mask)
	}
	p := netip.PrefixFrom(a, n)
	if m := p.Masked(); m.Addr() != a {
		return netip.Prefix{}, fmt.Errorf("non-null host address bits in \"%s/%s\", perhaps you should use \"%s\" instead", addr, mask, m)
	}
	return p, nil
}
