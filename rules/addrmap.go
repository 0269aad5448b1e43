package rules

import (
	"context"
	"strings"
)

// MapAddress is Postfix's mail_addr_map, the step of canonical and virtual
// alias rewriting: it finds addr as FindAddress does and returns the
// addresses of the value. A value "@domain" keeps the original local part
// (without an extension the lookup stripped); an unqualified result gets
// @myorigin; with propagate, an extension the lookup stripped is carried
// to each result (propagate_unmatched_extensions).
func MapAddress(ctx context.Context, tables []Table, addr string, localDomain bool, delims, myorigin string, propagate bool) ([]string, bool, error) {
	value, ext, found, err := FindAddress(ctx, tables, addr, localDomain, delims)
	if err != nil || !found {
		return nil, false, err
	}
	var out []string
	for _, a := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		a = strings.Trim(a, "<>")
		switch {
		case a == "":
			continue
		case a[0] == '@':
			local := addr
			if at := strings.LastIndexByte(addr, '@'); at >= 0 {
				local = addr[:at]
			}
			out = append(out, local[:len(local)-len(ext)]+a)
			continue
		case !strings.Contains(a, "@"):
			a += "@" + myorigin
		}
		if ext != "" && propagate {
			at := strings.LastIndexByte(a, '@')
			a = a[:at] + ext + a[at:]
		}
		out = append(out, a)
	}
	return out, len(out) > 0, nil
}
