package restrictions

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"postgate/dnsbl"
	"postgate/rules"
)

// DefaultRBLReply is default_rbl_reply's Postfix default.
const DefaultRBLReply = "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}"

// errNoExpander stands in for Options.ExpandReply when none is given: a
// listing then answers 451 4.3.5 and says why in the log.
var errNoExpander = errors.New("no $name expansion for reply templates")

// dnsListResolver gives the DNS list lookups the process's resolver when
// it can answer them; a resolver that cannot fails every lookup for now,
// as a nil DNS does.
func dnsListResolver(r Resolver) dnsbl.Resolver {
	if lr, ok := r.(dnsbl.Resolver); ok {
		return lr
	}
	return nil
}

// parseSite is called by the builders after checkArg accepted the site.
func parseSite(arg string) dnsbl.Site {
	s, err := dnsbl.ParseSite(arg)
	if err != nil {
		panic("restrictions: site not checked: " + err.Error())
	}
	return s
}

// buildRejectRBLClient: reject_rbl_client (and reject_rbl) site.
func buildRejectRBLClient(_ *compiler, _, arg string, _ *tableRef) runFunc {
	site := parseSite(arg)
	return func(e *eval) status {
		if !e.req.ClientAddr.IsValid() {
			return dunno
		}
		return e.rblReject(site, e.dnsxlAddr(site), e.req.addr(), rcClient)
	}
}

// buildPermitDNSWLClient: permit_dnswl_client site. At RCPT it never
// allowlists a recipient we would not relay for; a list that fails makes
// a later reject a 450 (defer_if_reject), as Postfix.
func buildPermitDNSWLClient(_ *compiler, name, arg string, _ *tableRef) runFunc {
	site := parseSite(arg)
	return func(e *eval) status {
		if !e.req.ClientAddr.IsValid() {
			return dunno
		}
		if st, ok := e.dnswlUnauthorized(); ok {
			return st
		}
		return e.dnswlPermit(name, e.dnsxlAddr(site), e.req.addr())
	}
}

// buildRejectRHSBLClient: reject_rhsbl_client site, on the verified
// client name.
func buildRejectRHSBLClient(_ *compiler, _, arg string, _ *tableRef) runFunc {
	return rejectRHSBL(arg, rcClient, func(e *eval) (string, bool) {
		name := e.req.clientName()
		return name, !strings.EqualFold(name, "unknown")
	})
}

// buildRejectRHSBLReverseClient: reject_rhsbl_reverse_client site, on
// the unverified reverse name.
func buildRejectRHSBLReverseClient(_ *compiler, _, arg string, _ *tableRef) runFunc {
	return rejectRHSBL(arg, rcReverseClient, func(e *eval) (string, bool) {
		name := e.req.reverseName()
		return name, !strings.EqualFold(name, "unknown")
	})
}

// buildRejectRHSBLHelo: reject_rhsbl_helo site, once HELO/EHLO was given.
func buildRejectRHSBLHelo(_ *compiler, _, arg string, _ *tableRef) runFunc {
	return rejectRHSBL(arg, rcHelo, func(e *eval) (string, bool) { return e.req.Helo, e.req.Helo != "" })
}

// buildRejectRHSBLSender: reject_rhsbl_sender site; not for the null
// sender.
func buildRejectRHSBLSender(_ *compiler, _, arg string, _ *tableRef) runFunc {
	return rejectRHSBL(arg, rcSender, func(e *eval) (string, bool) { return e.req.Sender, e.hasSender && e.req.Sender != "" })
}

// buildRejectRHSBLRecipient: reject_rhsbl_recipient site.
func buildRejectRHSBLRecipient(_ *compiler, _, arg string, _ *tableRef) runFunc {
	return rejectRHSBL(arg, rcRecipient, func(e *eval) (string, bool) { return e.recipient, e.hasRecipient })
}

// rejectRHSBL makes a reject_rhsbl_* step: what asks about, the name or
// address it finds, when there is one.
func rejectRHSBL(arg, class string, what func(e *eval) (string, bool)) runFunc {
	site := parseSite(arg)
	return func(e *eval) status {
		w, ok := what(e)
		if !ok {
			return dunno
		}
		return e.rblReject(site, e.dnsxlDomain(site, w), w, class)
	}
}

// buildPermitRHSWLClient: permit_rhswl_client site, on the verified
// client name.
func buildPermitRHSWLClient(_ *compiler, name, arg string, _ *tableRef) runFunc {
	site := parseSite(arg)
	return func(e *eval) status {
		client := e.req.clientName()
		if strings.EqualFold(client, "unknown") {
			return dunno
		}
		if st, ok := e.dnswlUnauthorized(); ok {
			return st
		}
		return e.dnswlPermit(name, e.dnsxlDomain(site, client), client)
	}
}

// dnsxlAddr asks a list about the client address, once per session:
// Postfix keeps each answer (a failure too) for the life of the smtpd
// process, so a list that times out costs its timeout and its warning
// once, not at every RCPT.
func (e *eval) dnsxlAddr(site dnsbl.Site) dnsbl.Result {
	return e.dnsxlOnce(site, "addr "+e.req.addr(), func() dnsbl.Result {
		return e.l.dnsxl.CheckAddr(e.ctx, site, e.req.ClientAddr)
	})
}

