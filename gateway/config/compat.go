package config

import (
	"fmt"
	"strconv"
	"strings"

	"postgate/rules"
)

// currentCompatLevel is the compatibility_level postgate assumes when main.cf does
// not set one: current Postfix behaviour (the reference's Postfix 3.12), not the
// historical defaults Postfix itself falls back to.
const currentCompatLevel = "3.12"

// parseLevel parses a compatibility level "major[.minor[.patch]]".
func parseLevel(s string) ([3]uint64, error) {
	var l [3]uint64
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return l, fmt.Errorf("malformed compatibility level syntax: %q", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || !rules.AllDigits(p) {
			return l, fmt.Errorf("malformed compatibility level syntax: %q", s)
		}
		l[i] = n
	}
	return l, nil
}

// compareLevels implements the "level" suffix of relational operators, used by
// compatibility-dependent defaults such as ${{$compatibility_level} <level {2} ? ...}.
func compareLevels(a, b string) (int, error) {
	la, err := parseLevel(a)
	if err != nil {
		return 0, err
	}
	lb, err := parseLevel(b)
	if err != nil {
		return 0, err
	}
	for i := range la {
		switch {
		case la[i] < lb[i]:
			return -1, nil
		case la[i] > lb[i]:
			return 1, nil
		}
	}
	return 0, nil
}
