package rules

import (
	"fmt"
	"strings"
)

// Xtext encodes s as RFC 3461 xtext: '+', '=' and characters outside
// '!'..'~' become "+HH". DSN parameters (ORCPT, ENVID) and Postfix's
// policy attributes for certificate names use it.
func Xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
