package restrictions

import (
	"fmt"
	"slices"
)

func buildPermitMynetworks(_ *compiler, name, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		ok, err := e.l.opts.Mynetworks.Match(e.ctx, e.req.ClientAddr)
		if err != nil {
			e.warning("mynetworks: %v", err)
			return e.dictRetry(e.replyName)
		}
		if !ok {
			return dunno
		}
		return e.aclPermit(name, rcClient, e.req.namaddr(), "")
	}
}

// buildPermitInetInterfaces permits a client on one of our own
// inet_interfaces addresses (Postfix's permit_inet_interfaces): the
// connection's own address, whatever XCLIENT says.
func buildPermitInetInterfaces(_ *compiler, name, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !slices.Contains(e.l.opts.InetInterfaces, e.req.PeerAddr.Unmap()) {
			return dunno
		}
		return e.aclPermit(name, rcClient, e.req.namaddr(), "")
	}
}

// buildPermitSASL permits clients that authenticated (never, until
// postgate offers AUTH).
func buildPermitSASL(_ *compiler, name, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if e.req.SASLUser == "" {
			return dunno
		}
		return e.aclPermit(name, rcClient, e.req.namaddr(), "")
	}
}

func buildClientAccess(_ *compiler, _, _ string, tr *tableRef) runFunc {
	return func(e *eval) status { return e.clientAccess(tr) }
}

func (e *eval) clientAccess(tr *tableRef) status {
	return e.checkNamadrAccess(tr, e.req.clientName(), e.req.addr(), e.req.namaddr(), rcClient)
}

// buildReverseClientAccess: as check_client_access on the unverified
// reverse name, but an OK result is refused (451 4.3.5).
func buildReverseClientAccess(_ *compiler, name, _ string, tr *tableRef) runFunc {
	return func(e *eval) status {
		rev := e.req.reverseName()
		st := e.checkNamadrAccess(tr, rev, e.req.addr(), rev, rcReverseClient)
		return e.forbidAllowlist(name, st, rev)
	}
}

// forbidAllowlist refuses an OK from a restriction that must not allowlist.
func (e *eval) forbidAllowlist(name string, st status, target string) status {
	if e.txn.discard || st != permit {
		return st
	}
	e.warning("restriction %s returns OK for %s", name, target)
	e.warning("this is not allowed for security reasons")
	e.warning("use DUNNO instead of OK if you want to make an exception")
	return e.serverError()
}

// buildRejectUnknownClient: the client's name did not verify
// (unknown_client_reject_code, or 450 for a temporary failure).
func buildRejectUnknownClient(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.rejectUnknownPeer(e.req.ClientNameStatus, "4.7.25", "Client host rejected: cannot find your hostname, [%s]")
	}
}

// buildRejectUnknownReverseClient: the client has no reverse name.
func buildRejectUnknownReverseClient(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.rejectUnknownPeer(e.req.ReverseNameStatus, "4.7.1", "Client host rejected: cannot find your reverse hostname, [%s]")
	}
}

func (e *eval) rejectUnknownPeer(st PeerStatus, dsn, format string) status {
	if st == PeerOK {
		return dunno
	}
	code := 450
	if st != PeerTemp {
		code = e.l.opts.UnknownClientRejectCode
	}
	return e.reject(classPolicy, code, dsn, fmt.Sprintf(format, e.req.addr()))
}
