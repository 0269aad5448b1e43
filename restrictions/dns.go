package restrictions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Resolver is what the DNS-based restrictions ask of the process's
// resolver.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]netip.Addr, error)
	LookupNS(ctx context.Context, name string) ([]*net.NS, error)
}

// dnsOutcome is Postfix's dns_lookup_l status for a name.
type dnsOutcome int

const (
	dnsFound dnsOutcome = iota
	dnsNotFound
	dnsRetry
	dnsNullMX
)

// lookupName asks, as Postfix's dns_lookup_l, MX then addresses for a mail
// domain (mxFirst; a null MX is its own outcome) or addresses then MX for a
// host name, and stops at the first answer. A temporary failure wins over
// "not found".
func (e *eval) lookupName(name string, mxFirst bool) dnsOutcome {
	r := e.l.opts.DNS
	if r == nil {
		return dnsRetry
	}
	retry := false
	mx := func() (dnsOutcome, bool) {
		mxs, err := r.LookupMX(e.ctx, name)
		switch {
		case err != nil:
			retry = retry || !notFound(err)
			return 0, false
		case len(mxs) == 1 && mxs[0].Host == "." && mxs[0].Pref == 0:
			return dnsNullMX, true
		}
		return dnsFound, len(mxs) > 0
	}
	host := func() (dnsOutcome, bool) {
		addrs, err := r.LookupHost(e.ctx, name)
		if err != nil {
			retry = retry || !notFound(err)
			return 0, false
		}
		return dnsFound, len(addrs) > 0
	}
	steps := []func() (dnsOutcome, bool){host, mx}
	if mxFirst {
		steps = []func() (dnsOutcome, bool){mx, host}
	}
	for _, step := range steps {
		if out, ok := step(); ok {
			return out
		}
	}
	if retry {
		return dnsRetry
	}
	return dnsNotFound
}

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// buildRejectUnknownHelo: a HELO name with no address nor MX record
// (unknown_hostname_reject_code; a temporary failure defers if permitted).
func buildRejectUnknownHelo(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		helo := e.req.Helo
		if helo == "" || helo[0] == '[' {
			return dunno
		}
		switch e.lookupName(helo, false) {
		case dnsNotFound:
			return e.reject(classPolicy, e.l.opts.UnknownHostnameRejectCode, "4.7.1",
				fmt.Sprintf("<%s>: %s rejected: Host not found", helo, rcHelo))
		case dnsRetry:
			return e.deferIfPermit(true, classPolicy, 450, "4.7.1", fmt.Sprintf("<%s>: %s rejected: Host not found", helo, rcHelo))
		}
		return dunno
	}
}

func buildRejectUnknownSenderDomain(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasSender || e.req.Sender == "" {
			return dunno
		}
		return e.rejectUnknownAddress(e.req.Sender, rcSender)
	}
}

func buildRejectUnknownRecipientDomain(_ *compiler, _, _ string, _ *tableRef) runFunc {
	return func(e *eval) status {
		if !e.hasRecipient || e.recipient == "" {
			return dunno
		}
		return e.rejectUnknownAddress(e.recipient, rcRecipient)
	}
}

// rejectUnknownAddress is Postfix's reject_unknown_address: a domain that
// is not ours and has no MX nor address record.
func (e *eval) rejectUnknownAddress(addr, replyClass string) status {
	r, err := e.resolve(addr)
	if err != nil {
		e.warning("%s: %v", addr, err)
		return e.dictRetry(addr)
	}
	domain := r.domain
	if !r.qualified || r.class.Final() || strings.HasPrefix(domain, "[") {
		return dunno
	}
	sender := replyClass == rcSender
	dsn := "4.1.2"
	if sender {
		dsn = "4.1.8"
	}
	switch e.lookupName(domain, true) {
	case dnsNullMX:
		code, ndsn := 556, "4.1.10"
		if sender {
			code, ndsn = 550, "4.7.27"
		}
		return e.reject(classPolicy, code, ndsn, fmt.Sprintf("<%s>: %s rejected: Domain %s does not accept mail (nullMX)", addr, replyClass, domain))
	case dnsNotFound:
		return e.reject(classPolicy, e.l.opts.UnknownAddressRejectCode, dsn, fmt.Sprintf("<%s>: %s rejected: Domain not found", addr, replyClass))
	case dnsRetry:
		return e.deferIfPermit(true, classPolicy, 450, dsn, fmt.Sprintf("<%s>: %s rejected: Domain not found", addr, replyClass))
	}
	return dunno
}
