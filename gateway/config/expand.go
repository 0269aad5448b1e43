package config

import (
	"fmt"
	"strings"

	"postgate/rules"
)

// This file implements Postfix's $name expansion (mac_parse and mac_expand):
//
//	$name ${name} $(name)              value of name, "" when undefined
//	${name?text} ${name?{text}}        text when name's value is non-empty
//	${name:text} ${name:{text}}        text when name's value is empty
//	${name?{text1}:{text2}}            either
//	${{a} == {b} ? {x} : {y}}          relational: == != < <= >= >, numeric when
//	                                   both sides are all digits; "level" suffix
//	                                   (<level ...) compares compatibility levels
//	$$                                 a literal $
//
// Unbraced text runs to the end of the expression ("${a?x:y}" yields "x:y"); the
// inside of {text} is kept as is, whitespace around it is ignored. As in Postfix,
// the ? and : tests look at the raw (unexpanded) value of name.

// resolver is what expansion asks about a name.
type resolver interface {
	// test reports whether name's raw value is non-empty.
	test(name string) bool
	// value returns name's fully expanded value, "" when it is undefined.
	value(name string) (string, error)
}

// maxNesting bounds expression nesting, as Postfix's "unreasonable macro call
// nesting" does, so hostile input cannot exhaust the stack.
const maxNesting = 100

// maxExpansion bounds an expanded value: "a = $b$b", "b = $c$c", ... doubles at
// each step and would otherwise exhaust memory.
const maxExpansion = 1 << 20

type expander struct {
	r     resolver
	scan  func(name string) // scan mode: report every name, in every branch; no output
	depth int
}

// expandString expands s with r.
func expandString(s string, r resolver) (string, error) {
	var out strings.Builder
	e := expander{r: r}
	if err := e.parse(s, &out); err != nil {
		return "", err
	}
	return out.String(), nil
}

// scanNames calls visit for every parameter name s refers to, in both branches
// of conditionals, without expanding anything. On a syntax error the names seen
// so far have been visited.
func scanNames(s string, visit func(name string)) error {
	e := expander{r: noValues{}, scan: visit}
	var out strings.Builder
	return e.parse(s, &out)
}

type noValues struct{}

func (noValues) test(string) bool             { return false }
func (noValues) value(string) (string, error) { return "", nil }

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// parse splits s into literal text and $ expressions (mac_parse).
func (e *expander) parse(s string, out *strings.Builder) error {
	if e.depth++; e.depth > maxNesting {
		return fmt.Errorf("unreasonable $name nesting in %q", abbrev(s))
	}
	defer func() { e.depth-- }()
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			out.WriteString(s[i:])
			break
		}
		out.WriteString(s[i : i+j])
		start := i + j
		i += j + 1
		if i < len(s) && s[i] == '$' {
			out.WriteByte('$')
			i++
			continue
		}
		var expr string
		if i < len(s) && (s[i] == '{' || s[i] == '(') {
			open, close := s[i], byte('}')
			if open == '(' {
				close = ')'
			}
			level, k := 1, i+1
			for ; k < len(s); k++ {
				if s[k] == open {
					level++
				} else if s[k] == close {
					if level--; level == 0 {
						break
					}
				}
			}
			if level > 0 {
				return fmt.Errorf("unterminated \"$%c\" in %q", open, abbrev(s))
			}
			expr, i = s[i+1:k], k+1
		} else {
			k := i
			for k < len(s) && isNameChar(s[k]) {
				k++
			}
			expr, i = s[i:k], k
		}
		if expr == "" {
			return fmt.Errorf("\"$\" without a parameter name in %q (write $$ for a literal $)", abbrev(s))
		}
		if err := e.expr(expr, s[start:i], out); err != nil {
			return err
		}
		if out.Len() > maxExpansion {
			return fmt.Errorf("value expands to more than %d bytes", maxExpansion)
		}
	}
	return nil
}

func skipSpace(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

// curly takes "{payload}rest" and returns the payload with {} balanced and rest
// with leading whitespace removed; ok is false when the } is missing.
func curly(s string) (payload, rest string, ok bool) {
	level := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			level++
		case '}':
			if level--; level == 0 {
				return s[1:i], skipSpace(s[i+1:]), true
			}
		}
	}
	return "", "", false
}

// operand returns the {payload} at the start of s (after whitespace) and the
// rest, or, when s does not start with "{", all of s as unbraced text.
func operand(s, whole string) (text, rest string, err error) {
	if t := skipSpace(s); strings.HasPrefix(t, "{") {
		p, r, ok := curly(t)
		if !ok {
			return "", "", fmt.Errorf("unbalanced {} in %q", abbrev(whole))
		}
		return p, r, nil
	}
	return s, "", nil
}

