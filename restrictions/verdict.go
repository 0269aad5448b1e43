package restrictions

import "postgate/rules"

// Decision is the outcome of the lists checked for a stage.
type Decision int

const (
	// Dunno: no list decided; the command is accepted.
	Dunno Decision = iota
	// Permit: a list ended with an explicit OK and none rejected; the
	// command is accepted.
	Permit
	// Reject: the command is refused with Code (4xx or 5xx).
	Reject
)

func (d Decision) String() string {
	switch d {
	case Permit:
		return "permit"
	case Reject:
		return "reject"
	}
	return "dunno"
}

// Verdict is the result of Check.
type Verdict struct {
	Decision Decision
	// Reply is the reply when Decision is Reject, e.g.
	// 554 5.7.1 "<u@foreign.test>: Relay access denied".
	Reply rules.Reply

	// Effects are the side effects of access actions, in the order they
	// fired. They do not depend on Decision: Postfix keeps a HOLD or BCC
	// even when a later restriction rejects the command.
	Effects []Effect
	// Log holds the lines to write, in order, including the "reject" (or
	// "reject_warning") line of the reply itself.
	Log []LogEvent
	// Disconnect: the reply code is 421 or 521; hang up after the reply.
	Disconnect bool
}

// Effect is a side effect of an access action: HOLD, DISCARD, FILTER,
// REDIRECT, BCC, PREPEND, WARN or INFO.
type Effect struct {
	Action rules.ActionKind
	Arg    string // FILTER transport:destination, REDIRECT/BCC address, PREPEND header
	Text   string // optional text of HOLD, DISCARD, WARN, INFO
}

// LogKind says how a LogEvent is written.
type LogKind int

const (
	// LogAction is a Postfix action line:
	// "<queueid|NOQUEUE>: <What>: <STAGE> from <name>[<addr>]: <Text>; from=<..> to=<..> proto=.. helo=<..>".
	LogAction LogKind = iota
	// LogWarning is "warning: <Text>".
	LogWarning
	// LogInfo is "<Text>".
	LogInfo
)

// LogEvent is one line for the mail log.
type LogEvent struct {
	Kind LogKind
	What string // LogAction: reject, reject_warning, hold, discard, filter, redirect, bcc, warn, info, permit
	Text string
}
