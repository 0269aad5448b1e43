package rules

import "strconv"

// ActionKind is the kind of an access(5) or header_checks(5) action.
type ActionKind int

// The action kinds. ActionRestrictions is "anything else": in an access
// table the value is then a restriction list or class name that the caller
// compiles.
const (
	ActionRestrictions  ActionKind = iota
	ActionOK                       // OK, RELAY, or an all-digits value
	ActionReject                   // REJECT [text]
	ActionDefer                    // DEFER [text]
	ActionCode                     // 4NN text, 5NN text
	ActionDeferIfReject            // DEFER_IF_REJECT [text]
	ActionDeferIfPermit            // DEFER_IF_PERMIT [text]
	ActionDunno                    // DUNNO
	ActionHold                     // HOLD [text]
	ActionDiscard                  // DISCARD [text]
	ActionFilter                   // FILTER transport:destination
	ActionRedirect                 // REDIRECT user@domain
	ActionBCC                      // BCC user@domain
	ActionPrepend                  // PREPEND header: value
	ActionInfo                     // INFO [text]
	ActionWarn                     // WARN [text]
	ActionIgnore                   // IGNORE (header/body checks)
	ActionStrip                    // STRIP [text] (header/body checks)
	ActionReplace                  // REPLACE text (header/body checks)
	ActionPass                     // PASS [text] (header/body checks)
)

var actionNames = [...]string{
	ActionRestrictions:  "restrictions",
	ActionOK:            "OK",
	ActionReject:        "REJECT",
	ActionDefer:         "DEFER",
	ActionCode:          "CODE",
	ActionDeferIfReject: "DEFER_IF_REJECT",
	ActionDeferIfPermit: "DEFER_IF_PERMIT",
	ActionDunno:         "DUNNO",
	ActionHold:          "HOLD",
	ActionDiscard:       "DISCARD",
	ActionFilter:        "FILTER",
	ActionRedirect:      "REDIRECT",
	ActionBCC:           "BCC",
	ActionPrepend:       "PREPEND",
	ActionInfo:          "INFO",
	ActionWarn:          "WARN",
	ActionIgnore:        "IGNORE",
	ActionStrip:         "STRIP",
	ActionReplace:       "REPLACE",
	ActionPass:          "PASS",
}

func (k ActionKind) String() string {
	if k >= 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return "ActionKind(" + strconv.Itoa(int(k)) + ")"
}

// keywordKinds maps the upper-case first word of a value to its kind.
var keywordKinds = map[string]ActionKind{
	"DUNNO":           ActionDunno,
	"REJECT":          ActionReject,
	"DEFER":           ActionDefer,
	"INFO":            ActionInfo,
	"WARN":            ActionWarn,
	"FILTER":          ActionFilter,
	"HOLD":            ActionHold,
	"DISCARD":         ActionDiscard,
	"REDIRECT":        ActionRedirect,
	"BCC":             ActionBCC,
	"DEFER_IF_PERMIT": ActionDeferIfPermit,
	"DEFER_IF_REJECT": ActionDeferIfReject,
	"PREPEND":         ActionPrepend,
	"IGNORE":          ActionIgnore,
	"STRIP":           ActionStrip,
	"REPLACE":         ActionReplace,
	"PASS":            ActionPass,
}

// Action is a parsed access(5) value (postfix-semantics §3.4).
type Action struct {
	Kind ActionKind
	Code int    // ActionCode: the reply code given (4NN or 5NN)
	DSN  string // enhanced status code at the start of the text, "" if none given
	Text string // optional text (reply text for REJECT/DEFER/4NN/5NN/DEFER_IF_*; log text for HOLD/DISCARD/INFO/WARN/STRIP/PASS)
	Arg  string // FILTER transport:destination, REDIRECT/BCC address, PREPEND/REPLACE header text
	Raw  string // the value as given
}

// ParseAction parses an access table value. The first word is the action
// (ASCII case-insensitive); the rest is its text or argument. Keywords are
// tried in Postfix's order: an all-digits value is OK (so a bare "550" means
// OK), "4NN text"/"5NN text" need text after the code, and anything else is
// a restriction list for the caller to compile.
func ParseAction(value string) Action {
	a := Action{Raw: value}
	cmd, rest := splitCommand(value)
	kind, isKeyword := keywordKinds[asciiUpper(cmd)]
	switch {
	case isKeyword:
		a.Kind = kind
		switch kind {
		case ActionReject, ActionDefer, ActionDeferIfPermit, ActionDeferIfReject:
			a.DSN, a.Text = SplitDSN(rest)
		case ActionFilter, ActionRedirect, ActionBCC, ActionPrepend, ActionReplace:
			a.Arg = rest
		default:
			a.Text = rest
		}
	case value == "" || AllDigits(value): // an empty value means OK too
		a.Kind = ActionOK
	case len(cmd) == 3 && rest != "" && (cmd[0] == '4' || cmd[0] == '5') && AllDigits(cmd):
		a.Kind = ActionCode
		a.Code, _ = strconv.Atoi(cmd)
		a.DSN, a.Text = SplitDSN(rest)
	case asciiUpper(cmd) == "OK" || asciiUpper(cmd) == "RELAY":
		a.Kind = ActionOK
		a.Text = rest
	default:
		a.Kind = ActionRestrictions
	}
	return a
}

// Command returns the first word of the value as written (e.g. "ok").
func (a Action) Command() string {
	cmd, _ := splitCommand(a.Raw)
	return cmd
}

// splitCommand splits value at the first space or tab; rest starts at the
// first non-space character after it.
func splitCommand(value string) (cmd, rest string) {
	i := 0
	for i < len(value) && value[i] != ' ' && value[i] != '\t' {
		i++
	}
	cmd, rest = value[:i], value[i:]
	for len(rest) > 0 && isSpace(rest[0]) {
		rest = rest[1:]
	}
	return cmd, rest
}

// AllDigits is Postfix's alldig: one ASCII digit or more, nothing else.
func AllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
