package bounce

import "strings"

// Postfix's bounce(8) wraps the human-readable recipient lines and the
// Remote-MTA / Diagnostic-Code fields at 79 columns, continuation lines
// indented by 4 spaces.
const (
	wrapLength = 79
	wrapIndent = 4
)

// lineWrap splits s (one line, no newline) into output lines shorter than
// length where word breaks allow, as Postfix's line_wrap(3) does: words are
// never broken, a line is cut before the word that would make it longer
// than length, trailing blanks are stripped, and every line after the first
// is indented by indent spaces (a negative indent indents only the first).
func lineWrap(s string, length, indent int) []string {
	var out []string
	curIndent, curLen := 0, length
	if indent < 0 {
		curIndent, curLen = -indent, length+indent
	}
	emit := func(line string) {
		out = append(out, strings.Repeat(" ", curIndent)+strings.TrimRight(line, " \t\v\f\r\n"))
	}
	start := 0
	for word := 0; word >= 0; {
		nextSpace := len(s)
		if i := strings.IndexAny(s[word:], " \t"); i >= 0 {
			nextSpace = word + i
		}
		if word > start && nextSpace-start > curLen {
			emit(s[start:word])
			for word < len(s) && isSpace(s[word]) {
				word++
			}
			if start == 0 {
				curIndent += indent
				curLen -= indent
			}
			start = word
		}
		if nextSpace < len(s) {
			word = nextSpace + 1
		} else {
			word = -1
		}
	}
	emit(s[start:])
	return out
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}
