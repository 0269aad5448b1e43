package gateway

import (
	"fmt"
	"io"
	"strings"
	"time"

	"postgate/rules/addrheader"
	"postgate/rules/tok822"
)

// Cleanup's own work on a message's primary header block, as Postfix's
// cleanup does it after the header checks: it removes the headers named in
// message_drop_headers (cleanup_header_callback), and adds missing ones
// (cleanup_header_done_callback): in a header rewriting context (a local
// client, local mail, or remote_header_rewrite_domain set) or with
// always_add_missing_headers, a message whose header block lacks them gets
// Message-Id:, Date:, From: and, when it names no recipient,
// undisclosed_recipients_header, in that order, at the end of its header
// block. A message with any Resent- header gets Resent-Message-Id:,
// Resent-Date: and Resent-From: instead.

// headersSeen says which of the headers that decide what cleanup adds a
// header block has.
type headersSeen struct {
	messageID, date, from, visibleRcpt      bool
	resent                                  bool // any Resent- header
	resentMessageID, resentDate, resentFrom bool
}

// cleanupHeaders scans content's header block, after the header checks,
// as cleanup counts headers_seen. It returns what it saw, the offset where
// the block ends, and the edits that remove the headers named in
// message_drop_headers (they still count as seen, as in Postfix).
func cleanupHeaders(content io.ReaderAt, size int64, drop map[string]bool) (headersSeen, int64, []contentEdit) {
	var h headersSeen
	var end int64
	var edits []contentEdit
	var lower [32]byte // every name cleanup looks for fits; longer ones match none
	eachHeader(content, size, func(raw []byte, off int64) bool {
		end = off + int64(len(raw))
		n := addrheader.NameLen(raw)
		if n > len(lower) {
			if drop[strings.ToLower(string(raw[:n]))] {
				edits = append(edits, contentEdit{off: off, n: int64(len(raw))})
			}
			return true
		}
		for i, c := range raw[:n] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		// string(lower[:n]) in a map index or a switch makes no copy.
		if drop[string(lower[:n])] {
			edits = append(edits, contentEdit{off: off, n: int64(len(raw))})
		}
		switch string(lower[:n]) {
		case "message-id":
			h.messageID = true
		case "date":
			h.date = true
		case "from":
			h.from = true
		case "to", "cc":
			h.visibleRcpt = true
		case "resent-to", "resent-cc":
			h.visibleRcpt, h.resent = true, true
		case "resent-message-id":
			h.resentMessageID, h.resent = true, true
		case "resent-date":
			h.resentDate, h.resent = true, true
		case "resent-from":
			h.resentFrom, h.resent = true, true
		case "resent-bcc", "resent-reply-to", "resent-sender":
			h.resent = true
		}
		return true
	})
	return h, end, edits
}

// missingHeaders are the header lines cleanup adds to a message with the
// headers seen: the message ID from the arrival time and queue ID (or the
// long queue ID alone, enable_long_queue_ids), the arrival date, and the
// envelope sender with the full name of a local submitter.
func (s *session) missingHeaders(seen headersSeen, arrival time.Time, fullName string) []byte {
	c := s.svc.canonical
	prefix, hasID, hasDate, hasFrom := "", seen.messageID, seen.date, seen.from
	if seen.resent {
		prefix, hasID, hasDate, hasFrom = "Resent-", seen.resentMessageID, seen.resentDate, seen.resentFrom
	}
	var add []byte
	if !hasID {
		id := s.txn.id + "@" + s.svc.hostname
		if !c.longQueueIDs {
			id = arrival.UTC().Format("20060102150405") + "." + id
		}
		add = fmt.Appendf(add, "%sMessage-Id: <%s>\r\n", prefix, id)
	}
	if !hasDate {
		add = append(append(append(append(add, prefix...), "Date: "...), arrival.Format(mailDateLayout)...), "\r\n"...)
	}
	if !hasFrom {
		add = append(append(add, prefix...), fromHeader(s.txn.sender, fullName)...)
	}
	if !seen.visibleRcpt && c.undisclosed != "" {
		if addrheader.NameLen([]byte(c.undisclosed)) == 0 {
			s.svc.log.Logf("cleanup", "warning: bad undisclosed_recipients_header header text \"%s\" -- need \"headername: headervalue\"", c.undisclosed)
		} else {
			add = append(append(add, c.undisclosed...), "\r\n"...)
		}
	}
	return add
}

// fromHeader is cleanup's From: for mail without one: "From: Full Name
// <sender>" (header_from_format = standard) for a local submitter with a
// full name, the name quoted when it has specials, else just the sender;
// the sender's local part quoted as quote_822_local does.
func fromHeader(sender, fullName string) string {
	if sender == "" {
		return "From: MAILER-DAEMON\r\n"
	}
	sender = tok822.QuotedLocal(sender)
	name := strings.Join(strings.Fields(fullName), " ")
	if name == "" {
		return "From: " + sender + "\r\n"
	}
	if strings.ContainsAny(name, "%!()<>@,;:\\\".[]") {
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return "From: " + name + " <" + sender + ">\r\n"
}
