package rules

import (
	"fmt"
	"os"
	"strings"
)

// maxListFileDepth bounds /file/name inclusion inside list files.
const maxListFileDepth = 10

// ListOption changes how a match list is built.
type ListOption func(*listConfig)

type listConfig struct {
	open func(spec string) (Table, error)
}

// WithOpener makes a match list open its type:table items with open
// instead of Open (for example to share tables or pass OpenOptions).
func WithOpener(open func(spec string) (Table, error)) ListOption {
	return func(c *listConfig) { c.open = open }
}

func newListConfig(opts []ListOption) listConfig {
	c := listConfig{open: Open}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// listItem is one pattern of a match list after '!' and /file/name
// expansion.
type listItem struct {
	negate  bool
	pattern string
}

// expandItems resolves "!pattern" (each '!' inverts) and inlines
// "/file/name" items, whose contents use the same syntax ('#' lines are
// comments).
func expandItems(items []string, negate bool, depth int) ([]listItem, error) {
	var out []listItem
	for _, raw := range items {
		neg, p := negate, raw
		for strings.HasPrefix(p, "!") {
			neg, p = !neg, p[1:]
		}
		if p == "" {
			return nil, fmt.Errorf("empty pattern in %q", raw)
		}
		if p[0] != '/' {
			out = append(out, listItem{negate: neg, pattern: p})
			continue
		}
		if depth >= maxListFileDepth {
			return nil, fmt.Errorf("%s: files nested too deeply", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
				continue
			}
			sub, err := expandItems(SplitList(line), neg, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// isTableItem reports whether a list pattern is a type:table (Postfix's
// MATCH_DICTIONARY: it contains ':' and does not start with '[').
func isTableItem(p string) bool {
	return !strings.HasPrefix(p, "[") && strings.Contains(p, ":")
}
