package gateway

import (
	"net/netip"
	"strconv"
	"strings"

	"postgate/gateway/command"
	"postgate/restrictions"
	"postgate/rules"
)

// XCLIENT and XFORWARD (Postfix's extensions for proxies and content
// filters), for the clients in smtpd_authorized_xclient_hosts and
// smtpd_authorized_xforward_hosts.

// xforward is what XFORWARD says of the original client of a message;
// it replaces the connection's client in the message's trace and envelope,
// and SOURCE, when given, chooses the header rewriting context in place of
// local_header_rewrite_clients (Postfix's FORWARD_DOMAIN). PORT and IDENT
// are checked, but postgate's envelope has no place for them yet.
type xforward struct {
	set    bool
	name   string
	addr   string
	proto  string
	helo   string
	source string // "LOCAL", "REMOTE" or "" when not given
}

// xattr splits NAME=value, decoding xtext; a reply is returned for an
// attribute Postfix refuses.
func xattr(tok string) (name, value string, bad *rules.Reply) {
	name, raw, ok := strings.Cut(tok, "=")
	if !ok || raw == "" {
		return "", "", &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Error: attribute=value expected"}
	}
	if len(raw) > 255 {
		return "", "", &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Error: attribute value too long"}
	}
	if v, ok := command.Xtext(raw); ok {
		raw = v
	}
	return name, printable(raw), nil
}

func badAttr(attr, value string) *rules.Reply {
	return &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Bad " + attr + " syntax: " + value}
}

// validPort is a decimal port of at most five digits.
func validPort(v string) bool {
	if v == "" || len(v) > 5 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// clientAddr parses an XCLIENT/XFORWARD ADDR as Postfix's
// normalize_mailhost_addr: an IPv4 address, or "IPv6:" and an IPv6 address
// (a bare one is not IPv4, so it is refused); an IPv4-mapped IPv6 address
// becomes IPv4; the family must be one inet_protocols enables.
func (s *service) clientAddr(v string) (netip.Addr, bool) {
	var a netip.Addr
	var err error
	if len(v) > 5 && strings.EqualFold(v[:5], "IPv6:") {
		if a, err = netip.ParseAddr(v[5:]); err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, false
		}
		if a.Is4In6() && s.ipv4 {
			a = a.Unmap()
		}
	} else if a, err = netip.ParseAddr(v); err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, a.Is4() && s.ipv4 || a.Is6() && s.ipv6
}

// xallowed answers an XCLIENT or XFORWARD that cannot be taken: inside a
// mail transaction, without attributes, or from an unauthorized client.
func (s *session) xallowed(cmd string, args []command.Token, authorized bool) bool {
	switch {
	case s.txn.active:
		s.reply(rules.Reply{Code: 503, DSN: "5.5.1", Text: "Error: MAIL transaction in progress"})
	case len(args) < 2:
		s.reply(rules.Reply{Code: 501, DSN: "5.5.4", Text: "Syntax: " + cmd + " attribute=value..."})
	case !authorized:
		s.reply(rules.Reply{Code: 550, DSN: "5.7.0", Text: "Error: insufficient authorization"})
	default:
		return true
	}
	return false
}

// unknownAttr is what set returns for an attribute name it does not know.
var unknownAttr = &rules.Reply{}

// eachAttr takes the NAME=value attributes of an XCLIENT or XFORWARD one
// by one: set gets the upper-cased name, the xtext-decoded value and
// whether it is [UNAVAILABLE], and returns the reply that refuses it, if
// any. The first refusal is sent and ends the command.
func (s *session) eachAttr(args []command.Token, set func(attr, v string, unavailable bool) *rules.Reply) bool {
	for _, a := range args[1:] {
		attr, v, bad := xattr(a.Text)
		if bad == nil {
			bad = set(strings.ToUpper(attr), v, strings.EqualFold(v, "[UNAVAILABLE]"))
		}
		if bad == unknownAttr {
			bad = &rules.Reply{Code: 501, DSN: "5.5.4", Text: "Bad " + strings.ToUpper(args[0].Text) + " attribute name: " + attr}
		}
		if bad != nil {
			s.reply(*bad)
			return false
		}
	}
	return true
}

