// Package milter is postgate's Sendmail milter client, as Postfix's
// smtpd and cleanup drive milters: one milter session per SMTP connection
// per milter, the SMTP events with Postfix's macros, the message content
// at its end, the milters' replies turned into SMTP replies, and their
// modifications applied to the message and its envelope. It speaks the
// protocol through go-milter (postgate's copy in milter/go-milter).
//
// The package takes a typed Options struct; the gateway reads the
// milter_* parameters into it and calls a Session from its SMTP session.
package milter

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gomilter "github.com/emersion/go-milter"

	"postgate/rules"
)

// Stage is a point of the SMTP dialogue where macros go to the milters,
// one per milter_*_macros parameter.
type Stage int

const (
	StageConnect Stage = iota
	StageHelo
	StageMail
	StageRcpt
	StageData
	StageEOH
	StageEOM
	StageUnknown
	numStages
)

// protoStage is the stage number of the protocol (SMFIM_*), which a
// milter's requested macro lists use; StageUnknown has none.
var protoStage = [StageUnknown]gomilter.Stage{
	StageConnect: gomilter.StageConnect, StageHelo: gomilter.StageHelo,
	StageMail: gomilter.StageMailFrom, StageRcpt: gomilter.StageRcptTo,
	StageData: gomilter.StageData, StageEOH: gomilter.StageEOH, StageEOM: gomilter.StageEOM,
}

// macroCode is the command code a stage's macros are sent for.
var macroCode = [numStages]gomilter.Code{
	StageConnect: gomilter.CodeConn, StageHelo: gomilter.CodeHelo, StageMail: gomilter.CodeMail,
	StageRcpt: gomilter.CodeRcpt, StageData: gomilter.CodeData, StageEOH: gomilter.CodeEOH,
	StageEOM: gomilter.CodeEOB, StageUnknown: gomilter.CodeUnknown,
}

// Default actions: what a milter that cannot be reached or that fails in
// the middle of a session amounts to (milter_default_action).
const (
	ActionAccept     = "accept"
	ActionReject     = "reject"
	ActionTempfail   = "tempfail"
	ActionQuarantine = "quarantine"
	ActionShutdown   = "shutdown"
)

// Options are the milter_* parameters. The braced form of a milter in
// smtpd_milters overrides the timeouts, the default action and the
// protocol version per milter.
type Options struct {
	ConnectTimeout time.Duration // milter_connect_timeout: connect and negotiation
	CommandTimeout time.Duration // milter_command_timeout: replies to SMTP events
	ContentTimeout time.Duration // milter_content_timeout: headers, body, end of message
	DefaultAction  string        // milter_default_action
	Protocol       int           // milter_protocol

	// Macros are the milter_*_macros lists, by stage: the macro names sent
	// before each event, unless the milter asked for its own.
	Macros [numStages][]string
	// MacroDefaults is milter_macro_defaults: values for macros the MTA
	// has no value for.
	MacroDefaults map[string]string
	// SoftBounce is soft_bounce: a milter's 5xx reply becomes 4xx.
	SoftBounce bool
	// QueueDirectory is where a relative unix: path starts, as for
	// Postfix's smtpd, which runs there.
	QueueDirectory string
}

// Milter is one entry of smtpd_milters.
type Milter struct {
	Name    string // as configured: "inet:127.0.0.1:8891", for logs
	network string // "tcp" or "unix"
	address string
	opts    Options
}

// Parse reads a smtpd_milters (or non_smtpd_milters) value: items
// "inet:host:port", "unix:/path", or "{ inet:host:port, connect_timeout=10s,
// command_timeout=.., content_timeout=.., default_action=accept,
// protocol=6 }", in the order they are called. Errors are worded as
// Postfix's fatal ones.
func Parse(value string, o Options) ([]*Milter, error) {
	var out []*Milter
	for _, item := range rules.SplitList(value) {
		m, err := parseMilter(item, o)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func parseMilter(spec string, o Options) (*Milter, error) {
	name := spec
	var overrides []string
	if strings.HasPrefix(spec, "{") {
		inner, ok := rules.StripBraces(spec)
		if !ok {
			return nil, fmt.Errorf("milter syntax error: %s", spec)
		}
		items := rules.SplitList(inner)
		if len(items) == 0 {
			return nil, fmt.Errorf("empty milter definition: %q", spec)
		}
		name, overrides = items[0], items[1:]
	}
	for _, item := range overrides {
		if err := override(&o, item); err != nil {
			return nil, fmt.Errorf("milter %s: %w", name, err)
		}
	}
	if err := checkAction(o.DefaultAction); err != nil {
		return nil, fmt.Errorf("milter %s: %w", name, err)
	}
	m := &Milter{Name: name, opts: o}
	transport, addr, _ := strings.Cut(name, ":")
	switch transport {
	case "inet":
		host, port, ok := cutLast(addr, ':')
		if !ok || host == "" || port == "" {
			return nil, fmt.Errorf("milter %s: need inet:host:port", name)
		}
		m.network, m.address = "tcp", strings.Trim(host, "[]")+":"+port
		if strings.Contains(m.address[:len(m.address)-len(port)-1], ":") {
			m.address = "[" + strings.Trim(host, "[]") + "]:" + port
		}
	case "unix", "local":
		if addr == "" {
			return nil, fmt.Errorf("milter %s: need unix:/path", name)
		}
		m.network, m.address = "unix", addr
		if !filepath.IsAbs(addr) {
			m.address = filepath.Join(o.QueueDirectory, addr)
		}
	default:
		return nil, fmt.Errorf("unsupported Milter endpoint type: %s (need inet:host:port or unix:/path)", name)
	}
	return m, nil
}

// cutLast splits s at the last sep.
func cutLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// override applies one name=value item of the braced form; "{ name = value }"
// is accepted too.
func override(o *Options, item string) error {
	key, value, err := rules.SplitOverride(item)
	if err != nil {
		return err
	}
	switch key {
	case "connect_timeout":
		o.ConnectTimeout, err = rules.OverrideSeconds(key, value)
	case "command_timeout":
		o.CommandTimeout, err = rules.OverrideSeconds(key, value)
	case "content_timeout":
		o.ContentTimeout, err = rules.OverrideSeconds(key, value)
	case "default_action":
		o.DefaultAction = strings.ToLower(value)
		err = checkAction(o.DefaultAction)
	case "protocol":
		n, perr := strconv.Atoi(value)
		if perr != nil || n < 2 || n > 6 {
			return fmt.Errorf("invalid protocol: %s (need 2 to 6)", value)
		}
		o.Protocol = n
	default:
		return fmt.Errorf("unknown option: \"%s = %s\"", key, value)
	}
	return err
}

// CheckAction validates a milter_default_action value.
func CheckAction(a string) error { return checkAction(strings.ToLower(a)) }

func checkAction(a string) error {
	switch a {
	case ActionAccept, ActionReject, ActionTempfail, ActionQuarantine, ActionShutdown:
		return nil
	}
	return fmt.Errorf("invalid default_action: %q (need accept, reject, tempfail, quarantine or shutdown)", a)
}