// expr evaluates the inside of one $ expression (mac_expand_callback); whole is
// the expression as written, for diagnostics.
func (e *expander) expr(expr, whole string, out *strings.Builder) error {
	var (
		op    byte // 0: use the value; '?' or ':' conditional
		rest  string
		true_ bool
		name  string
		named bool
	)
	if t := skipSpace(expr); strings.HasPrefix(t, "{") {
		result, r, err := e.relational(t, whole)
		if err != nil {
			return err
		}
		true_ = result
		if r != "" {
			if r[0] != '?' && r[0] != ':' {
				return fmt.Errorf("\"?\" or \":\" expected after %q in %q", strings.TrimSuffix(t, r), abbrev(whole))
			}
			op, rest = r[0], r[1:]
		}
		if op == 0 {
			if result && e.scan == nil {
				out.WriteString("true")
			}
			return nil
		}
	} else {
		named = true
		t := skipSpace(expr)
		k := 0
		for ; k < len(t); k++ {
			if u := skipSpace(t[k:]); u == "" {
				break
			} else if u[0] == '?' || u[0] == ':' {
				op, rest = u[0], u[1:]
				break
			}
			if !isNameChar(t[k]) {
				return fmt.Errorf("bad parameter name %q in %q", t[:k+1], abbrev(whole))
			}
		}
		name = t[:k]
		if e.scan != nil {
			e.scan(name)
		}
		if op != 0 && e.scan == nil {
			true_ = e.r.test(name)
		}
	}

	switch op {
	case 0:
		if named && e.scan == nil {
			v, err := e.r.value(name)
			if err != nil {
				return err
			}
			out.WriteString(v)
		}
		return nil
	case '?':
		text, r, err := operand(rest, whole)
		if err != nil {
			return err
		}
		if true_ || e.scan != nil {
			if err := e.parse(text, out); err != nil {
				return err
			}
		}
		if r == "" {
			return nil
		}
		if r[0] != ':' {
			return fmt.Errorf("\":\" expected before %q in %q", r, abbrev(whole))
		}
		rest = r[1:]
	}
	// ':' and the second half of "?{a}:{b}".
	text, r, err := operand(rest, whole)
	if err != nil {
		return err
	}
	if !true_ || e.scan != nil {
		if err := e.parse(text, out); err != nil {
			return err
		}
	}
	if r != "" {
		return fmt.Errorf("unexpected text %q in %q", r, abbrev(whole))
	}
	return nil
}

// relational evaluates "{a} OP {b}" at the start of s and returns the rest.
func (e *expander) relational(s, whole string) (result bool, rest string, err error) {
	left, r, ok := curly(s)
	if !ok {
		return false, "", fmt.Errorf("unbalanced {} in %q", abbrev(whole))
	}
	k := 0
	for k < len(r) && strings.IndexByte("<>!=?+-*/~&|%", r[k]) >= 0 {
		k++
	}
	op := r[:k]
	switch op {
	case "==", "!=", "<", "<=", ">=", ">":
	default:
		return false, "", fmt.Errorf("\"==\", \"!=\", \"<\", \"<=\", \">=\" or \">\" expected after {%s} in %q", left, abbrev(whole))
	}
	r = r[k:]
	level := false
	if k = 0; len(r) > 0 && isAlnum(r[0]) {
		for k < len(r) && isAlnum(r[k]) {
			k++
		}
		if r[:k] != "level" {
			return false, "", fmt.Errorf("bad operator %q in %q", op+r[:k], abbrev(whole))
		}
		level, r = true, r[k:]
	}
	if t := skipSpace(r); !strings.HasPrefix(t, "{") {
		return false, "", fmt.Errorf("\"{expression}\" expected after %q in %q", op, abbrev(whole))
	} else {
		r = t
	}
	right, r, ok := curly(r)
	if !ok {
		return false, "", fmt.Errorf("unbalanced {} in %q", abbrev(whole))
	}
	var lb, rb strings.Builder
	if err := e.parse(left, &lb); err != nil {
		return false, "", err
	}
	if err := e.parse(right, &rb); err != nil {
		return false, "", err
	}
	if e.scan != nil {
		return false, r, nil
	}
	var delta int
	if level {
		if delta, err = compareLevels(lb.String(), rb.String()); err != nil {
			return false, "", err
		}
	} else {
		delta = compareValues(lb.String(), rb.String())
	}
	switch op {
	case "==":
		result = delta == 0
	case "!=":
		result = delta != 0
	case "<":
		result = delta < 0
	case "<=":
		result = delta <= 0
	case ">=":
		result = delta >= 0
	case ">":
		result = delta > 0
	}
	return result, r, nil
}

func isAlnum(c byte) bool { return isNameChar(c) && c != '_' }

// compareValues compares numerically when both sides are all digits, else
// bytewise, like strcmp.
func compareValues(a, b string) int {
	if rules.AllDigits(a) && rules.AllDigits(b) {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return len(a) - len(b)
		}
	}
	return strings.Compare(a, b)
}

// ExpandRequest expands a value that Postfix expands per request
// (smtpd_reject_footer, default_rbl_reply, ...) with the value lookup gives
// each name: $name, ${name}, ${name?text}, ${name:text}, $$. Names lookup
// does not know give "", as an undefined parameter does.
func ExpandRequest(text string, lookup func(name string) string) (string, error) {
	return expandString(text, requestValues(lookup))
}

type requestValues func(name string) string

func (r requestValues) test(name string) bool             { return r(name) != "" }
func (r requestValues) value(name string) (string, error) { return r(name), nil }
