package spf

import (
	"strings"
)

// explanations are pyspf's texts for each result, which policyd-spf puts
// in its header comments and reject replies.
var explanations = map[Result]string{
	Pass:      "sender SPF authorized",
	Fail:      "SPF fail - not authorized",
	PermError: "permanent error in processing",
	TempError: "temporary DNS error in processing",
	SoftFail:  "domain owner discourages use of this host",
	Neutral:   "access neither permitted nor denied",
	None:      "no SPF record",
}

// Explanation is policyd-spf's text for the result.
func (o Outcome) Explanation() string { return explanations[o.Result] }

// HeaderValue is the value of the Received-SPF: header (RFC 7208 9.1)
// as policyd-spf writes it: the result capitalized, a comment (the
// identity for MAIL FROM, the explanation for HELO), then identity,
// client-ip, helo, envelope-from ("<>" for the null sender) and
// receiver, the host that checked (policyd-spf writes the recipient
// there; RFC 7208 asks for the verifier's name).
func (o Outcome) HeaderValue(receiver string) string {
	comment := o.Identity
	if o.Identity == Helo {
		comment = o.Explanation()
	}
	from := o.Sender
	if from == "" {
		from = "<>"
	}
	var b strings.Builder
	b.WriteString(capitalize(string(o.Result)) + " (" + comment + ")")
	b.WriteString(" identity=" + o.Identity)
	b.WriteString("; client-ip=" + o.ClientIP.String())
	b.WriteString("; helo=" + value(o.Helo))
	b.WriteString("; envelope-from=" + value(from))
	b.WriteString("; receiver=" + value(receiver))
	return b.String()
}

// capitalize is Python's str.capitalize, which policyd-spf applies to
// the result ("Softfail", "Temperror").
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// value writes a key=value value bare when it is a dot-atom or an
// address of dot-atoms (or "<>", as policyd-spf writes the null sender),
// otherwise as a quoted-string (RFC 5322), so a header cannot be broken
// by what the client sent.
func value(s string) string {
	if s == "<>" {
		return s
	}
	bare := s != ""
	for i := 0; i < len(s) && bare; i++ {
		bare = isAtext(s[i]) || s[i] == '.' || s[i] == '@'
	}
	if bare {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
