package queue

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Postfix's mailq (postqueue -p) layout, from showq_compat.c. The headings
// and widths differ with enable_long_queue_ids.
const (
	shortLine   = "%-11s %7s %-20s %s\n"
	shortSender = "%-11s %7d %20.20s %s\n"
	longLine    = "%-17s %8s %-19s %s\n"
	longSender  = "%-17s %8d %19.19s %s\n"
)

var (
	shortHeadings = []any{"-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------"}
	longHeadings  = []any{"----Queue ID-----", "--Size--", "---Arrival Time----", "--Sender/Recipient------"}
)

// WriteMailq writes msgs the way postqueue -p (mailq) does: heading, one
// block per message with its status suffix ('*' active, '!' hold, '#'
// force-expired), sender (MAILER-DAEMON for <>), "(reason)" lines and
// recipients not yet done, then "-- N Kbytes in M Requests." or "Mail queue
// is empty". Arrival times are shown in local time, like asctime(localtime).
//
// Unlike showq, it lists the corrupt queue too, each message with a
// "(corrupt: what is damaged)" line, and ends with a count of them: a
// Postfix admin finds corrupt files by looking in the directory, but
// postgate's queue has no files to look at, and a message in the corrupt
// queue is acknowledged mail that will not be delivered until someone acts.
func WriteMailq(w io.Writer, msgs []Message, longIDs bool) error {
	line, sender, headings := shortLine, shortSender, shortHeadings
	if longIDs {
		line, sender, headings = longLine, longSender, longHeadings
	}
	bw := bufio.NewWriter(w)
	var count, total, corrupt int64
	for i := range msgs {
		m := &msgs[i]
		if count == 0 {
			fmt.Fprintf(bw, line, headings...)
		} else {
			bw.WriteString("\n")
		}
		if !envelopeKnown(m) {
			fmt.Fprintf(bw, line, m.ID, strconv.FormatInt(m.Size, 10), "", "(envelope unreadable)")
		} else {
			fmt.Fprintf(bw, sender, m.ID+statusSuffix(m), m.Size, asctime(m.Arrival), showAddr(m.Sender))
		}
		if m.State == Corrupt {
			corrupt++
			why := "corrupt: " + m.Damage
			fmt.Fprintf(bw, "%*s(%s)\n", max(76-len(why), 0), "", why)
		}
		saved := ""
		for _, r := range showqRcpts(m) {
			// A "(reason)" line whenever the reason differs from the
			// previous recipient's, ending at column 78.
			if r.why != saved {
				saved = r.why
				show := saved
				if show == "" {
					show = "reason unavailable"
				}
				fmt.Fprintf(bw, "%*s(%s)\n", max(76-len(show), 0), "", show)
			}
			fmt.Fprintf(bw, line, "", "", "", r.addr)
		}
		count++
		total += m.Size
	}
	if count == 0 {
		bw.WriteString("Mail queue is empty\n")
	} else {
		plural := "s"
		if count == 1 {
			plural = ""
		}
		fmt.Fprintf(bw, "\n-- %d Kbytes in %d Request%s.\n", total/1024, count, plural)
	}
	if corrupt > 0 {
		fmt.Fprintf(bw, "-- %d in the corrupt queue: see the qmgr warnings in the mail log.\n", corrupt)
	}
	return bw.Flush()
}

// envelopeKnown is false for a message whose own record is damaged: its
// header names it, nothing vouches for its sender or recipients.
func envelopeKnown(m *Message) bool { return m.State != Corrupt || len(m.Recipients) > 0 }

// WriteDamage writes a summary of the damage reading the log found, after
// the listing, when there is any, so an admin (or a script alerting on
// it) sees what the corrupt queue cannot show: bytes lost that named no
// message.
func WriteDamage(w io.Writer, d Damage) error {
	if d == (Damage{}) {
		return nil
	}
	_, err := fmt.Fprintf(w, "-- Queue log damage: %d damaged records named, %d damaged bytes dropped unnamed.\n", d.Records, d.Bytes)
	return err
}

func statusSuffix(m *Message) string {
	s := ""
	switch m.State {
	case Active:
		s = "*"
	case Hold:
		s = "!"
	}
	if m.Expired {
		s += "#"
	}
	return s
}

// asctime is asctime(3)'s text ("Thu Nov 20 10:01:02 2025\n") in local
// time; the format strings cut it to width.
func asctime(t time.Time) string {
	return t.In(time.Local).Format("Mon Jan _2 15:04:05 2006") + "\n"
}

// showqRcpt is a recipient as showq reports it.
type showqRcpt struct {
	addr, orig, why string
}

// showqRcpts lists the recipients not yet done in showq's order: those
// with a delay reason first (Postfix reads them from the defer log), then
// the others.
func showqRcpts(m *Message) []showqRcpt {
	var with, without []showqRcpt
	for i, r := range m.Recipients {
		if i < len(m.Done) && m.Done[i] {
			continue
		}
		why := ""
		if i < len(m.Reasons) {
			why = printable(m.Reasons[i])
		}
		sr := showqRcpt{addr: showAddr(r.Addr), orig: printable(origAddress(r.ORCPT)), why: why}
		if why != "" {
			with = append(with, sr)
		} else {
			without = append(without, sr)
		}
	}
	return append(with, without...)
}

// showAddr renders an address like showq: the null address as
// MAILER-DAEMON, the local part quoted when it is not a dot-atom, and
// unprintable bytes as '?'.
func showAddr(addr string) string {
	if addr == "" {
		return "MAILER-DAEMON"
	}
	return printable(quoteLocal(addr))
}

// quoteLocal follows Postfix's quote_822_local: a local part that is not a
// dot-string becomes a quoted-string. 8-bit bytes need no quoting.
func quoteLocal(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	local, domain := addr, ""
	if at >= 0 {
		local, domain = addr[:at], addr[at:]
	}
	if isDotString(local) || len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"' {
		return addr // a dot-atom, or quoted already (the SMTP wire form)
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' || c == '\r' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	b.WriteString(domain)
	return b.String()
}

func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>@,;:\"[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// printable replaces control characters and malformed UTF-8 with '?', as
// Postfix's printable() does with SMTPUTF8 enabled.
func printable(s string) string {
	ok := utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= ' ' && s[i] != 0x7f
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || r < ' ' || r == 0x7f {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// origAddress is the address in a DSN ORCPT value ("rfc822;user@example"
// with xtext decoded), "" when there is none.
func origAddress(orcpt string) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok {
		return ""
	}
	if !strings.EqualFold(strings.TrimSpace(typ), "rfc822") {
		return addr
	}
	return xtextDecode(addr)
}

// xtextDecode decodes RFC 3461 xtext ("+2B" for '+'); a malformed escape
// is kept as it is.
func xtextDecode(s string) string {
	if strings.IndexByte(s, '+') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
