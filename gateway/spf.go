package gateway

// appendReceivedSPF appends the Received-SPF: header of the transaction's
// SPF outcome (as policyd-spf prepends it) as postgate_spf_received_header
// says: "yes" when a restriction evaluated SPF, "always" (evaluating it
// here if no restriction did), "no" never.
func (s *session) appendReceivedSPF(b []byte) []byte {
	o, ok := s.checks.EvaluatedSPF()
	switch s.svc.spfHeader {
	case "no":
		return b
	case "always":
		if !ok {
			o, ok = s.svc.lists.SPF(s.ctx, s.request(""), &s.checks), true
			s.logSPF()
		}
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
