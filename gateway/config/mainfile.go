package config

import (
	"errors"
	"sort"
)

// setting is one explicit name = value.
type setting struct {
	value string
	pos   Position
}

var (
	errNoName  = errors.New("missing attribute name")
	errNoEqual = errors.New("missing '=' after attribute name")
)

// splitNameValue splits "name = value" at the first "=" as Postfix's
// split_nameval does: the name ends at whitespace or "=", whitespace around the
// value is trimmed.
func splitNameValue(s string) (name, value string, err error) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	if i == len(s) || s[i] == '=' {
		return "", "", errNoName
	}
	j := i
	for j < len(s) && !isSpace(s[j]) && s[j] != '=' {
		j++
	}
	k := j
	for k < len(s) && isSpace(s[k]) {
		k++
	}
	if k == len(s) || s[k] != '=' {
		return "", "", errNoEqual
	}
	v, e := k+1, len(s)
	for v < e && isSpace(s[v]) {
		v++
	}
	for e > v && isSpace(s[e-1]) {
		e--
	}
	return s[i:j], s[v:e], nil
}

// parseMain reads main.cf. It returns the explicit settings (the last definition
// of a name wins) and the names in the order of their effective lines.
func parseMain(file string, data []byte, ds *diags) (map[string]setting, []string) {
	settings := map[string]setting{}
	for _, l := range readLogicalLines(data) {
		pos := Position{File: file, Line: l.line}
		if l.leading {
			ds.warnf(pos, "", "logical line must not start with whitespace: %q", abbrev(l.text))
			continue
		}
		name, value, err := splitNameValue(l.text)
		if err != nil {
			ds.errorf(pos, "", "%v: %q", err, abbrev(l.text))
			continue
		}
		if old, ok := settings[name]; ok {
			ds.warnf(pos, name, "overrides the setting at line %d", old.pos.Line)
		}
		if isReadOnly(name) {
			ds.warnf(pos, name, "read-only parameter, setting ignored")
			continue
		}
		settings[name] = setting{value: value, pos: pos}
	}
	order := make([]string, 0, len(settings))
	for name := range settings {
		order = append(order, name)
	}
	sort.Slice(order, func(i, j int) bool { return settings[order[i]].pos.Line < settings[order[j]].pos.Line })
	return settings, order
}

// abbrev shortens text quoted in a diagnostic.
func abbrev(s string) string {
	const max = 60
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
