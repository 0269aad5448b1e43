// Package command parses SMTP command lines as Postfix's smtpd does:
// Tokenize splits a line into words the way smtpd_token does, keeping
// quotes, angle brackets and backslashes; ExtractAddress takes the address
// out of a MAIL FROM / RCPT TO / VRFY word with Postfix's RFC 822 parser
// (rules/tok822) and returns its internal, unquoted form; Xtext and UXtext
// decode the xtext values of ENVID= and ORCPT=.
//
// Postfix works on C strings: text after a NUL byte is not seen.
package command
