package bounce

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// notice is one notice being composed.
type notice struct {
	o          Options
	kind       Kind
	orig       *Original
	rcpts      []Rcpt
	to         string
	postmaster bool // postmaster copy: other subject, no template text
	double     bool // double bounce (only changes the Message-Id tag)
	full       bool // return the full message rather than its headers

	eightBit bool // some part needs 8bit (UTF-8 text or 8-bit content)
	buf      bytes.Buffer
}

func (n *notice) line(s string) {
	n.buf.WriteString(s)
	n.buf.WriteString("\r\n")
}

func (n *notice) wrapped(s string) {
	for _, l := range lineWrap(s, wrapLength, wrapIndent) {
		n.line(l)
	}
}

func (n *notice) compose() []byte {
	o, orig := n.o, n.orig
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	host := clean(o.Myhostname, true)
	lines := contentLines(orig.Content)
	hdr := headerLines(lines)

	n.eightBit = o.SMTPUTF8Enable || orig.SMTPUTF8 || has8bit(orig.Content) || n.anyUTF8()

	boundary := fmt.Sprintf("%s.%d/%s", clean(orig.QueueID, false), now.Unix(), host)
	// Postfix trusts the boundary not to occur in the returned message; a
	// message crafted to contain it would end the report early, so pick
	// another one then.
	for i := 1; bytes.Contains(orig.Content, []byte(boundary)); i++ {
		boundary = fmt.Sprintf("%s.%d.%d/%s", clean(orig.QueueID, false), now.Unix(), i, host)
	}

	// Message header, in the order Postfix's bounce(8) and cleanup(8)
	// write it.
	n.line("Date: " + mailDate(now))
	n.line("From: Mail Delivery System <MAILER-DAEMON@" + host + ">")
	n.line("Subject: " + n.subject())
	n.line("To: " + quoteAddr(n.qualify(n.to), n.eightBit))
	if id := messageID(hdr); id != "" && !o.NoThreading {
		n.line("References: " + id)
		n.line("In-Reply-To: " + id)
	}
	if n.postmaster {
		n.line("Auto-Submitted: auto-generated")
	} else {
		n.line("Auto-Submitted: auto-replied")
	}
	n.line("MIME-Version: 1.0")
	n.line("Content-Type: multipart/report; report-type=delivery-status;")
	n.line("\tboundary=\"" + boundary + "\"")
	if n.eightBit {
		n.line("Content-Transfer-Encoding: 8bit")
	}
	n.line("Message-Id: <" + now.Format("20060102150405") + "." + clean(orig.QueueID, false) + "." + n.tag() + "@" + host + ">")
	n.line("")
	n.line("This is a MIME-encapsulated message.")

	n.notification(boundary, host)
	n.report(boundary, host)
	n.attachment(boundary, lines, hdr)
	return n.buf.Bytes()
}

// notification writes the text/plain part: the template text (not in
// postmaster notices) and one wrapped paragraph per recipient.
func (n *notice) notification(boundary, host string) {
	n.line("")
	n.line("--" + boundary)
	n.line("Content-Description: Notification")
	if n.eightBit {
		n.line("Content-Type: text/plain; charset=utf-8")
		n.line("Content-Transfer-Encoding: 8bit")
	} else {
		n.line("Content-Type: text/plain; charset=us-ascii")
	}
	n.line("")
	if !n.postmaster {
		for _, l := range n.templateText(host) {
			n.line(l)
		}
	}
	for _, r := range n.rcpts {
		addr := clean(r.Addr, n.eightBit)
		var s string
		if r.OrigAddr != "" && !strings.EqualFold(r.OrigAddr, r.Addr) {
			s = fmt.Sprintf("<%s> (expanded from <%s>): %s", addr, clean(r.OrigAddr, n.eightBit), clean(reason(r), n.eightBit))
		} else {
			s = fmt.Sprintf("<%s>: %s", addr, clean(reason(r), n.eightBit))
		}
		n.line("")
		n.wrapped(s)
	}
}

