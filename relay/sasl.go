package relay

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// SASLOptions configure SMTP AUTH as a client (smtp_sasl_*), as Postfix's
// smtp does it with its Cyrus library, for the two mechanisms postgate
// has: PLAIN and LOGIN.
type SASLOptions struct {
	// Password looks one key up in smtp_sasl_password_maps, where a value
	// is "username:password". nil: AUTH is never used
	// (smtp_sasl_auth_enable = no).
	Password func(ctx context.Context, key string) (value string, found bool, err error)
	// SenderPassword, when set (smtp_sender_dependent_authentication),
	// looks the envelope sender up first, as Postfix's mail_addr_find
	// does: the address, without its extension, then @domain.
	SenderPassword func(ctx context.Context, sender string) (value string, found bool, err error)
	// Security, TLSSecurity and TLSVerifiedSecurity are
	// smtp_sasl_security_options (clear text),
	// smtp_sasl_tls_security_options (inside TLS) and
	// smtp_sasl_tls_verified_security_options (inside TLS with the
	// server's certificate verified and matched), from ParseSASLSecurity.
	Security, TLSSecurity, TLSVerifiedSecurity SASLSecurity
	// MechanismFilter is smtp_sasl_mechanism_filter: the server's
	// mechanisms are kept when one of these names (any case) matches; a
	// "!name" excludes. Empty keeps all.
	MechanismFilter []string
	// SoftBounce is smtp_sasl_auth_soft_bounce: a 5xx reply to AUTH
	// defers (4.x.x) instead of bouncing.
	SoftBounce bool
}

// SASLSecurity is a set of Cyrus SASL security options. PLAIN and LOGIN
// send the password as it is, so every option but noanonymous rules them
// out, as in Cyrus, where a mechanism must have every property asked for.
type SASLSecurity struct {
	excludesPlaintext string // the option that rules PLAIN and LOGIN out, or ""
}

// ParseSASLSecurity reads a security option list (noplaintext,
// noanonymous, noactive, nodictionary, mutual_auth, forward_secrecy).
func ParseSASLSecurity(opts []string) (SASLSecurity, error) {
	var s SASLSecurity
	for _, o := range opts {
		switch lo := strings.ToLower(o); lo {
		case "noanonymous":
		case "noplaintext", "noactive", "nodictionary", "mutual_auth", "forward_secrecy":
			if s.excludesPlaintext == "" {
				s.excludesPlaintext = lo
			}
		default:
			return s, fmt.Errorf("unknown SASL security option %q", o)
		}
	}
	return s, nil
}

// noteAUTH notes the mechanisms of an EHLO AUTH line, filtered by
// smtp_sasl_mechanism_filter; several AUTH lines add up, as in Postfix's
// smtp_sasl_helo_auth.
func (s *session) noteAUTH(mechs []string) {
	o := &s.opts.SASL
	if o.Password == nil {
		return
	}
	s.authOffered = true
	kept := 0
	for _, m := range mechs {
		m = strings.ToUpper(m)
		if mechanismAllowed(o.MechanismFilter, m) {
			kept++
			if !slices.Contains(s.authMechs, m) {
				s.authMechs = append(s.authMechs, m)
			}
		}
	}
	if kept == 0 && len(s.authMechs) == 0 {
		if len(mechs) > 0 {
			s.opts.logf("warning: %s offered no supported AUTH mechanisms: '%s'", s.namaddrport, strings.Join(mechs, " "))
		} else {
			s.opts.logf("warning: %s offered null AUTH mechanism list", s.namaddrport)
		}
	}
}

// mechanismAllowed applies smtp_sasl_mechanism_filter to a mechanism.
func mechanismAllowed(filter []string, mech string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		neg := strings.HasPrefix(f, "!")
		if strings.EqualFold(strings.TrimPrefix(f, "!"), mech) {
			return !neg
		}
	}
	return false
}

