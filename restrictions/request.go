package restrictions

import (
	"net/netip"

	"postgate/dnsbl"
	"postgate/restrictions/spf"
)

// Request is what the session knows when a stage is checked.
type Request struct {
	ClientAddr netip.Addr
	// PeerAddr is the address of the connection itself, which XCLIENT
	// does not change (permit_inet_interfaces, as Postfix's).
	PeerAddr    netip.Addr
	ClientName  string // verified client name, "unknown" if none
	ReverseName string // unverified reverse name, "unknown" if none
	// ClientNameStatus and ReverseNameStatus say why a name is unknown
	// (reject_unknown_client_hostname, reject_unknown_reverse_client_hostname).
	ClientNameStatus, ReverseNameStatus PeerStatus
	Helo                                string // HELO/EHLO argument, "" before HELO/EHLO
	Proto                               string // "SMTP" or "ESMTP" (for logs)
	Sender                              string // MAIL FROM address, "" for the null sender (from the Mail stage on)
	Recipient                           string // RCPT TO address being checked; at DATA/END-OF-MESSAGE the recipient, if only one
	SASLUser                            string // "" unless AUTH succeeded
	SASLMethod                          string // its mechanism
	EtrnDomain                          string // ETRN argument
	TLS                                 *TLS   // nil in a clear-text session
	// IllegalPipelining: the client sent commands ahead of a reply it
	// should have waited for (reject_unauth_pipelining).
	IllegalPipelining bool

	// Macros gives the session's values of $name macros in reply
	// templates (Postfix's smtpd_expand_lookup: client_address, helo_name,
	// sender, ...); nil: none.
	Macros func(name string) string

	// RecipientCount is the number of recipients accepted so far in this
	// transaction (not counting the one being checked at RCPT).
	RecipientCount int

	// What only policy servers are told (check_policy_service).
	ClientPort int        // 0: unknown
	ServerAddr netip.Addr // the address the client connected to
	ServerPort int
	QueueID    string // "" until the first recipient is accepted
	Instance   string // set when MAIL is accepted, the same for the whole transaction
	Size       int64  // SIZE= of MAIL; at END-OF-MESSAGE the size received
	Stress     bool   // the service is under stress (stress=yes)
	// ProtocolState is the command when it is not the stage's own name:
	// "VRFY" (checked as a recipient).
	ProtocolState string
}

// PeerStatus is the outcome of a client name lookup (Postfix's
// SMTPD_PEER_CODE_*): the zero value is a name found.
type PeerStatus int

const (
	PeerOK     PeerStatus = iota
	PeerTemp              // the lookup failed for now
	PeerPerm              // there is no name
	PeerForged            // the name does not resolve back to the address
)

// namaddr is Postfix's "name[addr]".
func (r *Request) namaddr() string {
	return r.clientName() + "[" + r.addr() + "]"
}

func (r *Request) clientName() string {
	if r.ClientName == "" {
		return "unknown"
	}
	return r.ClientName
}

func (r *Request) reverseName() string {
	if r.ReverseName == "" {
		return "unknown"
	}
	return r.ReverseName
}

// addr is the client address as Postfix prints it (IPv4-mapped IPv6 as IPv4).
func (r *Request) addr() string {
	return addrString(r.ClientAddr)
}

// Txn carries the state of one SMTP session that outlives a single check:
// the defer_if_permit flag and reason saved per stage (postfix-semantics
// §2.4), and the DISCARD/HOLD state of the current mail transaction. Use one
// Txn per session and call Reset at the end of each mail transaction
// (RSET, a new MAIL, after the message). The zero Txn is ready to use.
//
// Postfix keeps one defer_if_permit reason per session and only a flag per
// stage, so a reason raised at DATA could later show up for ETRN; postgate
// saves the reason with each stage's flag.
type Txn struct {
	dip                           deferral // defer_if_permit of the stage being checked
	dipClient, dipHelo, dipSender deferral // its value after each stage's list
	discard                       bool     // DISCARD seen: no more restrictions run
	hold                          bool     // HOLD seen (logged once)
	// dnsxl keeps each DNS list answer for the session, as Postfix keeps
	// them for the life of its smtpd process.
	dnsxl map[string]dnsbl.Result
	// dnswlListed is the client a permit_dnswl_client or
	// permit_rhswl_client found listed (postgate_greylist_skip = dnswl);
	// the address, as XCLIENT may change the client within a session.
	dnswlListed netip.Addr
	// spf is the transaction's SPF outcome once a check needed it.
	spf *spf.Outcome
}

// Reset ends the mail transaction: DISCARD and HOLD are forgotten, and so
// is the sender stage's defer_if_permit flag. The client and HELO stages'
// flags stay (they belong to the session).
func (t *Txn) Reset() {
	t.discard, t.hold, t.dipSender = false, false, deferral{}
	t.spf = nil
}

// Discarded reports whether a DISCARD action fired in this transaction.
func (t *Txn) Discarded() bool { return t.discard }

// Held reports whether a HOLD action fired in this transaction.
func (t *Txn) Held() bool { return t.hold }

// deferral is a saved defer_if_permit or defer_if_reject reply.
type deferral struct {
	active bool
	class  errClass
	code   int
	dsn    string
	reason string
}

// set keeps the first reason, as Postfix does.
func (d *deferral) set(class errClass, code int, dsn, reason string) {
	if !d.active {
		*d = deferral{active: true, class: class, code: code, dsn: dsn, reason: reason}
	}
}
