package rules

import (
	"fmt"
	"strings"
)

// SplitList splits a Postfix list value into items. Items are separated by
// commas and/or whitespace; a "{ ... }" group, alone or after other text as
// in inline:{ a=b, c=d }, is kept whole with its braces.
func SplitList(s string) []string {
	var out []string
	i := 0
	for i < len(s) {
		for i < len(s) && isListSep(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		start, level := i, 0
		for ; i < len(s); i++ {
			c := s[i]
			if c == '{' {
				level++
			} else if c == '}' && level > 0 {
				level--
			} else if level == 0 && isListSep(c) {
				break
			}
		}
		out = append(out, s[start:i])
	}
	return out
}

func isListSep(c byte) bool {
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// StripBraces removes one "{ ... }" pair that encloses all of s, and the
// whitespace just inside it. ok is false when s is not such a group.
func StripBraces(s string) (inner string, ok bool) {
	inner, err := extpar(s)
	if err != nil || inner == s {
		return s, false
	}
	return inner, true
}

// extpar strips a "{ ... }" group that must enclose all of s (Postfix's
// extpar). A string that does not start with '{' is returned unchanged.
func extpar(s string) (string, error) {
	if !strings.HasPrefix(s, "{") {
		return s, nil
	}
	level := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			level++
		case '}':
			level--
			if level == 0 {
				if strings.TrimSpace(s[i+1:]) != "" {
					return "", fmt.Errorf("syntax error after '}' in %q", s)
				}
				return strings.TrimSpace(s[1:i]), nil
			}
		}
	}
	return "", fmt.Errorf("missing '}' in %q", s)
}
