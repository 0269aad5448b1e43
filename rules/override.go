package rules

import (
	"fmt"
	"strings"
	"time"
)

// SplitOverride reads one name=value item of a braced service definition
// such as "{ inet:host:port, timeout=10s }" (Postfix's attr_override);
// "{ name = value }" is accepted too, for a value with spaces or commas.
func SplitOverride(item string) (key, value string, err error) {
	if inner, ok := StripBraces(item); ok {
		item = inner
	}
	key, value, ok := strings.Cut(item, "=")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !ok || key == "" {
		return "", "", fmt.Errorf("malformed option: missing '=' after attribute name: \"...%s...\"", item)
	}
	return key, value, nil
}

// OverrideSeconds reads the time value of an override item (a bare number
// is seconds); at least one second.
func OverrideSeconds(key, value string) (time.Duration, error) {
	v, err := ParseTime(value, 's')
	if err != nil {
		return 0, fmt.Errorf("%s: bad time value or unit: %s", key, value)
	}
	if v < time.Second {
		return 0, fmt.Errorf("invalid %s: %d (min 1)", key, int(v/time.Second))
	}
	return v, nil
}