// dnsxlDomain asks a list about a name or an address's domain.
func (e *eval) dnsxlDomain(site dnsbl.Site, what string) dnsbl.Result {
	return e.dnsxlOnce(site, "name "+what, func() dnsbl.Result {
		return e.l.dnsxl.CheckDomain(e.ctx, site, what)
	})
}

func (e *eval) dnsxlOnce(site dnsbl.Site, what string, ask func() dnsbl.Result) dnsbl.Result {
	key := site.Arg + "\x00" + what
	if r, ok := e.txn.dnsxl[key]; ok {
		return r
	}
	r := ask()
	if r.Status == dnsbl.Failed {
		e.warning("%v", r.Err)
	}
	if e.txn.dnsxl == nil {
		e.txn.dnsxl = map[string]dnsbl.Result{}
	}
	e.txn.dnsxl[key] = r
	return r
}

// dnswlUnauthorized: at RCPT, an allowlist must not permit a recipient
// that permit_auth_destination would not.
func (e *eval) dnswlUnauthorized() (status, bool) {
	if e.stage != Rcpt || !e.hasRecipient {
		return dunno, false
	}
	ok, err := e.authDestination(e.recipient)
	if err != nil {
		e.warning("%s: %v", e.recipient, err)
		return e.dictRetry(e.recipient), true
	}
	return dunno, !ok
}

// dnswlPermit acts on an allowlist's answer about what.
func (e *eval) dnswlPermit(name string, r dnsbl.Result, what string) status {
	switch r.Status {
	case dnsbl.Listed:
		e.txn.dnswlListed = e.req.ClientAddr
		return e.aclPermit(name, rcClient, e.req.namaddr(), "")
	case dnsbl.Failed:
		return e.deferIfReject(classPolicy, 450, "4.7.1", fmt.Sprintf("<%s>: %s rejected: Service unavailable", what, rcClient))
	}
	return dunno
}

// rblReject rejects what a list lists (Postfix's rbl_reject_reply): the
// reply is rbl_reply_maps' template for the site as written, else
// default_rbl_reply, expanded with the $rbl_* names and the session's;
// it must start with a 4xx or 5xx code, its DSN defaults to 4.7.1.
func (e *eval) rblReject(site dnsbl.Site, r dnsbl.Result, what, class string) status {
	if r.Status != dnsbl.Listed {
		return dunno
	}
	template, found := e.l.opts.DefaultRBLReply, false
	for _, tr := range e.l.rblReplyMaps {
		v, ok, err := e.find(tr, site.Arg, false)
		if err != nil {
			e.warning("rbl_reply_maps: %s: table lookup problem for %q: %v", tr.spec, site.Arg, err)
			return e.serverError()
		}
		if ok {
			template, found = v, true
			break
		}
	}
	lookup := func(name string) string {
		switch name {
		case "rbl_code":
			return strconv.Itoa(e.l.opts.MapsRBLRejectCode)
		case "rbl_domain":
			return site.Domain
		case "rbl_reason", "rbl_txt":
			return r.TXT
		case "rbl_what":
			return what
		case "rbl_class":
			return class
		}
		if e.req.Macros != nil {
			return e.req.Macros(name)
		}
		return ""
	}
	text, err := e.l.opts.ExpandReply(template, lookup)
	if err != nil && found {
		e.warning("rbl_reject_reply: bad rbl reply template for domain %s: %s", site.Arg, template)
		text, err = e.l.opts.ExpandReply(e.l.opts.DefaultRBLReply, lookup)
	}
	if err != nil {
		e.warning("default_rbl_reply: %v", err)
		return e.serverError()
	}
	if len(text) < 4 || (text[0] != '4' && text[0] != '5') || !isDigit(text[1]) || !isDigit(text[2]) || text[3] != ' ' {
		e.warning("rbl response code configuration error: %s", text)
		return e.reject(classPolicy, 450, "4.7.1", "Service unavailable")
	}
	code, _ := strconv.Atoi(text[:3])
	dsn, rest := rules.SplitDSN(text[4:])
	return e.reject(classPolicy, code, e.dsnFix(or(dsn, "4.7.1"), class), or(rest, "Service unavailable"))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// dnsLists prepares what the DNS list restrictions share: the client of
// the lists, rbl_reply_maps, and a check of default_rbl_reply's syntax
// (Postfix stops on a bad default template).
func (c *compiler) dnsLists() error {
	l := c.l
	l.dnsxl = dnsbl.New(dnsbl.Options{Resolver: dnsListResolver(l.opts.DNS)})
	for _, spec := range l.opts.RBLReplyMaps {
		tr, err := c.table(spec)
		if err != nil {
			return &ParamError{Param: "rbl_reply_maps", Err: err}
		}
		l.rblReplyMaps = append(l.rblReplyMaps, tr)
	}
	if _, err := l.opts.ExpandReply(l.opts.DefaultRBLReply, func(string) string { return "" }); err != nil && !errors.Is(err, errNoExpander) {
		return &ParamError{Param: "default_rbl_reply", Err: err}
	}
	return nil
}
