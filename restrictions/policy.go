package restrictions

import (
	"net/netip"
	"strconv"
	"sync"

	"postgate/policyd"
	"postgate/rules"
)

// policyClients holds one policyd.Client per check_policy_service
// argument, as Postfix keeps one per server name: the restriction lists
// and the access table values that name it share its connections.
type policyClients struct {
	mu sync.Mutex
	m  map[string]*policyd.Client
}

// policyClient returns the client of spec, made on first use. The spec was
// validated by checkArg.
func (l *Lists) policyClient(spec string) *policyd.Client {
	l.policy.mu.Lock()
	defer l.policy.mu.Unlock()
	if c := l.policy.m[spec]; c != nil {
		return c
	}
	c, err := policyd.New(spec, l.opts.Policy)
	if err != nil {
		panic("restrictions: policy service not checked: " + err.Error())
	}
	if l.policy.m == nil {
		l.policy.m = map[string]*policyd.Client{}
	}
	l.policy.m[spec] = c
	return c
}

// buildCheckPolicyService: check_policy_service server. The reply's
// action is evaluated as an access table value; when the server fails,
// the service's default_action is, and when evaluating that calls a
// policy service that fails too, Postfix's built-in default (no
// recursion), as smtpd_check.c check_policy_service.
func buildCheckPolicyService(c *compiler, _, arg string, _ *tableRef) runFunc {
	client := c.l.policyClient(arg)
	tr := &tableRef{spec: arg}
	return func(e *eval) status {
		action, ok := client.Query(e.ctx, e.policyRequest(), func(w string) { e.warning("%s", w) })
		if ok {
			return e.accessResult(tr, action, "policy query", e.replyName, e.replyClass)
		}
		action = client.DefaultAction()
		if e.policyDefault {
			action = policyd.DefaultAction
		}
		saved := e.policyDefault
		e.policyDefault = true
		st := e.accessResult(tr, action, "policy query", e.replyName, e.replyClass)
		e.policyDefault = saved
		return st
	}
}

// policyRequest is what the policy server is told at this stage, as
// Postfix's smtpd fills it (postfix-semantics §6.3).
func (e *eval) policyRequest() *policyd.Request {
	r := e.req
	state := e.stage.String()
	if r.ProtocolState != "" {
		state = r.ProtocolState
	}
	rcpt, count, stress := "", int64(0), ""
	if r.Stress {
		stress = "yes"
	}
	if e.hasRecipient {
		rcpt = e.recipient
	}
	if e.stage == Data || e.stage == EndOfData {
		count = int64(r.RecipientCount)
	}
	req := &policyd.Request{
		ProtocolState:     state,
		ProtocolName:      r.Proto,
		ClientAddress:     r.addr(),
		ClientName:        r.clientName(),
		ClientPort:        port(r.ClientPort),
		ReverseClientName: r.reverseName(),
		ServerAddress:     addrString(r.ServerAddr),
		ServerPort:        port(r.ServerPort),
		HeloName:          r.Helo,
		Sender:            r.Sender,
		Recipient:         rcpt,
		RecipientCount:    count,
		QueueID:           r.QueueID,
		Instance:          r.Instance,
		Size:              r.Size,
		EtrnDomain:        r.EtrnDomain,
		Stress:            stress,
		SASLUsername:      r.SASLUser,
		SASLMethod:        r.SASLMethod,
	}
	if t := r.TLS; t != nil {
		// As Postfix, the certificate's names only when it is trusted;
		// its fingerprints whenever there is one.
		if t.CertTrusted {
			req.CcertSubject, req.CcertIssuer = rules.Xtext(t.PeerCN), rules.Xtext(t.IssuerCN)
		}
		req.CcertFingerprint, req.CcertPubkeyFprint = t.CertFingerprint, t.PkeyFingerprint
		req.EncryptionProto, req.EncryptionCipher, req.EncryptionKeysize = t.Protocol, t.Cipher, int64(t.Bits)
	}
	return req
}

// port is a port as Postfix writes it: "unknown" when there is none.
func port(p int) string {
	if p == 0 {
		return "unknown"
	}
	return strconv.Itoa(p)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().WithZone("").String()
}