// xclientName is an XCLIENT NAME or REVERSE_NAME: [UNAVAILABLE] (no
// name), [TEMPUNAVAIL] (a lookup that failed for now), or a host name.
func xclientName(v string, unavailable bool) (restrictions.PeerStatus, bool) {
	switch {
	case unavailable:
		return restrictions.PeerPerm, true
	case strings.EqualFold(v, "[TEMPUNAVAIL]"):
		return restrictions.PeerTemp, true
	}
	return restrictions.PeerOK, rules.ValidHostname(v, false)
}

// peerName is the name to use for a lookup outcome.
func peerName(v string, st restrictions.PeerStatus) string {
	if st != restrictions.PeerOK {
		return "unknown"
	}
	return v
}

// xclient replaces what the session knows of the client, then starts the
// session over with a new greeting, as if the client had just connected.
func (s *session) xclient(args []command.Token) bool {
	if !s.xallowed("XCLIENT", args, s.xclientOK) {
		return false
	}
	client, helo, proto := s.client, "", "SMTP"
	ok := s.eachAttr(args, func(attr, v string, unavailable bool) *rules.Reply {
		switch attr {
		case "NAME":
			st, ok := xclientName(v, unavailable)
			if !ok {
				return badAttr(attr, v)
			}
			client.name, client.nameStatus = peerName(v, st), st
		case "REVERSE_NAME":
			st, ok := xclientName(v, unavailable)
			if !ok {
				return badAttr(attr, v)
			}
			client.reverse, client.reverseStatus = peerName(v, st), st
		case "ADDR":
			if unavailable {
				client.addr = netip.Addr{}
				break
			}
			v = neuter(v)
			ip, ok := s.svc.clientAddr(v)
			if !ok {
				return badAttr(attr, v)
			}
			client.addr = ip
		case "PORT":
			if unavailable {
				client.port = 0
				break
			}
			if !validPort(v) {
				return badAttr(attr, v)
			}
			client.port, _ = strconv.Atoi(v)
		case "HELO":
			if unavailable {
				helo = ""
				break
			}
			if len(v) > 255 {
				return badAttr(attr, v)
			}
			helo = neuter(v)
		case "PROTO":
			if !strings.EqualFold(v, "SMTP") && !strings.EqualFold(v, "ESMTP") {
				return badAttr(attr, v)
			}
			proto = strings.ToUpper(v)
		case "LOGIN", "DESTADDR", "DESTPORT":
			// No SASL (LOGIN) and no use for the server address yet.
		default:
			return unknownAttr
		}
		return nil
	})
	if !ok {
		return false
	}
	// What XCLIENT does not name is forgotten: a new client says HELO anew.
	s.client, s.helo, s.proto = client, helo, proto
	s.resetTransaction()
	s.denied = nil
	s.start()
	return true
}

// xforwardCmd records the original client of the next message.
func (s *session) xforwardCmd(args []command.Token) bool {
	if !s.xallowed("XFORWARD", args, s.xforwardOK) {
		return false
	}
	x := s.txn.xforward
	ok := s.eachAttr(args, func(attr, v string, unavailable bool) *rules.Reply {
		switch attr {
		case "NAME":
			if unavailable {
				v = "unknown"
			} else if v = neuter(v); !rules.ValidHostname(v, false) {
				return badAttr(attr, v)
			}
			x.name = v
		case "ADDR":
			if unavailable {
				x.addr = "unknown"
				break
			}
			v = neuter(v)
			ip, ok := s.svc.clientAddr(v)
			if !ok {
				return badAttr(attr, v)
			}
			x.addr = ip.String()
		case "PORT":
			if !unavailable && !validPort(v) {
				return badAttr(attr, v)
			}
		case "HELO":
			if unavailable {
				v = ""
			}
			x.helo = neuter(v)
		case "PROTO":
			switch {
			case unavailable:
				v = "unknown"
			case len(v) > 64:
				return badAttr(attr, v)
			}
			x.proto = neuter(v)
		case "IDENT":
		case "SOURCE":
			switch {
			case unavailable:
				x.source = "LOCAL"
			case strings.EqualFold(v, "LOCAL") || strings.EqualFold(v, "REMOTE"):
				x.source = strings.ToUpper(v)
			default:
				return badAttr(attr, v)
			}
		default:
			return unknownAttr
		}
		return nil
	})
	if !ok {
		return false
	}
	x.set = true
	s.txn.xforward = x
	s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: "Ok"})
	return true
}
