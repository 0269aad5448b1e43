package restrictions

import (
	"fmt"
	"strings"

	"postgate/rules"
)

// accessResult acts on an access table value (Postfix's
// check_table_result, postfix-semantics §3.4). datum is what was looked up;
// name and class go into replies ("<name>: <class> rejected: ...").
func (e *eval) accessResult(tr *tableRef, value, datum, name, class string) status {
	a := rules.ParseAction(value)
	o := &e.l.opts
	switch a.Kind {
	case rules.ActionDunno:
		return dunno
	case rules.ActionOK:
		return e.aclPermit(a.Command(), class, name, "from "+tr.spec)
	case rules.ActionReject:
		return e.reject(classPolicy, o.AccessMapRejectCode, e.dsnFix(or(a.DSN, "5.7.1"), class),
			fmt.Sprintf("<%s>: %s rejected: %s", name, class, or(a.Text, "Access denied")))
	case rules.ActionDefer:
		return e.reject(classPolicy, o.AccessMapDeferCode, e.dsnFix(or(a.DSN, "4.7.1"), class),
			fmt.Sprintf("<%s>: %s rejected: %s", name, class, or(a.Text, "Access denied")))
	case rules.ActionCode:
		return e.reject(classPolicy, a.Code, e.dsnFix(or(a.DSN, value[:1]+".7.1"), class),
			fmt.Sprintf("<%s>: %s rejected: %s", name, class, or(a.Text, "Access denied")))
	case rules.ActionDeferIfPermit:
		return e.deferIfPermit(true, classPolicy, o.AccessMapDeferCode, e.dsnFix(or(a.DSN, "4.7.1"), class),
			fmt.Sprintf("<%s>: %s rejected: %s", name, class, or(a.Text, "Service unavailable")))
	case rules.ActionDeferIfReject:
		return e.deferIfReject(classPolicy, o.AccessMapDeferCode, e.dsnFix(or(a.DSN, "4.7.1"), class),
			fmt.Sprintf("<%s>: %s rejected: %s", name, class, or(a.Text, "Service unavailable")))
	case rules.ActionInfo, rules.ActionWarn:
		e.logAction(strings.ToLower(a.Kind.String()), a.Text)
		e.effect(a.Kind, "", a.Text)
		return dunno
	case rules.ActionHold:
		if !e.canDelegate(tr, "HOLD") || e.txn.hold {
			return dunno
		}
		e.logAction("hold", fmt.Sprintf("<%s>: %s %s", name, class, or(a.Text, "triggers HOLD action")))
		e.txn.hold = true
		e.effect(a.Kind, "", a.Text)
		return dunno
	case rules.ActionDiscard:
		if !e.canDelegate(tr, "DISCARD") {
			return dunno
		}
		e.logAction("discard", fmt.Sprintf("<%s>: %s %s", name, class, or(a.Text, "triggers DISCARD action")))
		e.txn.discard = true
		e.effect(a.Kind, "", a.Text)
		return e.aclPermit(a.Command(), class, name, "from "+tr.spec)
	case rules.ActionFilter:
		if !e.canDelegate(tr, "FILTER") {
			return dunno
		}
		switch {
		case a.Arg == "":
			e.warning("access table %s entry \"%s\" has FILTER entry without value", tr.spec, datum)
		case !strings.Contains(a.Arg, ":"):
			e.warning("access table %s entry \"%s\" requires transport:destination", tr.spec, datum)
		default:
			e.logAction("filter", fmt.Sprintf("<%s>: %s triggers FILTER %s", name, class, a.Arg))
			e.effect(a.Kind, a.Arg, "")
		}
		return dunno
	case rules.ActionRedirect, rules.ActionBCC:
		if !e.canDelegate(tr, a.Kind.String()) {
			return dunno
		}
		if !strings.Contains(a.Arg, "@") {
			e.warning("access table %s entry \"%s\" requires user@domain target", tr.spec, datum)
			return dunno
		}
		e.logAction(strings.ToLower(a.Kind.String()), fmt.Sprintf("<%s>: %s triggers %s %s", name, class, a.Kind, a.Arg))
		e.effect(a.Kind, a.Arg, "")
		return dunno
	case rules.ActionPrepend:
		if !e.notInClientHelo(tr, "PREPEND") {
			return dunno
		}
		if e.stage == EndOfData {
			e.warning("access table %s: action PREPEND must be used before smtpd_end_of_data_restrictions", tr.spec)
			return dunno
		}
		if !isHeader(a.Arg) {
			e.warning("access table %s entry \"%s\" requires header: text", tr.spec, datum)
			return dunno
		}
		e.effect(a.Kind, a.Arg, "")
		return dunno
	}
	return e.accessRestrictions(tr, value, name, class)
}

// accessRestrictions evaluates a value that is a restriction list or class
// name. Tables are not allowed there, and nesting is bounded.
func (e *eval) accessRestrictions(tr *tableRef, value, name, class string) status {
	if strings.Contains(value, ":") {
		e.warning("access table %s has entry with lookup table: %s", tr.spec, value)
		e.warning("do not specify lookup tables inside SMTPD access maps")
		e.warning("define a restriction class and specify its name instead.")
		return e.serverError()
	}
	if e.recursion > maxRecursion {
		e.warning("access table %s entry %s causes unreasonable recursion", tr.spec, value)
		return e.serverError()
	}
	lst := e.l.valueList(value)
	if len(lst.steps) == 0 {
		e.warning("access table %s entry %s has empty value", tr.spec, value)
		return permit
	}
	return e.evalList(lst)
}

// canDelegate: actions that need a mail transaction are unavailable in
// ETRN and before MAIL FROM.
func (e *eval) canDelegate(tr *tableRef, action string) bool {
	if e.stage == Etrn {
		e.warning("access table %s: action %s is unavailable in smtpd_etrn_restrictions", tr.spec, action)
		return false
	}
	return e.notInClientHelo(tr, action)
}

func (e *eval) notInClientHelo(tr *tableRef, action string) bool {
	if !e.hasSender {
		e.warning("access table %s: with smtpd_delay_reject=no, action %s is always skipped in %s or %s restrictions",
			tr.spec, action, rcClient, rcHelo)
		return false
	}
	return true
}

// isHeader reports whether s starts with "Name:" (optional blanks before
// the colon).
func isHeader(s string) bool {
	i := 0
	for i < len(s) && s[i] > ' ' && s[i] < 0x7f && s[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i < len(s) && s[i] == ':'
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
