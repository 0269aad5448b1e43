package rules

import (
	"fmt"
	"strings"
)

// logicalLine is one logical line of a table or list file.
type logicalLine struct {
	num  int // number of its first physical line
	text string
}

// logicalLines applies Postfix's readllines rules: blank lines and lines
// whose first non-blank character is '#' are skipped (even inside a
// continued line), and a line that starts with whitespace continues the
// previous logical line (the newline is dropped, the leading whitespace
// kept).
func logicalLines(data string) ([]logicalLine, error) {
	var out []logicalLine
	for i, line := range strings.Split(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) == 0 {
				return nil, fmt.Errorf("%d: logical line must not start with whitespace: %q", i+1, line)
			}
			out[len(out)-1].text += line
			continue
		}
		out = append(out, logicalLine{num: i + 1, text: line})
	}
	return out, nil
}
