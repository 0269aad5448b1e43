package rules

import (
	"context"
	"fmt"
	"strings"
)

// texthash serves a Postfix source file ("key whitespace value" lines) from
// memory and reloads it when the file changes (fileTable).
type texthash struct {
	*fileTable[map[string]string]
}

func openTexthash(_, name string, o OpenOptions) (Table, error) {
	parse := parseTexthash
	if o.Aliases {
		parse = parseAliases
	}
	ft, err := openFileTable(name, o, func(data string) (map[string]string, error) {
		return parse(name, data, o)
	})
	if err != nil {
		return nil, err
	}
	return &texthash{ft}, nil
}

func (t *texthash) FixedString() bool { return true }

func (t *texthash) String() string { return "texthash:" + t.path }

func (t *texthash) List() [][2]string { return sortedEntries(t.get()) }

// Lookup returns the value stored for the lowercased key.
func (t *texthash) Lookup(_ context.Context, key string) (string, bool, error) {
	v, ok := t.get()[strings.ToLower(key)]
	return v, ok, nil
}

// parseTexthash parses postmap(1) source text. Keys are lowercased; a
// duplicate key keeps its first value (with a warning), as postmap does.
func parseTexthash(path, data string, o OpenOptions) (map[string]string, error) {
	lines, err := logicalLines(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	m := make(map[string]string, len(lines))
	for _, l := range lines {
		key, value, err := splitKeyValue(l.text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, l.num, err)
		}
		key = strings.ToLower(key)
		if _, dup := m[key]; dup {
			o.warn("%s:%d: duplicate entry: %q", path, l.num, key)
			continue
		}
		m[key] = value
	}
	return m, nil
}

// splitKeyValue splits "key whitespace value". A key may contain whitespace
// inside double quotes (with \" and \\ escapes); the quotes stay part of
// the key, as in postmap.
func splitKeyValue(line string) (key, value string, err error) {
	line = strings.TrimRight(line, " \t\r\n\v\f")
	i, quoted := 0, false
	for ; i < len(line); i++ {
		c := line[i]
		if quoted {
			if c == '\\' && i+1 < len(line) {
				i++
			} else if c == '"' {
				quoted = false
			}
			continue
		}
		if c == '"' {
			quoted = true
		} else if isSpace(c) {
			break
		}
	}
	if quoted {
		return "", "", fmt.Errorf("unbalanced '\"' in '%s'", line)
	}
	key, value = line[:i], strings.TrimLeft(line[i:], " \t\r\n\v\f")
	if key == "" || value == "" {
		return "", "", fmt.Errorf("expected format: key whitespace value")
	}
	return key, value, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}
