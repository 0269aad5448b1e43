package addrheader

import "strings"

// Class says which of cleanup's address rewriting a header gets.
type Class int

const (
	NotAddress Class = iota // not an address header
	Sender                  // sender_canonical_maps and the header_sender class
	Recipient               // recipient_canonical_maps and the header_recipient class
)

// classes are the address headers of Postfix's header_opts table.
// Resent-Reply-To is a recipient header there.
var classes = map[string]Class{
	"disposition-notification-to": Sender,
	"errors-to":                   Sender,
	"from":                        Sender,
	"mail-followup-to":            Sender,
	"reply-to":                    Sender,
	"resent-from":                 Sender,
	"resent-sender":               Sender,
	"return-path":                 Sender,
	"return-receipt-to":           Sender,
	"sender":                      Sender,
	"apparently-to":               Recipient,
	"bcc":                         Recipient,
	"cc":                          Recipient,
	"resent-bcc":                  Recipient,
	"resent-cc":                   Recipient,
	"resent-reply-to":             Recipient,
	"resent-to":                   Recipient,
	"to":                          Recipient,
}

// SplitHeader splits a header line (folded lines joined by "\n") at its
// first ':' into the name, less the spaces and tabs before the colon, and
// the value after the colon. Postfix's MIME reader (mime_state) drops
// those blanks from every header, so "To : x" goes out as "To: x"
// whether or not an address in it changed: the header as Postfix writes
// it unchanged is name + ":" + value. ok is false without a ':'.
func SplitHeader(line string) (name, value string, ok bool) {
	i := strings.IndexByte(line, ':')
	if i < 0 {
		return "", "", false
	}
	return strings.TrimRight(line[:i], " \t"), line[i+1:], true
}

// ClassOf returns the class of the header named name (any case).
func ClassOf(name string) Class {
	return classes[strings.ToLower(name)]
}

// NameLen is Postfix's is_header: the length of the field name when line
// starts with printable characters other than ':', optional blanks and
// a ':', else 0.
func NameLen(line []byte) int {
	n := 0
	for n < len(line) && line[n] > ' ' && line[n] < 0x7f && line[n] != ':' {
		n++
	}
	if n == 0 {
		return 0
	}
	i := n
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i < len(line) && line[i] == ':' {
		return n
	}
	return 0
}
