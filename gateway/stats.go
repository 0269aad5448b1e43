package gateway

import (
	"strconv"
	"strings"
)

// cmdStats counts, per command, how often it was sent and how often it
// succeeded, for the disconnect line ("ehlo=1 mail=1 rcpt=0/1 ...
// commands=3/4"). Unknown and malformed commands count as "unknown".
type cmdStats [numCommands + 1]struct{ ok, total int }

// unknownStat is the index of the "unknown" counter.
const unknownStat = numCommands

// format writes the statistics as Postfix does: commands in its table
// order, "name=ok" or "name=ok/total", then the totals ("commands=0/0"
// when nothing was sent).
func (st *cmdStats) format(bareLF bool) string {
	var b strings.Builder
	ok, total := 0, 0
	for i, c := range st {
		if c.total == 0 {
			continue
		}
		ok += c.ok
		total += c.total
		b.WriteByte(' ')
		if i == unknownStat {
			b.WriteString("unknown")
		} else {
			b.WriteString(strings.ToLower(commands[i].name))
		}
		b.WriteByte('=')
		writeCount(&b, c.ok, c.total)
	}
	b.WriteString(" commands=")
	if total == 0 {
		b.WriteString("0/0")
	} else {
		writeCount(&b, ok, total)
	}
	if bareLF {
		b.WriteString(" notes=bare_lf")
	}
	return b.String()
}

func writeCount(b *strings.Builder, ok, total int) {
	b.WriteString(strconv.Itoa(ok))
	if ok != total {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(total))
	}
}
