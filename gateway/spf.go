package gateway

// postgate_spf_received_header values.
const (
	spfHeaderNo     = "no"     // never
	spfHeaderYes    = "yes"    // when a restriction evaluated SPF
	spfHeaderAlways = "always" // evaluate SPF for every message, for the header
)

// appendReceivedSPF appends the Received-SPF: header of the transaction's
// SPF outcome (as policyd-spf prepends it) when postgate_spf_received_header
// asks for it: with "always" it evaluates SPF here if no restriction did.
func (s *session) appendReceivedSPF(b []byte) []byte {
	o, ok := s.checks.EvaluatedSPF()
	switch {
	case s.svc.spfHeader == spfHeaderAlways && !ok:
		o, ok = s.svc.lists.SPF(s.ctx, s.request(""), &s.checks), true
		s.logSPF()
	case s.svc.spfHeader == spfHeaderNo:
		return b
	}
	if !ok {
		return b
	}
	return append(b, "Received-SPF: "+o.HeaderValue(s.svc.hostname)+"\r\n"...)
}

// logSPF writes the transaction's SPF outcome to the mail log once, after
// the check that evaluated it: the Received-SPF: value, and why for
// temperror and permerror.
func (s *session) logSPF() {
	o, ok := s.checks.EvaluatedSPF()
	if !ok || s.txn.spfLogged {
		return
	}
	s.txn.spfLogged = true
	problem := ""
	if o.Problem != "" {
		problem = "; problem=" + printable(o.Problem)
	}
	s.svc.log.Logf("smtpd", "%s: Received-SPF: %s%s", s.idOrNoqueue(), printable(o.HeaderValue(s.svc.hostname)), problem)
}
