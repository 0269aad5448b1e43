package server

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"postgate/policyd"
	"postgate/restrictions"
	"postgate/rules"
)

// stages maps protocol_state to the stage whose semantics the list gets.
// BDAT is sent as DATA by Postfix; VRFY is checked as a recipient.
var stages = map[string]restrictions.Stage{
	"CONNECT": restrictions.Connect, "EHLO": restrictions.Ehlo, "HELO": restrictions.Helo,
	"MAIL": restrictions.Mail, "RCPT": restrictions.Rcpt, "VRFY": restrictions.Rcpt,
	"DATA": restrictions.Data, "BDAT": restrictions.Data, "END-OF-MESSAGE": restrictions.EndOfData,
	"ETRN": restrictions.Etrn,
}

// answer is the action for one request: the list's verdict in the access
// action language Postfix evaluates it in (postfix-semantics §6.5).
func (s *Server) answer(ctx context.Context, kind string, pr *policyd.Request) string {
	if kind != policyd.RequestType {
		s.o.Logf("warning: unsupported request type %q: answering DUNNO", kind)
		return "DUNNO"
	}
	stage, ok := stages[pr.ProtocolState]
	if !ok {
		s.o.Logf("warning: unknown protocol_state %q: answering DUNNO", pr.ProtocolState)
		return "DUNNO"
	}
	v := s.o.Lists.CheckClass(ctx, stage, s.o.Class, request(pr))
	s.log(pr, v.Log)
	action, dropped := actionOf(v)
	for _, e := range dropped {
		s.o.Logf("warning: %s: one action per answer: %s is not passed on", clientOf(pr), e)
	}
	return action
}

// actionOf turns a verdict into one action (a policy answer carries one):
// a reject's code, DSN and reason (Postfix adds its own "<name>: <class>
// rejected: "), a pending defer_if_permit, the first side effect (HOLD,
// PREPEND, ...), OK, a pending defer_if_reject, or DUNNO. dropped lists
// side effects that did not fit.
func actionOf(v restrictions.PolicyVerdict) (action string, dropped []string) {
	effects := make([]string, len(v.Effects))
	for i, e := range v.Effects {
		effects[i] = strings.TrimSpace(e.Action.String() + " " + e.Arg + e.Text)
	}
	switch {
	case v.Decision == restrictions.Reject:
		return fmt.Sprintf("%d %s %s", v.Reply.Code, v.Reply.DSN, v.Reason), effects
	case v.DeferIfPermit != nil:
		return deferral("DEFER_IF_PERMIT", v.DeferIfPermit), effects
	case len(effects) > 0:
		return effects[0], effects[1:]
	case v.Decision == restrictions.Permit:
		return "OK", nil
	case v.DeferIfReject != nil:
		return deferral("DEFER_IF_REJECT", v.DeferIfReject), nil
	}
	return "DUNNO", nil
}

func deferral(keyword string, r *rules.Reply) string {
	return keyword + " " + r.DSN + " " + r.Text
}

// request is what the restrictions see of a policy request. Postfix does
// not say why a client name is unknown: no name counts as a permanent
// failure, a reverse name that did not verify as forged.
func request(pr *policyd.Request) *restrictions.Request {
	addr, _ := netip.ParseAddr(pr.ClientAddress)
	server, _ := netip.ParseAddr(pr.ServerAddress)
	r := &restrictions.Request{
		ClientAddr:     addr,
		PeerAddr:       addr,
		ClientName:     pr.ClientName,
		ReverseName:    pr.ReverseClientName,
		Helo:           pr.HeloName,
		Proto:          pr.ProtocolName,
		Sender:         pr.Sender,
		Recipient:      pr.Recipient,
		SASLUser:       pr.SASLUsername,
		EtrnDomain:     pr.EtrnDomain,
		RecipientCount: int(pr.RecipientCount),
		ClientPort:     atoi(pr.ClientPort),
		ServerAddr:     server,
		ServerPort:     atoi(pr.ServerPort),
		QueueID:        pr.QueueID,
		Instance:       pr.Instance,
		Size:           pr.Size,
		Stress:         pr.Stress == "yes",
		Macros:         macros(pr),
	}
	if pr.ProtocolState == "VRFY" {
		r.ProtocolState = "VRFY"
	}
	unknown := func(name string) bool { return name == "" || strings.EqualFold(name, "unknown") }
	switch {
	case unknown(pr.ReverseClientName):
		r.ReverseNameStatus, r.ClientNameStatus = restrictions.PeerPerm, restrictions.PeerPerm
	case unknown(pr.ClientName):
		r.ClientNameStatus = restrictions.PeerForged
	}
	return r
}

// atoi is a port, 0 when unknown.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// macros gives reply templates (default_rbl_reply) the request's values
// under smtpd's names.
func macros(pr *policyd.Request) func(string) string {
	return func(name string) string {
		switch name {
		case "client":
			return clientOf(pr)
		case "client_address":
			return pr.ClientAddress
		case "client_name":
			return pr.ClientName
		case "reverse_client_name":
			return pr.ReverseClientName
		case "client_port":
			return pr.ClientPort
		case "helo_name":
			return pr.HeloName
		case "sender":
			return pr.Sender
		case "recipient":
			return pr.Recipient
		}
		return ""
	}
}

// clientOf is Postfix's "name[address]".
func clientOf(pr *policyd.Request) string {
	name := pr.ClientName
	if name == "" {
		name = "unknown"
	}
	return name + "[" + pr.ClientAddress + "]"
}

// log writes the verdict's lines as postgate's smtpd writes them ("NOQUEUE:
// reject: RCPT from ...; from=<..> to=<..> proto=.. helo=<..>"), so the
// same greps find them.
func (s *Server) log(pr *policyd.Request, events []restrictions.LogEvent) {
	for _, e := range events {
		switch e.Kind {
		case restrictions.LogAction:
			id := pr.QueueID
			if id == "" {
				id = "NOQUEUE"
			}
			s.o.Logf("%s: %s: %s from %s: %s;%s", id, e.What, pr.ProtocolState, clientOf(pr), e.Text, logContext(pr))
		case restrictions.LogWarning:
			s.o.Logf("warning: %s", e.Text)
		default:
			s.o.Logf("%s", e.Text)
		}
	}
}

// logContext is the " from=<..> to=<..> proto=.. helo=<..>" of a line.
func logContext(pr *policyd.Request) string {
	var b strings.Builder
	switch pr.ProtocolState {
	case "MAIL", "RCPT", "DATA", "BDAT", "END-OF-MESSAGE":
		b.WriteString(" from=<" + pr.Sender + ">")
	}
	if pr.Recipient != "" {
		b.WriteString(" to=<" + pr.Recipient + ">")
	}
	b.WriteString(" proto=" + pr.ProtocolName)
	if pr.HeloName != "" {
		b.WriteString(" helo=<" + pr.HeloName + ">")
	}
	return b.String()
}
