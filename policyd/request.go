package policyd

import (
	"strconv"
	"strings"
)

// Request is what smtpd tells a policy server about the session at one
// protocol state (postfix-semantics §6.3). Empty strings are sent empty.
type Request struct {
	ProtocolState     string // CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN
	ProtocolName      string // SMTP or ESMTP
	ClientAddress     string
	ClientName        string // verified name or "unknown"
	ClientPort        string // "unknown" when XCLIENT said so
	ReverseClientName string // "unknown" when the PTR lookup failed
	ServerAddress     string
	ServerPort        string
	HeloName          string
	Sender            string // "" for <> and before MAIL
	Recipient         string
	RecipientCount    int // accepted recipients, at DATA and END-OF-MESSAGE only
	QueueID           string
	Instance          string // the same for every request about one message
	Size              int64  // SIZE= from MAIL; the received size at END-OF-MESSAGE
	EtrnDomain        string
	Stress            string // "yes" under stress
	SASLMethod        string
	SASLUsername      string
	SASLSender        string
	CcertSubject      string
	CcertIssuer       string
	CcertFingerprint  string
	CcertPubkeyFprint string
	EncryptionProto   string
	EncryptionCipher  string
	EncryptionKeysize int
}

// encode writes the request as Postfix 3.7's smtpd does: its attributes in
// smtpd's order, policy_context last, then the empty line.
func (r *Request) encode(b *strings.Builder, policyContext string) {
	add := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('=')
		// A newline would end the attribute early and let the rest pass
		// for attributes of its own; SMTP command lines have none, but
		// the protocol must not depend on it.
		b.WriteString(strings.ReplaceAll(value, "\n", " "))
		b.WriteByte('\n')
	}
	add("request", "smtpd_access_policy")
	add("protocol_state", r.ProtocolState)
	add("protocol_name", r.ProtocolName)
	add("client_address", r.ClientAddress)
	add("client_name", r.ClientName)
	add("client_port", r.ClientPort)
	add("reverse_client_name", r.ReverseClientName)
	add("server_address", r.ServerAddress)
	add("server_port", r.ServerPort)
	add("helo_name", r.HeloName)
	add("sender", r.Sender)
	add("recipient", r.Recipient)
	add("recipient_count", strconv.Itoa(r.RecipientCount))
	add("queue_id", r.QueueID)
	add("instance", r.Instance)
	add("size", strconv.FormatInt(r.Size, 10))
	add("etrn_domain", r.EtrnDomain)
	add("stress", r.Stress)
	add("sasl_method", r.SASLMethod)
	add("sasl_username", r.SASLUsername)
	add("sasl_sender", r.SASLSender)
	add("ccert_subject", r.CcertSubject)
	add("ccert_issuer", r.CcertIssuer)
	add("ccert_fingerprint", r.CcertFingerprint)
	add("ccert_pubkey_fingerprint", r.CcertPubkeyFprint)
	add("encryption_protocol", r.EncryptionProto)
	add("encryption_cipher", r.EncryptionCipher)
	add("encryption_keysize", strconv.Itoa(r.EncryptionKeysize))
	add("policy_context", policyContext)
	b.WriteByte('\n')
}
