package rules

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// ParseTime parses a Postfix time value: a number and an optional unit s,
// m, h, d or w; unit is used when the value has none. As in Postfix the
// result must fit in a C int of seconds. main.cf parameters and the
// per-service overrides of check_policy_service { ..., timeout=10s } use it.
func ParseTime(s string, unit byte) (time.Duration, error) {
	bad := fmt.Errorf("bad time value %q", s)
	num := s
	if n := len(s); n > 0 && (s[n-1] < '0' || s[n-1] > '9') {
		num, unit = s[:n-1], s[n-1]
	}
	if !AllDigits(num) {
		return 0, bad
	}
	var mult int64
	switch unit {
	case 's':
		mult = 1
	case 'm':
		mult = 60
	case 'h':
		mult = 3600
	case 'd':
		mult = 86400
	case 'w':
		mult = 7 * 86400
	default:
		return 0, bad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt32/mult {
		return 0, bad
	}
	return time.Duration(n*mult) * time.Second, nil
}