// saslCredentials finds the login for srv: by the envelope sender with
// sender-dependent authentication, then by the server's host name, then
// by the next-hop destination as written ("[host]:port"), as Postfix's
// smtp_sasl_passwd_lookup. An error is a failed table lookup.
func (d *delivery) saslCredentials(srv server) (user, pass string, found bool, err error) {
	o := &d.t.opts.SASL
	if o.Password == nil {
		return "", "", false, nil
	}
	type lookup struct {
		find func(context.Context, string) (string, bool, error)
		key  string
	}
	var keys []lookup
	if o.SenderPassword != nil && d.m.Sender != "" {
		keys = append(keys, lookup{o.SenderPassword, d.m.Sender})
	}
	keys = append(keys, lookup{o.Password, srv.host}, lookup{o.Password, srv.dest})
	for _, k := range keys {
		v, ok, err := k.find(d.ctx, k.key)
		if err != nil || ok {
			user, pass, _ = strings.Cut(v, ":")
			return user, pass, ok, err
		}
	}
	return "", "", false, nil
}

// plaintextRetryOK says whether a session to srv whose opportunistic TLS
// handshake failed may be tried again in clear text: not when a login
// exists for it, as a server that offers AUTH only inside TLS would then
// refuse to relay (Postfix's PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE).
func (d *delivery) plaintextRetryOK(srv server) bool {
	_, _, found, err := d.saslCredentials(srv)
	return err == nil && !found
}

// login authenticates when the server offered AUTH and a login exists
// for it (smtp_sasl_helo_login); with no login the session goes on as
// strangers do. A failure ends the session (the caller says QUIT).
func (d *delivery) login(s *session, srv server) *failure {
	if !s.authOffered {
		return nil
	}
	user, pass, found, err := d.saslCredentials(srv)
	if err != nil {
		d.t.logf("", fmt.Sprintf("warning: %s: smtp_sasl_password_maps lookup error", d.m.QueueID))
		d.stop = true
		return softFail("4.3.0", "local data error while talking to %s", s.namaddr)
	}
	if !found {
		return nil
	}
	if len(s.authMechs) == 0 {
		return softFail("4.7.0", "SASL authentication failed: server %s offered no compatible authentication mechanisms for this type of connection security", s.namaddr)
	}
	sec := d.t.opts.SASL.Security
	switch {
	case s.certMatched:
		sec = d.t.opts.SASL.TLSVerifiedSecurity
	case s.inTLS:
		sec = d.t.opts.SASL.TLSSecurity
	}
	mech := ""
	if sec.excludesPlaintext == "" {
		for _, m := range []string{"PLAIN", "LOGIN"} {
			if slices.Contains(s.authMechs, m) {
				mech = m
				break
			}
		}
	}
	if mech == "" {
		return softFail("4.7.0", "SASL authentication failed; cannot authenticate to server %s: no mechanism available", s.namaddr)
	}
	// PLAIN sends everything at once; LOGIN answers the server's two
	// prompts with the user name, then the password.
	var steps []string
	if mech == "PLAIN" {
		steps = []string{"\x00" + user + "\x00" + pass}
	} else {
		steps = []string{user, pass}
	}
	cmd := "AUTH " + mech
	var pending []string // responses that wait for a challenge
	if mech == "PLAIN" {
		// An initial response that would make the command longer than
		// 512 bytes waits for an empty challenge (RFC 4954).
		if resp := base64.StdEncoding.EncodeToString([]byte(steps[0])); len(mech)+len(resp)+8 <= 512 {
			cmd += " " + resp
		} else {
			pending = steps
		}
	} else {
		pending = steps
	}
	r, err := s.command(stageEHLO, cmd)
	for err == nil && r.code/100 == 3 {
		if len(pending) == 0 {
			// A challenge the mechanism has no answer for: the server
			// waits for a response, so the session ends without QUIT.
			s.broken = true
			return softFail("4.7.0", "SASL authentication failed; cannot authenticate to server %s: protocol error", s.namaddr)
		}
		r, err = s.command(stageEHLO, base64.StdEncoding.EncodeToString([]byte(pending[0])))
		pending = pending[1:]
	}
	if err != nil {
		return s.ioFailure(d.ctx, stageEHLO, err)
	}
	if r.code/100 != 2 {
		f := replyFailure(r, "SASL authentication failed; server %s said: %s", s.namaddr, r.line())
		if f.status == Bounced && d.t.opts.SASL.SoftBounce {
			f.status, f.dsn = Deferred, "4"+f.dsn[1:]
		}
		return f
	}
	return nil
}
