package gateway

import (
	"crypto"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"postgate/gateway/config"
	"postgate/restrictions/dkim"
	"postgate/restrictions/dmarc"
	"postgate/rules"
)

// Mail authentication in the content stage, after header and body checks
// and header rewriting, on the message as it will be queued: messages
// from postgate_dkim_signing_clients are signed (DKIM) by the domain of
// their From: address, as postgate_dkim_signing_table says; other
// messages, when postgate_dkim_verify is on, have their DKIM signatures
// verified and DMARC evaluated (with the transaction's SPF result), get
// one Authentication-Results: header (authserv-id $myhostname) and lose
// any that claim ours; with postgate_dmarc_enforce, a failure under
// p=reject is refused and one under p=quarantine held. The leaf work is
// in restrictions/dkim and restrictions/dmarc.

// authenticator is one service's mail authentication settings.
type authenticator struct {
	verify, enforce bool
	dns             dnsResolver
	signing         []rules.Table
	signHeaders     []string
	signClients     []rewriteClient
	keys            dkim.Keys
}

// newAuthenticator builds the service's mail authentication; nil when
// it neither verifies nor signs.
func newAuthenticator(cfg *config.Config, tables *tableCache, dns dnsResolver, mynetworks *rules.AddrList, ours []netip.Addr) (*authenticator, error) {
	a := &authenticator{verify: cfg.Bool("postgate_dkim_verify"), enforce: cfg.Bool("postgate_dmarc_enforce"),
		signHeaders: cfg.List("postgate_dkim_sign_headers"), dns: dns}
	var err error
	if a.signing, err = openMaps(cfg, "postgate_dkim_signing_table", tables); err != nil {
		return nil, err
	}
	if !a.verify && len(a.signing) == 0 {
		return nil, nil
	}
	if !slices.ContainsFunc(a.signHeaders, func(h string) bool { return strings.EqualFold(h, "From") }) {
		return nil, paramError(cfg, "postgate_dkim_sign_headers", fmt.Errorf("From must be signed (RFC 6376 5.4)"))
	}
	if a.signClients, err = newRewriteClients(cfg, "postgate_dkim_signing_clients", tables, mynetworks, ours); err != nil {
		return nil, err
	}
	return a, nil
}

// headField is one field of the message's header block.
type headField struct {
	name, value string // value unfolded
	off, n      int64
}

// authenticate runs the mail authentication on msg. It returns the
// message to queue (msg, or a new one the caller releases) and whether it
// goes on hold; ok is false when the client has its refusal.
func (s *session) authenticate(msg *assembly) (out *assembly, hold, ok bool) {
	a := s.svc.auth
	if a == nil || msg.spoolErr != nil {
		return msg, false, true
	}
	content, size := msg.content()
	var head []headField
	eachHeader(content, size, func(raw []byte, off int64) bool {
		name, value, _ := strings.Cut(string(raw), ":")
		value = strings.TrimSpace(strings.NewReplacer("\r\n", "", "\n", "").Replace(value))
		head = append(head, headField{name: strings.TrimSpace(name), value: value, off: off, n: int64(len(raw))})
		return true
	})
	// A signing client's mail is ours to sign, not to verify.
	internal, err := matchClients(s.ctx, a.signClients, s.client.addr, s.peer)
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: %s: postgate_dkim_signing_clients: %v", s.txn.id, err)
		s.reply(rules.Reply{Code: 451, DSN: "4.3.0", Text: "Temporary lookup error"})
		return nil, false, false
	}
	var edits []contentEdit
	switch {
	case internal && len(a.signing) > 0:
		sig, r := s.dkimSign(content, size, head)
		if r != nil {
			s.reply(*r)
			return nil, false, false
		}
		if sig != "" {
			edits = append(edits, contentEdit{insert: []byte(sig)})
		}
	case !internal && a.verify:
		ar, r, h := s.verifyMessage(content, size, head)
		if r != nil {
			s.reply(*r)
			return nil, false, false
		}
		edits, hold = append(edits, contentEdit{insert: []byte(ar)}), h
	}
	if a.verify {
		edits = append(edits, s.forgedAuthResults(head)...)
	}
	if len(edits) == 0 {
		return msg, hold, true
	}
	return s.reassemble(msg, edits), hold, true
}

