package rules

import (
	"strings"
)

// parseAliases parses aliases(5) text, what postalias reads: "name: value"
// lines (a name with blanks or colons in double quotes), continued on
// lines that start with whitespace. Names are lowercased; a line without a
// name or a value is skipped with postalias's warning, and a duplicate
// name keeps its first value. Only the names matter to postgate so far
// (local recipient validation): values are kept as written, not parsed
// as addresses.
func parseAliases(path, data string, o OpenOptions) (map[string]string, error) {
	lines, err := logicalLines(data)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(lines))
	for _, l := range lines {
		name, value, ok := splitAlias(l.text)
		if !ok {
			o.warn("%s, line %d: need name:value pair", path, l.num)
			continue
		}
		name = strings.ToLower(name)
		if _, dup := m[name]; dup {
			o.warn("%s: duplicate entry: %q", path, name)
			continue
		}
		m[name] = value
	}
	return m, nil
}

// splitAlias splits "name: value", honoring a quoted name.
func splitAlias(line string) (name, value string, ok bool) {
	i := 0
	if strings.HasPrefix(line, "\"") {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return "", "", false
		}
		name, i = line[1:1+end], end+2
		if i >= len(line) || line[i] != ':' {
			return "", "", false
		}
	} else {
		c := strings.IndexByte(line, ':')
		if c < 0 {
			return "", "", false
		}
		name, i = strings.TrimRight(line[:c], " \t"), c
	}
	value = strings.TrimSpace(line[i+1:])
	return name, value, name != "" && value != ""
}
