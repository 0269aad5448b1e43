// Package dbcommon is what Postfix's database and network tables share
// (cfg_parser.c, db_common.c): the "name = value" file that defines a
// table, the %-expansions of its query and result templates, and its
// "domain" filter.
package dbcommon

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a table definition file (pgsql_table(5), ldap_table(5),
// memcache_table(5)...): "name = value" lines, blank and '#' lines
// skipped, a line that starts with whitespace continuing the previous
// one, read once at open as Postfix's cfg_parser reads it (no $name
// expansion).
type Config struct {
	path   string
	values map[string]string
	line   map[string]int // where each name was set, for error messages
}

// ReadConfig parses path. Names not in known are reported to warn (nil
// discards them): Postfix ignores them silently, which hides typos.
func ReadConfig(path string, known []string, warn func(msg string)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Config{path: path, values: map[string]string{}, line: map[string]int{}}
	lastName := ""
	for i, raw := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(raw)
		switch {
		case trimmed == "" || trimmed[0] == '#':
			continue
		case raw[0] == ' ' || raw[0] == '\t':
			if lastName == "" {
				return nil, fmt.Errorf("%s, line %d: logical line must not start with whitespace", path, i+1)
			}
			c.values[lastName] = strings.TrimSpace(c.values[lastName] + " " + trimmed)
			continue
		}
		name, value, ok := strings.Cut(trimmed, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s, line %d: expected \"name = value\": %q", path, i+1, trimmed)
		}
		if !slices.Contains(known, name) && warn != nil {
			warn(fmt.Sprintf("%s, line %d: unknown parameter %q ignored", path, i+1, name))
		}
		c.values[name] = strings.TrimSpace(value)
		c.line[name] = i + 1
		lastName = name
	}
	return c, nil
}

// IsSet reports whether the file sets name.
func (c *Config) IsSet(name string) bool {
	_, ok := c.values[name]
	return ok
}

// Str is the value of name, or def when it is not set.
func (c *Config) Str(name, def string) string {
	if v, ok := c.values[name]; ok {
		return v
	}
	return def
}

// Required is the value of a parameter that must be set and not empty.
func (c *Config) Required(name string) (string, error) {
	v := c.values[name]
	if v == "" {
		return "", fmt.Errorf("%s: parameter %q is not set", c.path, name)
	}
	return v, nil
}

// Where names the file and the line that set name ("file: name" when
// the file does not set it), to begin an error message.
func (c *Config) Where(name string) string {
	if n, ok := c.line[name]; ok {
		return fmt.Sprintf("%s, line %d: %s", c.path, n, name)
	}
	return fmt.Sprintf("%s: %s", c.path, name)
}

// Int is the integer value of name, at least min.
func (c *Config) Int(name string, def, min int) (int, error) {
	v, ok := c.values[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s: bad value %q: want an integer >= %d", c.Where(name), v, min)
	}
	return n, nil
}

// Seconds is a whole number of seconds, at least one second: a network
// call is never left without a deadline.
func (c *Config) Seconds(name string, def int) (time.Duration, error) {
	n, err := c.Int(name, def, 1)
	return time.Duration(n) * time.Second, err
}

// Bool is a yes/no value, in any case, as Postfix's cfg_get_bool reads
// it.
func (c *Config) Bool(name string, def bool) (bool, error) {
	v, ok := c.values[name]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("%s: bad value %q: want yes or no", c.Where(name), v)
}
