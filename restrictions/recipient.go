package restrictions

import "fmt"

func buildPermitAuthDestination(_ *compiler, name, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasRecipient {
			return dunno
		}
		ok, err := e.authDestination(e.recipient)
		if err != nil {
			e.warning("%s: %v", e.recipient, err)
			return e.dictRetry(e.recipient)
		}
		if !ok {
			return dunno
		}
		return e.aclPermit(name, rcRecipient, e.recipient, "")
	}
}

// buildRejectUnauthDestination: relay_domains_reject_code 5.7.1 "Relay
// access denied" unless permit_auth_destination would permit.
func buildRejectUnauthDestination(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.rejectUnauthDestination(e.l.opts.RelayDomainsRejectCode, "5.7.1")
	}
}

// buildDeferUnauthDestination: as reject_unauth_destination with code
// relay_domains_reject_code - 100 and 4.7.1.
func buildDeferUnauthDestination(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.rejectUnauthDestination(e.l.opts.RelayDomainsRejectCode-100, "4.7.1")
	}
}

func (e *eval) rejectUnauthDestination(code int, dsn string) status {
	if !e.hasRecipient {
		return dunno
	}
	ok, err := e.authDestination(e.recipient)
	if err != nil {
		e.warning("%s: %v", e.recipient, err)
		return e.dictRetry(e.recipient)
	}
	if ok {
		return dunno
	}
	return e.reject(classPolicy, code, dsn, fmt.Sprintf("<%s>: Relay access denied", e.recipient))
}
