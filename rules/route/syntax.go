package route

import (
	"strings"

	"postgate/rules"
)

// dotString reports whether a local part is an RFC 822 dot-string: atoms
// separated by single dots. Anything else is a quoted string, whose '%'
// and '!' Postfix's rewriting does not see. 8-bit bytes are allowed.
func dotString(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>@,;:\"[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// validDomain is the syntax check of a resolved domain, as Postfix's
// trivial-rewrite makes it: an address literal [1.2.3.4] / [IPv6:...]
// (valid_mailhost_literal), or a host name with UTF-8 labels allowed
// (resolve_numeric_domain = no: a bare address is not a domain).
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") {
		_, ok := rules.MailhostLiteral(d)
		return ok
	}
	return rules.ValidHostname(d, true)
}
