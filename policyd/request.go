package policyd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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
	RecipientCount    int64 // accepted recipients, at DATA and END-OF-MESSAGE only
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
	EncryptionKeysize int64
	// PolicyContext is policy_context; the client sends its
	// policy_context option instead.
	PolicyContext string
}

// RequestType is the request attribute's value for smtpd's access policy
// requests, the only kind Postfix sends.
const RequestType = "smtpd_access_policy"

// attribute is one request attribute and where it lives in a Request:
// str for text, num for numbers.
type attribute struct {
	name string
	str  *string
	num  *int64
}

// attributes are r's attributes in the order Postfix 3.7's smtpd sends
// them (after request=, which is not a field); the client writes and the
// server reads requests through this one list.
func (r *Request) attributes() []attribute {
	return []attribute{
		{"protocol_state", &r.ProtocolState, nil},
		{"protocol_name", &r.ProtocolName, nil},
		{"client_address", &r.ClientAddress, nil},
		{"client_name", &r.ClientName, nil},
		{"client_port", &r.ClientPort, nil},
		{"reverse_client_name", &r.ReverseClientName, nil},
		{"server_address", &r.ServerAddress, nil},
		{"server_port", &r.ServerPort, nil},
		{"helo_name", &r.HeloName, nil},
		{"sender", &r.Sender, nil},
		{"recipient", &r.Recipient, nil},
		{"recipient_count", nil, &r.RecipientCount},
		{"queue_id", &r.QueueID, nil},
		{"instance", &r.Instance, nil},
		{"size", nil, &r.Size},
		{"etrn_domain", &r.EtrnDomain, nil},
		{"stress", &r.Stress, nil},
		{"sasl_method", &r.SASLMethod, nil},
		{"sasl_username", &r.SASLUsername, nil},
		{"sasl_sender", &r.SASLSender, nil},
		{"ccert_subject", &r.CcertSubject, nil},
		{"ccert_issuer", &r.CcertIssuer, nil},
		{"ccert_fingerprint", &r.CcertFingerprint, nil},
		{"ccert_pubkey_fingerprint", &r.CcertPubkeyFprint, nil},
		{"encryption_protocol", &r.EncryptionProto, nil},
		{"encryption_cipher", &r.EncryptionCipher, nil},
		{"encryption_keysize", nil, &r.EncryptionKeysize},
		{"policy_context", &r.PolicyContext, nil},
	}
}

// encode writes the request as Postfix 3.7's smtpd does: its attributes in
// smtpd's order, policy_context last, then the empty line. policyContext
// replaces r.PolicyContext.
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
	add("request", RequestType)
	for _, a := range r.attributes() {
		switch {
		case a.name == "policy_context":
			add(a.name, policyContext)
		case a.num != nil:
			add(a.name, strconv.FormatInt(*a.num, 10))
		default:
			add(a.name, *a.str)
		}
	}
	b.WriteByte('\n')
}

// Limits bound what ReadRequest accepts from a client.
type Limits struct {
	Line    int // bytes of one attribute line
	Request int // bytes of the whole request
}

// ErrMalformed is a request that breaks the protocol: a line without '=',
// a line or a request over its limit, a number that is not one. A server
// closes the connection without a reply (SMTPD_POLICY_README).
var ErrMalformed = errors.New("malformed policy request")

// ReadRequest reads one request: name=value lines up to the empty line.
// It returns the request type (the request attribute, RequestType for
// smtpd) and the Request; unknown attributes are ignored and a repeated
// one counts once, the last. err is io.EOF when the client closed the
// connection between requests; an error that wraps ErrMalformed says what
// was wrong; other errors are the connection's (a timeout).
func ReadRequest(r *bufio.Reader, lim Limits) (kind string, req *Request, err error) {
	req = &Request{}
	fields := map[string]attribute{}
	for _, a := range req.attributes() {
		fields[a.name] = a
	}
	size := 0
	for first := true; ; first = false {
		line, err := readLine(r, lim.Line)
		size += len(line) + 1
		switch {
		case errors.Is(err, errEOF) && first && line == "":
			return "", nil, io.EOF
		case errors.Is(err, errEOF):
			return "", nil, fmt.Errorf("%w: the connection closed within a request", ErrMalformed)
		case errors.Is(err, errProtocol):
			return "", nil, fmt.Errorf("%w: a line longer than %d bytes", ErrMalformed, lim.Line)
		case err != nil:
			return "", nil, err
		case size > lim.Request:
			return "", nil, fmt.Errorf("%w: a request longer than %d bytes", ErrMalformed, lim.Request)
		case line == "":
			return kind, req, nil
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: %q is not name=value", ErrMalformed, abbrev(line))
		}
		if name == "request" {
			kind = value
			continue
		}
		a, known := fields[name]
		switch {
		case !known:
		case a.num != nil:
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil && value != "" {
				return "", nil, fmt.Errorf("%w: %s=%q is not a number", ErrMalformed, name, abbrev(value))
			}
			*a.num = n
		default:
			*a.str = value
		}
	}
}

// abbrev shortens what a client sent for a log line.
func abbrev(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