// report writes the message/delivery-status part (RFC 3464).
func (n *notice) report(boundary, host string) {
	o, orig := n.o, n.orig
	utf8 := orig.SMTPUTF8
	n.line("")
	n.line("--" + boundary)
	n.line("Content-Description: Delivery report")
	if utf8 {
		n.line("Content-Type: message/global-delivery-status")
		if n.eightBit {
			n.line("Content-Transfer-Encoding: 8bit")
		}
	} else {
		n.line("Content-Type: message/delivery-status")
	}
	n.line("")

	name := mailName(o.MailName)
	n.line("Reporting-MTA: dns; " + host)
	if orig.EnvID != "" {
		n.line("Original-Envelope-Id: " + clean(orig.EnvID, utf8))
	}
	n.line("X-" + name + "-Queue-ID: " + clean(orig.QueueID, false))
	sender := n.senderAddr()
	n.line("X-" + name + "-Sender: " + addrType(sender, utf8) + "; " + clean(sender, utf8))
	if !orig.Arrival.IsZero() {
		n.line("Arrival-Date: " + mailDate(orig.Arrival))
	}

	for _, r := range n.rcpts {
		n.line("")
		n.line("Final-Recipient: " + addrType(r.Addr, utf8) + "; " + clean(r.Addr, utf8))
		if r.ORCPT != "" {
			n.line("Original-Recipient: " + clean(r.ORCPT, utf8))
		} else if r.OrigAddr != "" {
			n.line("Original-Recipient: " + addrType(r.OrigAddr, utf8) + "; " + clean(r.OrigAddr, utf8))
		}
		n.line("Action: " + n.action(r))
		n.line("Status: " + n.status(r))
		if r.RemoteMTA != "" {
			mtype, mname := "dns", strings.TrimSpace(r.RemoteMTA)
			if t, v, ok := splitTyped(mname); ok {
				mtype, mname = t, v
			}
			if mname != "" {
				n.wrapped("Remote-MTA: " + clean(mtype, false) + "; " + clean(mname, utf8))
			}
		}
		dtype, dtext := diagnostic(r.Diagnostic)
		if dtype == "" || dtext == "" {
			dtype, dtext = "X-"+name, reason(r)
		}
		n.wrapped("Diagnostic-Code: " + clean(dtype, false) + "; " + clean(dtext, utf8))
		if n.kind == Delay && !orig.Arrival.IsZero() {
			n.line("Will-Retry-Until: " + mailDate(orig.Arrival.Add(o.MaximalQueueLifetime)))
		}
	}
}

// attachment writes the returned message or its headers and closes the
// report.
func (n *notice) attachment(boundary string, lines, hdr [][]byte) {
	o, orig := n.o, n.orig
	full := n.full
	if o.BounceSizeLimit > 0 && messageSize(orig.Content) > o.BounceSizeLimit {
		// Truncating would damage the MIME structure: send the headers.
		full = false
	}
	n.line("")
	n.line("--" + boundary)
	desc := "Message"
	if !full {
		desc = "Message Headers"
	}
	if n.kind != Success {
		desc = "Undelivered " + desc
	}
	n.line("Content-Description: " + desc)
	switch {
	case orig.SMTPUTF8 && full:
		n.line("Content-Type: message/global")
	case orig.SMTPUTF8:
		n.line("Content-Type: message/global-headers")
	case full:
		n.line("Content-Type: message/rfc822")
	default:
		n.line("Content-Type: text/rfc822-headers")
	}
	if n.eightBit {
		n.line("Content-Transfer-Encoding: 8bit")
	}
	n.line("")
	if len(lines) == 0 {
		n.line("\t--- Undelivered message unavailable ---")
	} else {
		// cleanup(8) removes Return-Path: from arriving mail, so bounce(8)
		// puts one back for the benefit of header_checks.
		n.line("Return-Path: <" + quoteAddr(n.senderAddr(), n.eightBit) + ">")
		copyLines := lines
		if !full {
			copyLines = hdr
		}
		for _, l := range copyLines {
			n.buf.Write(l)
			n.buf.WriteString("\r\n")
		}
	}
	n.line("")
	n.line("--" + boundary + "--")
}

// subject is the template subject for the kind and audience.
func (n *notice) subject() string {
	switch {
	case n.kind == Failure && n.postmaster:
		return "Postmaster Copy: Undelivered Mail"
	case n.kind == Failure:
		return "Undelivered Mail Returned to Sender"
	case n.kind == Delay && n.postmaster:
		return "Postmaster Warning: Delayed Mail"
	case n.kind == Delay:
		return "Delayed Mail (still being retried)"
	}
	return "Successful Mail Delivery Report"
}

// templateText is Postfix's built-in template body for the kind, expanded.
func (n *notice) templateText(host string) []string {
	head := "This is the mail system at host " + host + "."
	const tail = "                   The mail system"
	switch n.kind {
	case Failure:
		return []string{
			head,
			"",
			"I'm sorry to have to inform you that your message could not",
			"be delivered to one or more recipients. It's attached below.",
			"",
			"For further assistance, please send mail to postmaster.",
			"",
			"If you do so, please include this problem report. You can",
			"delete your own text from the attached returned message.",
			"",
			tail,
		}
	case Delay:
		hours := int64(n.o.DelayWarningTime / time.Hour)
		days := int64(n.o.MaximalQueueLifetime / (24 * time.Hour))
		return []string{
			head,
			"",
			"####################################################################",
			"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
			"####################################################################",
			"",
			"Your message could not be delivered for more than " + strconv.FormatInt(hours, 10) + " hour(s).",
			"It will be retried until it is " + strconv.FormatInt(days, 10) + " day(s) old.",
			"",
			"For further assistance, please send mail to postmaster.",
			"",
			"If you do so, please include this problem report. You can",
			"delete your own text from the attached returned message.",
			"",
			tail,
		}
	}
	return []string{
		head,
		"",
		"Your message was successfully delivered to the destination(s)",
		"listed below. If the message was delivered to mailbox you will",
		"receive no further notifications. Otherwise you may still receive",
		"notifications of mail delivery errors from other systems.",
		"",
		tail,
	}
}

