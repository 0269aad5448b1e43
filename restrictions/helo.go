package restrictions

import (
	"fmt"

	"postgate/rules"
)

func buildHeloAccess(_ *compiler, _, _ string, tr *tableRef) runFunc {
	return func(e *eval) status { return e.heloAccess(tr) }
}

func (e *eval) heloAccess(tr *tableRef) status {
	if e.req.Helo == "" {
		return dunno
	}
	st, _ := e.checkDomainAccess(tr, e.req.Helo, e.req.Helo, rcHelo)
	return st
}

// buildRejectInvalidHelo: bad HELO syntax, 501 5.5.2 "Invalid name" (or
// "invalid ip address" for an address literal).
func buildRejectInvalidHelo(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		helo := e.req.Helo
		switch {
		case helo == "":
			return dunno
		case helo[0] == '[':
			return e.rejectInvalidHostaddr(helo)
		}
		name := rules.TruncateDot(helo)
		if rules.ValidHostname(name, false) || rules.ValidHostaddr(name) {
			return dunno
		}
		return e.reject(classPolicy, e.l.opts.InvalidHostnameRejectCode, "5.5.2",
			fmt.Sprintf("<%s>: %s rejected: Invalid name", helo, rcHelo))
	}
}

// buildRejectNonFQDNHelo: a HELO name without a dot (or invalid), 504
// 5.5.2 "need fully-qualified hostname".
func buildRejectNonFQDNHelo(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		helo := e.req.Helo
		switch {
		case helo == "":
			return dunno
		case helo[0] == '[':
			return e.rejectInvalidHostaddr(helo)
		}
		name := rules.TruncateDot(helo)
		if rules.ValidHostname(name, false) && containsDot(name) {
			return dunno
		}
		return e.reject(classPolicy, e.l.opts.NonFQDNRejectCode, "5.5.2",
			fmt.Sprintf("<%s>: %s rejected: need fully-qualified hostname", helo, rcHelo))
	}
}

// rejectInvalidHostaddr checks a HELO address literal "[addr]".
func (e *eval) rejectInvalidHostaddr(helo string) status {
	addr := helo
	if len(addr) > 2 && addr[len(addr)-1] == ']' {
		addr = addr[1 : len(addr)-1]
	}
	if _, ok := rules.MailhostAddr(addr); ok {
		return dunno
	}
	return e.reject(classPolicy, e.l.opts.InvalidHostnameRejectCode, "5.5.2",
		fmt.Sprintf("<%s>: %s rejected: invalid ip address", helo, rcHelo))
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

func buildEtrnAccess(_ *compiler, _, _ string, tr *tableRef) runFunc {
	return func(e *eval) status { return e.etrnAccess(tr) }
}

func (e *eval) etrnAccess(tr *tableRef) status {
	if e.req.EtrnDomain == "" || e.stage != Etrn {
		return dunno
	}
	st, _ := e.checkDomainAccess(tr, e.req.EtrnDomain, e.req.EtrnDomain, rcEtrn)
	return st
}
