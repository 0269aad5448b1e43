package restrictions

import (
	"strings"

	"postgate/rules"
	"postgate/rules/route"
)

// The sender login checks (Postfix's reject_*_sender_login_mismatch):
// smtpd_sender_login_maps says which SASL login names own a sender
// address; a client that logged in may send only as addresses its login
// owns, and an address that has an owner only from a client logged in.
// reject_sender_login_mismatch is both. Without smtpd_sasl_auth_enable
// they do nothing but warn, as in Postfix.

type loginCheck int

const (
	loginAuthenticated   loginCheck = 1 << iota // a logged-in client must own the sender
	loginUnauthenticated                        // an owned sender needs a login
	loginKnownOnly                              // (authenticated) an unowned sender passes
)

func buildSenderLogin(check loginCheck) builder {
	return func(_ *compiler, name, _ string, _ *tableRef) runFunc {
		return func(e *eval) status {
			if !e.l.opts.SASLEnabled {
				e.warning("restriction `%s' ignored: no SASL support", name)
				return dunno
			}
			if !e.hasSender || e.req.Sender == "" {
				return dunno
			}
			if e.req.SASLUser != "" && check&loginAuthenticated != 0 {
				return e.senderOwned(check&loginKnownOnly != 0)
			}
			if e.req.SASLUser == "" && check&loginUnauthenticated != 0 {
				return e.senderNeedsLogin()
			}
			return dunno
		}
	}
}

// senderOwners looks the sender up in smtpd_sender_login_maps, as
// Postfix's mail_addr_find: the address, its local part when the domain
// is local, then @domain.
func (e *eval) senderOwners() (owners string, found bool, st status) {
	maps := e.l.opts.SenderLoginMaps
	if len(maps) == 0 {
		return "", false, dunno
	}
	r, err := e.resolve(e.req.Sender)
	if err != nil {
		e.warning("%s: %v", e.req.Sender, err)
		return "", false, e.dictRetry(e.req.Sender)
	}
	owners, _, found, err = rules.FindAddress(e.ctx, maps, r.addr, r.class == route.Local, e.l.opts.RecipientDelimiter)
	if err != nil {
		e.warning("smtpd_sender_login_maps: %s: %v", e.req.Sender, err)
		return "", false, e.dictRetry(e.req.Sender)
	}
	return owners, found, dunno
}

func (e *eval) senderOwned(allowUnknown bool) status {
	if len(e.l.opts.SenderLoginMaps) == 0 {
		return dunno
	}
	owners, found, st := e.senderOwners()
	if st != dunno {
		return st
	}
	if !found && allowUnknown {
		return dunno
	}
	for _, name := range strings.FieldsFunc(owners, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if strings.EqualFold(name, e.req.SASLUser) {
			return dunno
		}
	}
	return e.reject(classPolicy, 553, "5.7.1", "<"+e.req.Sender+">: Sender address rejected: not owned by user "+e.req.SASLUser)
}

func (e *eval) senderNeedsLogin() status {
	_, found, st := e.senderOwners()
	if st != dunno || !found {
		return st
	}
	return e.reject(classPolicy, 553, "5.7.1", "<"+e.req.Sender+">: Sender address rejected: not logged in")
}
