package gateway

import (
	"strconv"
	"strings"
	"time"

	"postgate/gateway/config"
	"postgate/rules"
)

// withFooter adds the reject footer to a 4xx or 5xx reply, as Postfix's
// smtp_reply_footer: the footer from smtpd_reject_footer_maps (looked up
// with the reply) or smtpd_reject_footer, its $name macros expanded with
// the session's values, each "\n" in it starting a new reply line, a
// leading "\c" continuing the last line instead.
func (s *session) withFooter(r rules.Reply) rules.Reply {
	footer := s.svc.rejectFooter
	for _, t := range s.svc.rejectFooterMaps {
		v, ok, err := t.Lookup(s.ctx, r.String())
		if err != nil {
			s.svc.log.Logf("smtpd", "warning: smtpd_reject_footer_maps: %v", err)
			break
		}
		if ok {
			footer = v
			break
		}
	}
	if footer == "" {
		return r
	}
	parts := strings.Split(footer, `\n`)
	var lines []string
	for i, p := range parts {
		text, err := config.ExpandRequest(p, s.footerValue)
		if err != nil {
			s.svc.log.Logf("smtpd", "warning: smtpd_reject_footer: %v", err)
			return r
		}
		if i == 0 && strings.HasPrefix(text, `\c`) {
			r.Text += text[2:]
			continue
		}
		lines = append(lines, text)
	}
	if len(lines) > 0 {
		r.Text += "\n" + strings.Join(lines, "\n")
	}
	return r
}

// footerValue is Postfix's smtpd_expand_lookup: the session values a
// footer may use (never main.cf parameters, which could leak internals).
func (s *session) footerValue(name string) string {
	switch name {
	case "server_name":
		return s.svc.hostname
	case "client":
		return s.client.String()
	case "client_address":
		return s.client.address()
	case "client_port":
		return strconv.Itoa(s.client.port)
	case "client_name", "reverse_client_name":
		return s.client.name
	case "helo_name":
		return s.helo
	case "localtime":
		return time.Now().Format("Jan 02 15:04:05")
	}
	for _, pre := range []string{"sender", "recipient"} {
		if rest, ok := strings.CutPrefix(name, pre); ok {
			addr := s.txn.sender
			if pre == "recipient" {
				addr = s.onlyRecipient()
			}
			return addrPart(addr, rest)
		}
	}
	return ""
}

// addrPart is $sender, $sender_name, $sender_domain (and the recipient's).
func addrPart(addr, part string) string {
	local, domain, at := addr, "", false
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local, domain, at = addr[:i], addr[i+1:], true
	}
	switch part {
	case "":
		if addr == "" {
			return "<>"
		}
		return addr
	case "_name":
		if addr == "" {
			return "<>"
		}
		return local
	case "_domain":
		if at {
			return domain
		}
	}
	return ""
}
