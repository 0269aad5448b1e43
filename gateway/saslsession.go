package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"postgate/gateway/command"
	"postgate/gateway/config"
	"postgate/gateway/sasl"
	"postgate/rules"
)

// saslSettings are a service's SMTP AUTH settings (smtpd_sasl_*).
type saslSettings struct {
	backend       sasl.Backend // nil: AUTH is not enabled
	service       string       // smtpd_sasl_service
	security      []string     // smtpd_sasl_security_options
	tlsSecurity   []string     // smtpd_sasl_tls_security_options
	brokenClients bool         // broken_sasl_auth_clients: also AUTH=
	responseLimit int          // smtpd_sasl_response_limit
}

func newSASLSettings(cfg *config.Config) (saslSettings, error) {
	st := saslSettings{
		service:       cfg.Get("smtpd_sasl_service"),
		security:      cfg.List("smtpd_sasl_security_options"),
		tlsSecurity:   cfg.List("smtpd_sasl_tls_security_options"),
		brokenClients: cfg.Bool("broken_sasl_auth_clients"),
		responseLimit: int(cfg.Int("smtpd_sasl_response_limit")),
	}
	if !cfg.Bool("smtpd_sasl_auth_enable") {
		return st, nil
	}
	b, err := sasl.Open(sasl.Options{Type: cfg.Get("smtpd_sasl_type"), Path: cfg.Get("smtpd_sasl_path"), QueueDir: cfg.Get("queue_directory")})
	if err != nil {
		param := "smtpd_sasl_type"
		if strings.Contains(err.Error(), "smtpd_sasl_path") || strings.Contains(err.Error(), "password file") {
			param = "smtpd_sasl_path"
		}
		return st, paramError(cfg, param, err)
	}
	st.backend = b
	return st, nil
}

// saslTimeout bounds the mechanism list lookup done for EHLO.
const saslTimeout = 10 * time.Second

// authMechanisms is what AUTH offers this session: the backend's list,
// filtered by the security options in force (smtpd_sasl_security_options,
// or the TLS ones once TLS is on): noanonymous drops ANONYMOUS,
// noplaintext PLAIN and LOGIN. Empty when AUTH is not offered.
func (s *session) authMechanisms() []string {
	st := &s.svc.sasl
	if st.backend == nil || s.ehloMask&ehloAuth != 0 || (s.svc.tlsAuthOnly && !s.tlsActive()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, saslTimeout)
	defer cancel()
	mechs, err := st.backend.Mechanisms(ctx)
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: SASL: %v", err)
		return nil
	}
	opts := st.security
	if s.tlsActive() {
		opts = st.tlsSecurity
	}
	var out []string
	for _, m := range mechs {
		switch {
		case m == "ANONYMOUS" && slices.Contains(opts, "noanonymous"):
		case (m == "PLAIN" || m == "LOGIN") && slices.Contains(opts, "noplaintext"):
		default:
			out = append(out, m)
		}
	}
	return out
}

// authKeywords are the EHLO lines for AUTH: "AUTH PLAIN LOGIN", and
// "AUTH=PLAIN LOGIN" for clients that want the old form.
func (s *session) authKeywords() []string {
	mechs := s.authMechanisms()
	if len(mechs) == 0 {
		return nil
	}
	list := strings.Join(mechs, " ")
	out := []string{"AUTH " + list}
	if s.svc.sasl.brokenClients {
		out = append(out, "AUTH="+list)
	}
	return out
}

// auth is the AUTH command, answered as Postfix's smtpd_sasl_auth_cmd.
func (s *session) auth(args []command.Token) bool {
	if s.authRateLimited() {
		return false
	}
	st := &s.svc.sasl
	switch {
	case s.svc.heloRequired && s.helo == "":
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: send HELO/EHLO first"})
		return false
	case st.backend == nil || s.ehloMask&ehloAuth != 0:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: authentication not enabled"})
		return false
	case s.txn.active:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: MAIL transaction in progress"})
		return false
	case s.svc.tlsAuthOnly && !s.tlsActive():
		s.reply(rules.Reply{Code: 504, DSN: "5.5.4", Text: "Encryption required for requested authentication mechanism"})
		return false
	case s.saslUser != "":
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: already authenticated"})
		return false
	case len(args) < 2 || len(args) > 3:
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: AUTH mechanism"})
		return false
	}
	mech := strings.ToUpper(args[1].Text)
	initial := ""
	if len(args) == 3 {
		initial = args[2].Text
		if initial == "=" { // RFC 4954: an empty initial response
			initial = ""
		}
	}
	if s.saslServer == nil {
		local, _ := addrPort(s.nc.LocalAddr())
		s.saslServer = st.backend.NewServer(sasl.Session{Service: st.service, LocalAddr: local.String(),
			RemoteAddr: s.client.address(), Secured: s.tlsActive()})
	}
	if !slices.Contains(s.authMechanisms(), mech) {
		return s.authResult(mech, sasl.Step{Status: sasl.Fail, Reason: "Invalid authentication mechanism"})
	}
	return s.authResult(mech, s.saslServer.Start(s.ctx, mech, initial))
}

// authResponse takes a client line during an exchange: the response to
// the last 334 challenge, or "*" to give up.
func (s *session) authResponse(line string) {
	mech := s.saslMech
	s.saslMech = ""
	ok := false
	switch {
	case len(line) > s.svc.sasl.responseLimit:
		s.reply(rules.Reply{Code: 500, DSN: "5.5.6", Text: "SASL response limit exceeded"})
	case line == "*":
		s.svc.log.Logf("smtpd", "warning: %s: SASL %s authentication aborted", s.client, mech)
		s.reply(rules.Reply{Code: 501, DSN: "5.7.0", Text: "Authentication aborted"})
	default:
		ok = s.authResult(mech, s.saslServer.Next(s.ctx, line))
	}
	if !ok && s.saslMech == "" {
		s.errors++
	}
}

// authResult answers a step: the next challenge, or the outcome.
func (s *session) authResult(mech string, step sasl.Step) bool {
	switch step.Status {
	case sasl.More:
		s.saslMech = mech
		s.reply(rules.Reply{Code: 334, Text: step.Challenge})
		return true
	case sasl.Done:
		s.saslUser, s.saslMethod = printable(step.Username), mech
		s.reply(rules.Reply{Code: 235, DSN: "2.7.0", Text: "Authentication successful"})
		return true
	}
	reason := step.Reason
	if reason == "" {
		reason = "(reason unavailable)"
	}
	user := step.Username
	if user == "" {
		user = "(unavailable)"
	}
	s.svc.log.Logf("smtpd", "warning: %s: SASL %.100s authentication failed: %s, sasl_username=%.100s", s.client, mech, reason, user)
	if step.Status == sasl.Temp {
		s.reply(rules.Reply{Code: 454, DSN: "4.7.0", Text: "Temporary authentication failure: " + reason})
	} else {
		s.reply(rules.Reply{Code: 535, DSN: "5.7.8", Text: "Error: authentication failed: " + reason})
	}
	return false
}

// saslLog is the ", sasl_method=..., sasl_username=..." of the client=
// log line, as Postfix writes it for an authenticated session.
func (s *session) saslLog() string {
	if s.saslUser == "" {
		return ""
	}
	return fmt.Sprintf(", sasl_method=%s, sasl_username=%s", s.saslMethod, s.saslUser)
}

// tlsActive: the session runs over TLS.
func (s *session) tlsActive() bool { return s.tls != nil }