// tag tells notices about one message apart in their Message-Id.
func (n *notice) tag() string {
	switch {
	case n.postmaster && n.double:
		return "2" + n.kind.String()
	case n.postmaster:
		return "pm-" + n.kind.String()
	}
	return n.kind.String()
}

func (n *notice) action(r Rcpt) string {
	switch {
	case n.kind == Failure:
		return "failed"
	case r.Action != "":
		return clean(r.Action, false)
	case n.kind == Delay:
		return "delayed"
	}
	return "delivered"
}

func (n *notice) status(r Rcpt) string {
	if s := strings.TrimSpace(r.Status); s != "" {
		return clean(s, false)
	}
	switch n.kind {
	case Failure:
		return "5.0.0"
	case Delay:
		return "4.0.0"
	}
	return "2.0.0"
}

// senderAddr is the original sender as reported: the null sender is
// MAILER-DAEMON@$myhostname, as in Postfix.
func (n *notice) senderAddr() string {
	if n.orig.Sender == "" {
		return "MAILER-DAEMON@" + clean(n.o.Myhostname, true)
	}
	return n.orig.Sender
}

// qualify appends @$myhostname to a bare local part, as cleanup(8) would.
func (n *notice) qualify(addr string) string {
	if addr != "" && !strings.Contains(addr, "@") {
		return addr + "@" + clean(n.o.Myhostname, true)
	}
	return addr
}

// anyUTF8 reports whether any text the notice shows is non-ASCII.
func (n *notice) anyUTF8() bool {
	if has8bit(n.o.Myhostname) || has8bit(n.orig.Sender) || has8bit(n.to) || has8bit(n.orig.EnvID) {
		return true
	}
	for _, r := range n.rcpts {
		for _, s := range []string{r.Addr, r.OrigAddr, r.ORCPT, r.Reason, r.Diagnostic, r.RemoteMTA} {
			if has8bit(s) {
				return true
			}
		}
	}
	return false
}

// reason is the human text for a recipient, falling back on the
// diagnostic when the delivery agent gave none.
func reason(r Rcpt) string {
	if s := strings.TrimSpace(r.Reason); s != "" {
		return s
	}
	if _, t := diagnostic(r.Diagnostic); t != "" {
		return t
	}
	if s := strings.TrimSpace(r.Diagnostic); s != "" {
		return s
	}
	return "delivery status " + strings.TrimSpace(r.Status)
}

// diagnostic splits "smtp; 550 ..." into its type and text. An untyped text
// that starts with a three-digit reply code is taken as an SMTP reply; any
// other untyped text has no type.
func diagnostic(d string) (dtype, dtext string) {
	d = strings.TrimSpace(d)
	if d == "" {
		return "", ""
	}
	if t, v, ok := splitTyped(d); ok {
		return t, v
	}
	if len(d) >= 3 && isDigit(d[0]) && isDigit(d[1]) && isDigit(d[2]) && (len(d) == 3 || d[3] == ' ' || d[3] == '-') {
		return "smtp", d
	}
	return "", d
}

// splitTyped splits "type; value" where type is an atom.
func splitTyped(s string) (typ, val string, ok bool) {
	i := strings.IndexByte(s, ';')
	if i <= 0 {
		return "", "", false
	}
	typ = strings.TrimSpace(s[:i])
	if typ == "" || strings.ContainsAny(typ, " \t()<>@,;:\\\".[]") {
		return "", "", false
	}
	return typ, strings.TrimSpace(s[i+1:]), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// mailName makes $mail_name an RFC 822 atom for X-<name>- fields, as
// bounce(8) does.
func mailName(s string) string {
	if s == "" {
		return "Postfix"
	}
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" \t\r\n()<>@,;:\\\".[]", r) || r < 0x20 || r >= 0x7f {
			return '-'
		}
		return r
	}, s)
}

// addrType is the DSN address type: utf-8 for a non-ASCII address in an
// SMTPUTF8 report, else rfc822.
func addrType(addr string, smtputf8 bool) string {
	if smtputf8 && has8bit(addr) {
		return "utf-8"
	}
	return "rfc822"
}

// mailDate formats a time as Postfix's mail_date(3) does, the day of the
// month padded with a space (strftime's %e): "Fri,  4 Dec 2026 10:01:02
// +0000 (UTC)".
func mailDate(t time.Time) string {
	return t.Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)")
}
