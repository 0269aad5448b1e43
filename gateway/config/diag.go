package config

import (
	"fmt"
	"strings"
)

// Position of a setting: File is the path as given (e.g. "/etc/postgate/main.cf"),
// Line is 1-based. The zero value means a built-in default.
type Position struct {
	File string
	Line int
}

// String returns "file:line", "file" for a whole file, or "default" when zero.
func (p Position) String() string {
	switch {
	case p == Position{}:
		return "default"
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
}

// Diagnostic is one problem found while loading.
type Diagnostic struct {
	Pos     Position
	Param   string // the parameter concerned, if any
	Msg     string
	Warning bool
}

// String renders the diagnostic as
// "[warning: ]file:line: [parameter name: ]message".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.Warning {
		b.WriteString("warning: ")
	}
	if d.Pos != (Position{}) {
		b.WriteString(d.Pos.String())
		b.WriteString(": ")
	}
	if d.Param != "" {
		b.WriteString("parameter ")
		b.WriteString(d.Param)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Error is returned by Load and Parse when at least one Diagnostic is not a
// warning. Diags holds every diagnostic, warnings included, in the order found.
type Error struct {
	Diags []Diagnostic
}

// Error lists the non-warning diagnostics, one per line.
func (e *Error) Error() string {
	var lines []string
	for _, d := range e.Diags {
		if !d.Warning {
			lines = append(lines, d.String())
		}
	}
	return strings.Join(lines, "\n")
}

// diags collects diagnostics while loading.
type diags []Diagnostic

func (ds *diags) errorf(pos Position, param, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Pos: pos, Param: param, Msg: fmt.Sprintf(format, args...)})
}

func (ds *diags) warnf(pos Position, param, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Pos: pos, Param: param, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func (ds diags) failed() bool {
	for _, d := range ds {
		if !d.Warning {
			return true
		}
	}
	return false
}
