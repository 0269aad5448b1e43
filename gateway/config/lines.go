package config

import (
	"bytes"
	"strings"
)

// logicalLine is one entry of main.cf or master.cf: a first physical line plus the
// continuation lines (those that start with whitespace) joined to it. As in
// Postfix, the newline is dropped and the continuation keeps its leading
// whitespace; comment and blank lines inside a continued entry are skipped and do
// not end it.
type logicalLine struct {
	text string
	line int       // physical line where the entry starts
	segs []lineSeg // where each physical line's text begins in text
	// leading is set when the entry starts with whitespace: a continuation with
	// nothing to continue, which Postfix warns about and ignores.
	leading bool
}

type lineSeg struct {
	off, line int
}

// lineAt returns the physical line of byte offset off in text.
func (l logicalLine) lineAt(off int) int {
	line := l.line
	for _, s := range l.segs {
		if s.off > off {
			break
		}
		line = s.line
	}
	return line
}

// isSpace is C's isspace in the C locale, which Postfix uses to split and trim.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// readLogicalLines splits a configuration file into logical lines.
func readLogicalLines(data []byte) []logicalLine {
	var out []logicalLine
	var cur logicalLine
	var text strings.Builder
	open := false
	flush := func() {
		if open {
			cur.text = text.String()
			out = append(out, cur)
		}
	}
	lineNo := 0
	for start := 0; start < len(data); {
		end := bytes.IndexByte(data[start:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += start
		}
		phys := data[start:end]
		start = end + 1
		lineNo++

		i := 0
		for i < len(phys) && isSpace(phys[i]) {
			i++
		}
		if i == len(phys) || phys[i] == '#' {
			continue // blank or comment: skipped, even inside a continued entry
		}
		if i > 0 && open {
			cur.segs = append(cur.segs, lineSeg{off: text.Len(), line: lineNo})
			text.Write(phys)
			continue
		}
		flush()
		cur = logicalLine{line: lineNo, leading: i > 0, segs: []lineSeg{{off: 0, line: lineNo}}}
		text.Reset()
		text.Write(phys)
		open = true
	}
	flush()
	return out
}
