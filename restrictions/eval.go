package restrictions

import (
	"context"
	"fmt"

	"postgate/rules"
)

// status is the result of one restriction or list (Postfix's
// SMTPD_CHECK_DUNNO/OK/REJECT).
type status int

const (
	dunno status = iota
	permit
	reject
)

// maxRecursion bounds nested restriction classes and table values.
const maxRecursion = 100

// eval is the state of one Check call.
type eval struct {
	ctx   context.Context
	l     *Lists
	req   *Request
	txn   *Txn
	stage Stage
	v     Verdict

	// Reset at the start of each stage's lists (SMTPD_CHECK_RESET).
	recursion    int
	warnIfReject int // recursion level warn_if_reject was given at; 0 = off
	dir          deferral

	// The top-level list being evaluated.
	replyName  string
	replyClass string
	defACL     accessKind

	hasSender    bool // MAIL FROM was given (Postfix: state->sender != 0)
	hasRecipient bool
	recipient    string

	// Recipient validation ran for this command's sender or recipient
	// (Postfix's sender_rcptmap_checked, recipient_rcptmap_checked).
	senderMapsChecked, rcptMapsChecked bool

	reply     rules.Reply // the reject
	permitted bool        // a top-level list ended with OK

	memo resolveMemo // the last address resolved

	// policyDefault: a policy service's default_action is being
	// evaluated; a failing service inside it gets the built-in default.
	policyDefault bool
}

func (e *eval) reset() {
	e.recursion, e.warnIfReject = 0, 0
	e.dir.active = false
}

func (e *eval) logAction(what, text string) {
	e.v.Log = append(e.v.Log, LogEvent{Kind: LogAction, What: what, Text: text})
}

func (e *eval) warning(format string, args ...any) {
	e.v.Log = append(e.v.Log, LogEvent{Kind: LogWarning, Text: fmt.Sprintf(format, args...)})
}

func (e *eval) info(format string, args ...any) {
	e.v.Log = append(e.v.Log, LogEvent{Kind: LogInfo, Text: fmt.Sprintf(format, args...)})
}

func (e *eval) effect(action rules.ActionKind, arg, text string) {
	e.v.Effects = append(e.v.Effects, Effect{Action: action, Arg: arg, Text: text})
}

// evalList is Postfix's generic_checks: the steps in order until one
// decides; warn_if_reject covers the step after it (and all it nests).
func (e *eval) evalList(l *list) status {
	saved := e.recursion
	e.recursion++
	st := dunno
	for i := range l.steps {
		s := &l.steps[i]
		if e.txn.discard {
			break
		}
		if s.warnIfReject {
			if e.warnIfReject == 0 {
				e.warnIfReject = e.recursion
			}
			continue
		}
		st = s.run(e)
		if e.warnIfReject >= e.recursion {
			e.warnIfReject = 0
		}
		if st != dunno {
			break
		}
		if e.txn.dip.active && e.dir.active {
			break
		}
	}
	e.recursion = saved
	if e.warnIfReject >= e.recursion {
		e.warnIfReject = 0
	}
	return st
}

// top evaluates a top-level list for the current stage.
func (e *eval) top(l *list, name, class string, acl accessKind) status {
	e.replyName, e.replyClass, e.defACL = name, class, acl
	if l == nil || len(l.steps) == 0 {
		return dunno
	}
	st := e.evalList(l)
	if st == permit {
		e.permitted = true
	}
	return st
}
