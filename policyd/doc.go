// Package policyd speaks Postfix's policy delegation protocol (SMTPD_POLICY_README):
// the client that check_policy_service uses. A request is name=value lines
// ended by an empty line; the reply is the same, and its action attribute
// is an access(5) value that the caller evaluates. The package is a leaf:
// it takes typed Options, never the gateway's configuration.
package policyd
