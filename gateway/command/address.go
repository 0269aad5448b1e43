package command

import (
	"strings"

	"postgate/rules/tok822"
)

// ExtractAddress is the syntactic part of Postfix's extract_addr(): strip
// one enclosing <...>, drop a leading source route "@a,@b:", parse the
// rest with Postfix's RFC 822 address parser (tok822_parse) and return the
// internal (unquoted) form of the address ("" when there is none, e.g.
// "<>"). ok is false when the text holds more than one address, or, with
// strict (strict_rfc821_envelopes = yes), when it holds any non-address
// text or the token does not start with '<', or (strict) the address
// starts with '@'.
//
// Non-address text is what Postfix counts as such: comments, commas,
// phrases ("Name <a@b>"), group syntax and stray operators; '<' and '>'
// are not counted. Without strict all of it is ignored, and the address
// is the last one in the text. addr is returned even when ok is false.
//
// The rest of Postfix's check (the empty address where it is not allowed,
// a domain trivial-rewrite finds invalid, a non-ASCII domain without
// SMTPUTF8) is the caller's.
func ExtractAddress(token string, strict bool) (addr string, ok bool) {
	token = cString(token)
	addr, naddr, nonAddr := parseEnvelopeAddress(token)
	switch {
	case naddr > 1:
		return addr, false
	case strict && (nonAddr > 0 || !strings.HasPrefix(token, "<")):
		return addr, false
	case strict && strings.HasPrefix(addr, "@"):
		return addr, false
	}
	return addr, true
}

// parseEnvelopeAddress parses a command word and returns the internal form
// of its last address, and the counts of address and non-address nodes at
// the top level of the parse.
func parseEnvelopeAddress(token string) (addr string, naddr, nonAddr int) {
	text := token
	if n := len(text); n >= 2 && text[0] == '<' && text[n-1] == '>' {
		text = text[1 : n-1]
	}
	if strings.HasPrefix(text, "@") { // source route: @a,@b:user@domain
		if i := strings.IndexByte(text, ':'); i >= 0 {
			text = text[i+1:]
		}
	}
	var last *tok822.Token
	// No token limit: smtpd's extract_addr calls tok822_parse.
	for tp := tok822.Parse(text, 0); tp != nil; tp = tp.Next {
		switch tp.Type {
		case tok822.Address:
			last = tp
			naddr++
		case '<', '>':
		default:
			nonAddr++
		}
	}
	if last != nil {
		addr = string(tok822.Internalize(nil, last.Head))
	}
	return addr, naddr, nonAddr
}
