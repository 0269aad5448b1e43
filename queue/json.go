package queue

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes msgs the way postqueue -j does: one JSON object per
// line with queue_name, queue_id, arrival_time, message_size,
// forced_expire, sender and recipients (address, orig_address, and
// delay_reason when there is one), in Postfix's member order and spacing.
// Unlike showq it lists the corrupt queue too (WriteMailq says why), as
// queue_name "corrupt" with a "damage" member saying what is damaged; a
// message whose own record is damaged has an empty sender and no
// recipients, since nothing vouches for them.
func WriteJSON(w io.Writer, msgs []Message) error {
	bw := bufio.NewWriter(w)
	for i := range msgs {
		m := &msgs[i]
		var arrival int64
		if !m.Arrival.IsZero() {
			arrival = m.Arrival.Unix()
		}
		sender := ""
		if envelopeKnown(m) {
			sender = showAddr(m.Sender)
		}
		fmt.Fprintf(bw, `{"queue_name": "%s", "queue_id": "%s", "arrival_time": %d, "message_size": %d, "forced_expire": %t, "sender": "%s", "recipients": [`,
			m.State, jsonQuote(m.ID), arrival, m.Size, m.Expired, jsonQuote(sender))
		for j, r := range showqRcpts(m) {
			if j > 0 {
				bw.WriteString(", ")
			}
			fmt.Fprintf(bw, `{"address": "%s", "orig_address": "%s"`, jsonQuote(r.addr), jsonQuote(r.orig))
			if r.why != "" {
				fmt.Fprintf(bw, `, "delay_reason": "%s"`, jsonQuote(r.why))
			}
			bw.WriteString("}")
		}
		bw.WriteString("]")
		if m.State == Corrupt {
			fmt.Fprintf(bw, `, "damage": "%s"`, jsonQuote(m.Damage))
		}
		bw.WriteString("}\n")
	}
	return bw.Flush()
}

// jsonQuote escapes like Postfix's json_quote: short escapes for common
// control characters, \u00XX for the rest, backslash and quote escaped,
// everything else (UTF-8 included) as is.
func jsonQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < ' ' || c == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, c)
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