// forgedAuthResults are the edits that remove the Authentication-Results:
// headers that claim our authserv-id (RFC 8601 section 5): only ours may.
func (s *session) forgedAuthResults(head []headField) []contentEdit {
	var edits []contentEdit
	for _, f := range head {
		if !strings.EqualFold(f.name, "Authentication-Results") {
			continue
		}
		id, _, err := authres.Parse(f.value)
		if err != nil {
			id, _, _ = strings.Cut(f.value, ";")
		}
		if strings.EqualFold(strings.TrimSpace(id), s.svc.hostname) {
			s.svc.log.Logf("smtpd", "%s: removed Authentication-Results: header with our authserv-id %s from %s", s.txn.id, s.svc.hostname, s.client)
			edits = append(edits, contentEdit{off: f.off, n: f.n})
		}
	}
	return edits
}

// verifyMessage verifies the DKIM signatures, evaluates DMARC and returns
// the Authentication-Results: header; with postgate_dmarc_enforce, a
// refusal for p=reject, or hold for p=quarantine.
func (s *session) verifyMessage(content io.ReaderAt, size int64, head []headField) (header string, refuse *rules.Reply, hold bool) {
	a := s.svc.auth
	var results []string
	o, ok := s.checks.EvaluatedSPF()
	if !ok {
		o = s.svc.lists.SPF(s.ctx, s.request(""), &s.checks)
		s.logSPF()
	}
	spfRes := &authres.GenericResult{Method: "spf", Value: authres.ResultValue(o.Result), Params: map[string]string{}}
	if o.Identity == "helo" {
		spfRes.Params["smtp.helo"] = o.Helo
	} else {
		spfRes.Params["smtp.mailfrom"] = o.Sender
	}
	results = append(results, formatResult(spfRes))

	sigs, err := dkim.Verify(s.ctx, a.dns, io.NewSectionReader(content, 0, size))
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: %s: DKIM: %v", s.txn.id, err)
		sigs = []dkim.Result{{Value: dkim.PermError, Reason: err.Error()}}
	}
	var passed []string
	for _, v := range sigs {
		if v.Value == dkim.Pass {
			passed = append(passed, v.Domain)
		}
		results = append(results, formatResult(&authres.GenericResult{Method: "dkim", Value: authres.ResultValue(v.Value),
			Params: map[string]string{"reason": v.Reason, "header.d": v.Domain, "header.i": v.Identifier,
				"header.s": v.Selector, "header.a": v.Algorithm, "header.b": v.B}}))
	}
	if len(sigs) == 0 {
		results = append(results, "dkim=none")
	}

	d := s.dmarc(head, o.Domain, o.Result == "pass", passed)
	dm := formatResult(&authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(d.Value),
		Params: map[string]string{"reason": d.Problem, "header.from": d.Domain}})
	if d.Policy != "" {
		// opendmarc's comment: the policy published and what was done.
		dm = strings.Replace(dm, " ", fmt.Sprintf(" (p=%s dis=%s) ", d.Policy, d.Disposition), 1)
	}
	results = append(results, dm)
	value := s.svc.hostname + ";\r\n\t" + strings.Join(results, ";\r\n\t")
	s.svc.log.Logf("smtpd", "%s: Authentication-Results: %s", s.txn.id, printable(strings.ReplaceAll(value, "\r\n\t", " ")))
	if a.enforce {
		switch d.Disposition {
		case dmarc.PolicyReject:
			r := rules.Reply{Code: 550, DSN: "5.7.1", Text: "rejected by DMARC policy for " + d.Domain}
			s.logAction("reject", "END-OF-MESSAGE", fmt.Sprintf("%d %s %s", r.Code, r.DSN, r.Text), s.onlyRecipient())
			return "", &r, false
		case dmarc.PolicyQuarantine:
			s.logAction("hold", "END-OF-MESSAGE", "quarantined by DMARC policy for "+d.Domain, s.onlyRecipient())
			hold = true
		}
	}
	return "Authentication-Results: " + value + "\r\n", nil, hold
}

