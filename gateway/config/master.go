package config

import (
	"fmt"
	"strconv"
	"strings"

	"postgate/rules"
)

// Service is one master.cf service that postgate runs: an inet service whose
// command is smtpd, or a postscreen inet service with the smtpd pass service
// it hands clients to.
type Service struct {
	Name                    string // first field, e.g. "smtp", "127.0.0.1:2525", "2525", "[::1]:2525"
	Type                    string // "inet"
	Private, Unpriv, Chroot string // raw fields ("-", "y", "n")
	Wakeup                  string
	MaxProc                 int               // "-" means default_process_limit
	Command                 string            // "smtpd"
	Args                    []string          // arguments other than -o pairs
	Overrides               map[string]string // from -o name=value
	Pos                     Position
	// Postscreen: the listener is a postscreen line (Name, Pos, its
	// postscreen_* overrides) in front of the smtpd pass service (the other
	// fields, and its -o overrides).
	Postscreen bool

	overridePos map[string]Position // the master.cf line of each -o
}

// masterEntry is any master.cf line, kept for postconf -n emulation.
type masterEntry struct {
	svc       Service
	maxProc   string     // raw maxproc field
	overrides []override // in file order
}

type override struct {
	name, value string
	pos         Position
}

var masterTypes = []string{"inet", "unix", "unix-dgram", "fifo", "pass"}

const masterFields = "service type private unpriv chroot wakeup maxproc command"

type token struct {
	text string
	pos  Position
}

// tokenize splits a master.cf entry at whitespace outside {} groups.
func tokenize(file string, l logicalLine) []token {
	var toks []token
	s := l.text
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		start, level := i, 0
		for ; i < len(s); i++ {
			if s[i] == '{' {
				level++
			} else if level > 0 && s[i] == '}' {
				level--
			} else if level == 0 && isSpace(s[i]) {
				break
			}
		}
		toks = append(toks, token{text: s[start:i], pos: Position{File: file, Line: l.lineAt(start)}})
	}
	return toks
}

// parseMaster reads master.cf entries, checking their fields as Postfix does.
func parseMaster(file string, data []byte, ds *diags) []masterEntry {
	var entries []masterEntry
	for _, l := range readLogicalLines(data) {
		pos := Position{File: file, Line: l.line}
		if l.leading {
			ds.warnf(pos, "", "logical line must not start with whitespace: %q", abbrev(l.text))
			continue
		}
		if e, ok := parseMasterEntry(file, l, ds); ok {
			entries = append(entries, e)
		}
	}
	return entries
}

func parseMasterEntry(file string, l logicalLine, ds *diags) (masterEntry, bool) {
	pos := Position{File: file, Line: l.line}
	toks := tokenize(file, l)
	if len(toks) < 8 {
		ds.errorf(pos, "", "expected 8 fields (%s), found %d: %q", masterFields, len(toks), abbrev(l.text))
		return masterEntry{}, false
	}
	f := func(i int) string { return toks[i].text }
	ok := true
	bad := func(field, value, want string) {
		ds.errorf(pos, "", "invalid %s field %q: must be %s", field, value, want)
		ok = false
	}
	if !contains(masterTypes, f(1)) {
		bad("type", f(1), orList(masterTypes))
	}
	for i, field := range []string{"private", "unpriv", "chroot"} {
		if v := f(2 + i); v != "y" && v != "n" && v != "-" {
			bad(field, v, "y, n or -")
		}
	}
	if w := strings.TrimSuffix(f(5), "?"); f(5) != "-" && !rules.AllDigits(w) {
		bad("wakeup", f(5), `a number, a number followed by "?", or -`)
	}
	if f(6) != "-" && !rules.AllDigits(f(6)) {
		bad("maxproc", f(6), "a number or -")
	}
	e := masterEntry{maxProc: f(6), svc: Service{
		Name: f(0), Type: f(1), Private: f(2), Unpriv: f(3), Chroot: f(4), Wakeup: f(5),
		Command: f(7), Pos: pos,
	}}
	var stray *token
	e.svc.Args, e.overrides, stray, ok = parseArgs(toks[8:], ds, ok)
	if ok && stray != nil && e.svc.Command == "smtpd" {
		// smtpd, like every Postfix daemon, takes options only; a stray word is
		// most often a -o value with unbraced spaces.
		ds.errorf(stray.pos, "", "unexpected smtpd argument %q (write -o { name = value } for a value with spaces)", abbrev(stray.text))
		ok = false
	}
	if !ok {
		return masterEntry{}, false
	}
	e.svc.Overrides = map[string]string{}
	e.svc.overridePos = map[string]Position{}
	for _, o := range e.overrides {
		e.svc.Overrides[o.name] = o.value
		e.svc.overridePos[o.name] = o.pos
	}
	return e, true
}

// parseArgs separates -o name=value overrides from the other arguments. Like
// the daemons' getopt, options end at the first argument that is not one; "-vo"
// is "-v -o", and "-oname=value" is "-o name=value".
func parseArgs(toks []token, ds *diags, ok bool) (args []string, overrides []override, stray *token, _ bool) {
	for i := 0; i < len(toks); i++ {
		t := toks[i].text
		if stray != nil || len(t) < 2 || t[0] != '-' || t == "--" {
			if stray == nil && t != "--" {
				stray = &toks[i]
			}
			args = append(args, t)
			continue
		}
		if k := strings.IndexByte(t[1:], 'o'); k > 0 {
			args = append(args, t[:k+1])
			t = "-" + t[k+1:]
		}
		if t[1] != 'o' {
			args = append(args, t)
			continue
		}
		val, pos := t[2:], toks[i].pos
		if val == "" {
			if i+1 == len(toks) {
				ds.errorf(pos, "", "bad -o syntax: -o needs a name=value argument")
				ok = false
				break
			}
			i++
			val, pos = toks[i].text, toks[i].pos
		}
		name, value, err := parseOverride(val)
		if err != nil {
			ds.errorf(pos, "", "bad -o syntax: %v", err)
			ok = false
			continue
		}
		overrides = append(overrides, override{name: name, value: value, pos: pos})
	}
	return args, overrides, stray, ok
}

// parseOverride parses the argument of -o: "name=value" or "{ name = value }",
// where the braced form may hold whitespace.
func parseOverride(arg string) (name, value string, err error) {
	s := arg
	if strings.HasPrefix(s, "{") {
		inner, rest, ok := curly(s)
		if !ok {
			return "", "", fmt.Errorf("missing '}' in %q", abbrev(arg))
		}
		if rest != "" {
			return "", "", fmt.Errorf("text after '}' in %q", abbrev(arg))
		}
		s = inner
	}
	name, value, err = splitNameValue(s)
	switch err {
	case errNoName:
		return "", "", fmt.Errorf("missing parameter name in %q", abbrev(arg))
	case errNoEqual:
		return "", "", fmt.Errorf("%q is not name=value (write -o name=value or -o { name = value })", abbrev(arg))
	}
	return name, value, nil
}

// smtpdService reports whether postgate runs e as a listener.
func (e *masterEntry) smtpdService() bool {
	return e.svc.Type == "inet" && e.svc.Command == "smtpd"
}

// postscreenService reports whether e is a postscreen listener.
func (e *masterEntry) postscreenService() bool {
	return e.svc.Type == "inet" && e.svc.Command == "postscreen"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// maxProcOf resolves the maxproc field; "-" is default_process_limit.
func maxProcOf(field string, defaultLimit int64) int {
	if field == "-" {
		return int(defaultLimit)
	}
	n, _ := strconv.Atoi(field)
	return n
}
