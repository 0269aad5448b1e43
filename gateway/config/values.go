package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"postgate/rules"
)

// kind is the type of a parameter's value.
type kind int

const (
	kindString kind = iota
	kindBool
	kindInt
	kindTime
	kindList
)

func isListSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func parseBool(s string) (bool, error) {
	switch {
	case strings.EqualFold(s, "yes"):
		return true, nil
	case strings.EqualFold(s, "no"):
		return false, nil
	}
	return false, fmt.Errorf("bad boolean value %q (use yes or no)", s)
}

func parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '+' {
		return 0, fmt.Errorf("bad integer value %q", s)
	}
	return n, nil
}

// parseTime parses a Postfix time value (rules.ParseTime).
func parseTime(s string, unit byte) (time.Duration, error) { return rules.ParseTime(s, unit) }

// checkRange reports a value outside [min, max]; max 0 means no upper bound.
func checkRange(n, min, max int64) error {
	switch {
	case max != 0 && (n < min || n > max):
		return fmt.Errorf("bad value %d: must be between %d and %d", n, min, max)
	case n < min:
		return fmt.Errorf("bad value %d: must be %d or more", n, min)
	}
	return nil
}

// validate checks an expanded value against the parameter's type. A warning is
// a problem postgate works around; an error stops the load.
func (p *param) validate(v string) (warning string, err error) {
	switch p.kind {
	case kindBool:
		_, err = parseBool(v)
	case kindInt:
		var n int64
		if n, err = parseInt(v); err == nil {
			err = checkRange(n, p.min, p.max)
		}
	case kindTime:
		var d time.Duration
		if d, err = parseTime(v, p.unit); err == nil && p.min > 0 && d < time.Duration(p.min)*time.Second {
			err = fmt.Errorf("bad time value %q: must be at least %ds", v, p.min)
		}
	}
	if err == nil && p.check != nil {
		return p.check(v)
	}
	return "", err
}

// oneOf returns a check that accepts the given words, case-insensitively.
func oneOf(words ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		for _, w := range words {
			if strings.EqualFold(v, w) {
				return "", nil
			}
		}
		return "", fmt.Errorf("bad value %q (use %s)", v, orList(words))
	}
}

// listOf returns a check that accepts a non-empty list of the given words.
func listOf(words ...string) func(string) (string, error) {
	one := oneOf(words...)
	return func(v string) (string, error) {
		items := rules.SplitList(v)
		if len(items) == 0 {
			return "", fmt.Errorf("bad value %q (use %s)", v, orList(words))
		}
		for _, it := range items {
			if _, err := one(it); err != nil {
				return "", err
			}
		}
		return "", nil
	}
}

func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// replyCode accepts an SMTP reply code that rejects or defers: 4XX or 5XX.
func replyCode(v string) (string, error) {
	n, _ := strconv.Atoi(v)
	if n < 400 || n > 599 {
		return "", fmt.Errorf("bad reply code %s: must be a 4XX or 5XX code", v)
	}
	return "", nil
}

func compatLevel(v string) (string, error) {
	_, err := parseLevel(v)
	return "", err
}

// bareNewline checks smtpd_forbid_bare_newline. postgate follows Postfix 3.9+:
// "no" (the default before 3.9) leaves SMTP smuggling open, so it is warned about
// and treated as "normalize".
func bareNewline(v string) (string, error) {
	if _, err := oneOf("normalize", "yes", "note", "reject", "no")(v); err != nil {
		return "", err
	}
	if strings.EqualFold(v, "no") {
		return `"no" would accept bare <LF> line endings (SMTP smuggling); postgate treats it as "normalize"`, nil
	}
	return "", nil
}

// bareNewlineMode is the mode Get returns for smtpd_forbid_bare_newline.
func bareNewlineMode(v string) string {
	v = strings.ToLower(v)
	if v == "yes" || v == "no" {
		return "normalize"
	}
	return v
}

// splitWords splits at commas and whitespace, ignoring braces, as Postfix's
// mystrtok does where it does not expect {} groups.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && isListSep(byte(r)) })
}