// dmarc evaluates DMARC for the message's From: domain: it must have one
// From: header whose addresses share one domain (RFC 7489 6.6.1).
func (s *session) dmarc(head []headField, spfDomain string, spfPass bool, dkimPass []string) dmarc.Result {
	var from string
	var problem string
	for _, f := range head {
		if !strings.EqualFold(f.name, "From") {
			continue
		}
		if from != "" || problem != "" {
			return dmarc.Result{Value: dmarc.PermError, Problem: "more than one From: header"}
		}
		addrs, err := mail.ParseAddressList(f.value)
		if err != nil {
			problem = "unparsable From: header"
			continue
		}
		for _, ad := range addrs {
			at := strings.LastIndexByte(ad.Address, '@')
			if at < 0 {
				return dmarc.Result{Value: dmarc.PermError, Problem: "a From: address without a domain"}
			}
			d := strings.ToLower(ad.Address[at+1:])
			if from != "" && d != from {
				return dmarc.Result{Value: dmarc.PermError, Problem: "From: addresses in more than one domain"}
			}
			from = d
		}
	}
	switch {
	case problem != "":
		return dmarc.Result{Value: dmarc.PermError, Problem: problem}
	case from == "":
		return dmarc.Result{Value: dmarc.PermError, Problem: "no From: domain"}
	}
	d := dmarc.Evaluate(s.ctx, s.svc.auth.dns, dmarc.Input{From: from, SPFDomain: spfDomain, SPFPass: spfPass, DKIM: dkimPass})
	if d.Problem != "" {
		s.svc.log.Logf("smtpd", "warning: %s: DMARC record of %s: %s", s.txn.id, from, d.Problem)
	}
	return d
}

// formatResult is one resinfo of an Authentication-Results: header
// ("method=result prop=value ..."), its empty properties left out.
func formatResult(r *authres.GenericResult) string {
	for k, v := range r.Params {
		if v == "" {
			delete(r.Params, k)
		}
	}
	return strings.TrimSpace(strings.TrimPrefix(authres.Format("", []authres.Result{r}), "; "))
}

// dkimSign signs the message of a signing client with the key the
// signing table gives for its From: address (the address, then its
// domain); no table entry: not signed. A refusal (4xx) when the entry or
// its key file is broken: the message must not leave unsigned.
func (s *session) dkimSign(content io.ReaderAt, size int64, head []headField) (string, *rules.Reply) {
	a := s.svc.auth
	var addr string
	var names []string
	for _, f := range head {
		names = append(names, f.name)
		if strings.EqualFold(f.name, "From") && addr == "" {
			if ad, err := mail.ParseAddress(f.value); err == nil {
				addr = strings.ToLower(ad.Address)
			}
		}
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", nil
	}
	tempfail := &rules.Reply{Code: 451, DSN: "4.7.1", Text: "Service unavailable - try again later"}
	var value string
	var found bool
	for _, key := range []string{addr, addr[at+1:]} {
		for _, t := range a.signing {
			v, ok, err := t.Lookup(s.ctx, key)
			if err != nil {
				s.svc.log.Logf("smtpd", "warning: %s: postgate_dkim_signing_table lookup problem for %s: %v", s.txn.id, key, err)
				return "", tempfail
			}
			if ok {
				value, found = v, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return "", nil
	}
	key, err := dkim.ParseKey(value)
	var signer crypto.Signer
	if err == nil {
		signer, err = a.keys.Signer(key.File)
	}
	var sig string
	if err == nil {
		sig, err = dkim.Sign(io.NewSectionReader(content, 0, size), key, signer, dkim.SignedHeaders(names, a.signHeaders))
	}
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: %s: DKIM signing for %s: postgate_dkim_signing_table: %v", s.txn.id, addr, err)
		return "", tempfail
	}
	s.svc.log.Logf("smtpd", "%s: DKIM-Signature field added (s=%s, d=%s)", s.txn.id, key.Selector, key.Domain)
	return sig, nil
}
