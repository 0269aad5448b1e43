package gateway

import (
	"fmt"
	"strings"

	"postgate/gateway/config"
	"postgate/queue"
	"postgate/rules"
	"postgate/rules/route"
)

// Automatic BCC recipients, as Postfix's cleanup adds them when a message
// is queued: sender_bcc_maps looked up with the (canonical) envelope
// sender, recipient_bcc_maps with each (canonical) recipient, and
// always_bcc for any message that has recipients. Lookups are
// mail_addr_find's (the address, then without its recipient_delimiter
// extension, the local part for a local domain, then @domain). Each copy
// goes through recipient canonical mapping and then virtual aliasing like
// any recipient, and asks for no delivery notices (NOTIFY=NEVER).
// receive_override_options = no_address_mappings turns it off.

// autoBCC is one service's automatic BCC settings.
type autoBCC struct {
	sender, recipient []rules.Table
	always            string
}

func newAutoBCC(cfg *config.Config, tables *tableCache) (autoBCC, error) {
	var b autoBCC
	var err error
	if b.sender, err = openMaps(cfg, "sender_bcc_maps", tables); err != nil {
		return b, err
	}
	if b.recipient, err = openMaps(cfg, "recipient_bcc_maps", tables); err != nil {
		return b, err
	}
	b.always = cfg.Get("always_bcc")
	return b, nil
}

// addAutoBCC appends the automatic BCC recipients to env, whose sender and
// recipients are already canonical. A lookup failure is an error: the
// message is not accepted (Postfix's "map lookup problem").
func (s *session) addAutoBCC(env *queue.Envelope, warn func(string, ...any)) error {
	b := &s.svc.bcc
	var bcc []string
	if env.Sender != "" && len(b.sender) > 0 {
		a, err := s.findBCC(b.sender, env.Sender)
		if err != nil {
			return fmt.Errorf("sender_bcc_maps map lookup problem: %w", err)
		}
		bcc = append(bcc, a...)
	}
	if len(b.recipient) > 0 {
		for _, r := range env.Recipients {
			a, err := s.findBCC(b.recipient, r.Addr)
			if err != nil {
				return fmt.Errorf("recipient_bcc_maps map lookup problem: %w", err)
			}
			bcc = append(bcc, a...)
		}
	}
	if b.always != "" && len(env.Recipients) > 0 {
		bcc = append(bcc, b.always)
	}
	c := s.svc.canonical
	for _, a := range bcc {
		if !strings.Contains(a, "@") {
			a += "@" + c.myorigin // the local rewriting context
		}
		a, err := c.rewriteRecipient(s.ctx, a, warn)
		if err != nil {
			return err
		}
		env.Recipients = append(env.Recipients, queue.Recipient{Addr: a, Notify: "NEVER"})
	}
	return nil
}

// findBCC looks addr up in tables as Postfix's mail_addr_find: nil when
// it is not found.
func (s *session) findBCC(tables []rules.Table, addr string) ([]string, error) {
	res, err := s.svc.route.Resolve(s.ctx, addr)
	if err != nil {
		return nil, err
	}
	value, _, found, err := rules.FindAddress(s.ctx, tables, addr, res.Class == route.Local, s.svc.canonical.delims)
	if err != nil || !found {
		return nil, err
	}
	if value = strings.TrimSpace(value); value == "" {
		return nil, nil
	}
	return []string{value}, nil
}
