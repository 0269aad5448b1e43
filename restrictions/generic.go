package restrictions

import (
	"fmt"
	"strconv"
	"time"
)

func buildPermit(_ *compiler, name, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.aclPermit(name, e.replyClass, e.replyName, "")
	}
}

func buildReject(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.reject(classPolicy, e.l.opts.RejectCode, "5.7.1",
			fmt.Sprintf("<%s>: %s rejected: Access denied", e.replyName, e.replyClass))
	}
}

// buildRejectUnauthPipelining refuses a client that sent commands ahead
// of a reply it should have waited for (the session says so).
func buildRejectUnauthPipelining(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.req.IllegalPipelining {
			return dunno
		}
		return e.reject(classProtocol, 503, "5.5.0",
			fmt.Sprintf("<%s>: %s rejected: Improper use of SMTP command pipelining", e.replyName, e.replyClass))
	}
}

func buildDefer(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.reject(classPolicy, e.l.opts.DeferCode, "4.3.2",
			fmt.Sprintf("<%s>: %s rejected: Try again later", e.replyName, e.replyClass))
	}
}

func buildDeferIfPermit(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.deferIfPermit(true, classPolicy, 450, "4.7.0",
			fmt.Sprintf("<%s>: %s rejected: defer_if_permit requested", e.replyName, e.replyClass))
	}
}

func buildDeferIfReject(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		return e.deferIfReject(classPolicy, 450, "4.7.0",
			fmt.Sprintf("<%s>: %s rejected: defer_if_reject requested", e.replyName, e.replyClass))
	}
}

// buildSleep pauses, then continues (DUNNO). The session's end cuts the
// pause short.
func buildSleep(_ *compiler, _, arg string, _ *tableRef) runFunc {
	n, err := strconv.Atoi(arg)
	if err != nil {
		n = 0
	}
	d := time.Duration(n) * time.Second
	return func(e *eval) status {
		if d <= 0 {
			return dunno
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-e.ctx.Done():
		}
		return dunno
	}
}
