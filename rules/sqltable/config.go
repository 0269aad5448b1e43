package sqltable

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// config is a pgsql_table(5)/mysql_table(5) file: "name = value" lines,
// '#' comments and continuation lines that start with whitespace, as
// Postfix's cfg_parser reads them (no $name expansion).
type config struct {
	path   string
	values map[string]string
}

func readConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &config{path: path, values: map[string]string{}}
	var last string // name of the previous logical line
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("%s, line %d: logical line must not start with whitespace", path, i+1)
			}
			c.values[last] = strings.TrimSpace(c.values[last] + " " + trimmed)
			continue
		}
		name, value, ok := strings.Cut(trimmed, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s, line %d: missing '=' after attribute name: %q", path, i+1, trimmed)
		}
		c.values[name] = strings.TrimSpace(value)
		last = name
	}
	return c, nil
}

// str is a parameter's value, def when it is not set.
func (c *config) str(name, def string) string {
	if v, ok := c.values[name]; ok {
		return v
	}
	return def
}

// required is a parameter that must be set and not empty.
func (c *config) required(name string) (string, error) {
	v := c.values[name]
	if v == "" {
		return "", fmt.Errorf("%s: parameter %q is not set", c.path, name)
	}
	return v, nil
}

func (c *config) int(name string, def int) (int, error) {
	v, ok := c.values[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: parameter %q: bad number %q", c.path, name, v)
	}
	return n, nil
}

// query is the query parameter, or the one Postfix builds from the
// obsolete table, select_field, where_field and additional_conditions.
func (c *config) query() (string, error) {
	if q, ok := c.values["query"]; ok {
		return q, nil
	}
	var parts [3]string
	for i, name := range []string{"table", "select_field", "where_field"} {
		v, err := c.required(name)
		if err != nil {
			return "", fmt.Errorf("%w (and query is not set)", err)
		}
		parts[i] = v
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s='%%s' %s", parts[1], parts[0], parts[2], c.str("additional_conditions", "")), nil
}
