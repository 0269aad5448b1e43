package config

import (
	"maps"
	"sort"
	"strings"
)

// This file emulates `postconf -n`: the explicit main.cf settings of parameters
// postconf counts as used, sorted by name, whitespace squeezed.

// usedParams returns the names that settings use as user-defined parameters
// (postconf's postconf_user.c): names in smtpd_restriction_classes, $names in
// any main.cf value or master.cf -o value, and legacy database parameters such
// as "foo_server_host" for "ldap:foo". Values Postfix never expands at load
// (raw parameters) are not looked into.
func (f *files) usedParams(main *view) map[string]bool {
	used := map[string]bool{}
	mark := func(n string) { used[n] = true }
	classes := func(r resolver, value string) {
		s, _ := expandString(value, r)
		for _, n := range splitWords(s) {
			mark(n)
		}
	}
	scan := func(v *view, name, value string) {
		if isRaw(name) {
			return
		}
		_ = scanNames(value, mark)
		if s, err := v.value(name); err == nil {
			dbmsNames(s, mark)
		}
	}
	if s, ok := f.main["smtpd_restriction_classes"]; ok {
		classes(main, s.value)
	}
	for _, name := range f.mainOrder {
		scan(main, name, f.main[name].value)
	}
	for i := range f.entries {
		e := &f.entries[i]
		if len(e.overrides) == 0 {
			continue
		}
		v := newView(f, &e.svc)
		if s, ok := e.svc.Overrides["smtpd_restriction_classes"]; ok {
			// postconf expands it in the service's own name space only.
			classes(localNames(maps.Clone(e.svc.Overrides)), s)
		}
		for _, o := range e.overrides {
			scan(v, o.name, o.value)
		}
	}
	return used
}

// computeNonDefault renders the settings `postconf -n` would show: parameters
// of Postfix (and postgate's own), parameters that master.cf services derive
// (e.g. "relay_destination_concurrency_limit" for a "relay ... smtp" service),
// and used user-defined parameters. Like `postconf -c DIR`, it includes
// config_directory.
func (f *files) computeNonDefault(used map[string]bool) []string {
	derived := map[string]bool{}
	for _, e := range f.entries {
		for _, s := range serviceSuffixes(e.svc.Command) {
			derived[e.svc.Name+s] = true
		}
	}
	values := map[string]string{}
	if f.dir != "" {
		values["config_directory"] = f.dir
	}
	for name, s := range f.main {
		if isKnown(name) || derived[name] || used[name] {
			values[name] = s.value
		}
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	lines := make([]string, len(names))
	for i, name := range names {
		lines[i] = squeeze(name + " = " + values[name])
	}
	return lines
}

// squeeze joins the words of s with single spaces, as postconf prints lines.
func squeeze(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	}), " ")
}

// localNames resolves names against -o settings alone.
type localNames map[string]string

func (l localNames) test(name string) bool { return l[name] != "" }

func (l localNames) value(name string) (string, error) {
	v, ok := l[name]
	if !ok {
		return "", nil
	}
	delete(l, name) // a name being expanded cannot loop back to itself
	defer func() { l[name] = v }()
	return expandString(v, l)
}
