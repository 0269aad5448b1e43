package nettable

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cfgFile is a table definition file (memcache_table(5), redis:): "name =
// value" lines in main.cf syntax (blank and '#' lines skipped, a line that
// starts with whitespace continues the previous one), read once at open
// as Postfix's cfg_parser reads it.
type cfgFile struct {
	path   string
	values map[string]string
	line   map[string]int // where each name was set, for error messages
}

// readCfgFile parses path; names not in known are reported to warn (Postfix
// ignores them silently, which hides typos).
func readCfgFile(path string, known []string, warn func(format string, args ...any)) (*cfgFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &cfgFile{path: path, values: map[string]string{}, line: map[string]int{}}
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
			f.values[lastName] = strings.TrimSpace(f.values[lastName] + " " + trimmed)
			continue
		}
		name, value, ok := strings.Cut(trimmed, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s, line %d: expected \"name = value\": %q", path, i+1, trimmed)
		}
		if !slices.Contains(known, name) {
			warn("%s, line %d: unknown parameter %q ignored", path, i+1, name)
		}
		f.values[name] = strings.TrimSpace(value)
		f.line[name] = i + 1
		lastName = name
	}
	return f, nil
}

// str is the value of name, or def when it is not set.
func (f *cfgFile) str(name, def string) string {
	if v, ok := f.values[name]; ok {
		return v
	}
	return def
}

// where names the file and line that set name.
func (f *cfgFile) where(name string) string {
	return fmt.Sprintf("%s, line %d: %s", f.path, f.line[name], name)
}

// int is the integer value of name, at least min.
func (f *cfgFile) int(name string, def, min int) (int, error) {
	v, ok := f.values[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s: bad value %q: want an integer >= %d", f.where(name), v, min)
	}
	return n, nil
}

// seconds is a whole number of seconds, at least one second: a
// network call is never left without a deadline.
func (f *cfgFile) seconds(name string, def int) (time.Duration, error) {
	n, err := f.int(name, def, 1)
	return time.Duration(n) * time.Second, err
}
