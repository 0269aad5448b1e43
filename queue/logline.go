package queue

import (
	"strconv"
	"strings"
	"time"
)

// deliveryLine is Postfix's delivery log line (log_adhoc):
//
//	ID: to=<rcpt>, [orig_to=<orig>, ]relay=R, [conn_use=N, ]delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=S (reason)
//
// a is the time before the queue manager took the message, b the time in
// the queue manager before the transport got it, c and d the transport's
// connection set-up and transmission; delay is their sum.
func deliveryLine(id string, r *Recipient, res *Result, a, b time.Duration) string {
	var sb strings.Builder
	sb.Grow(160 + len(res.Reason))
	sb.WriteString(id)
	sb.WriteString(": to=<")
	sb.WriteString(printable(r.Addr))
	sb.WriteByte('>')
	if orig := r.Orig; orig != "" && !strings.EqualFold(orig, r.Addr) {
		sb.WriteString(", orig_to=<")
		sb.WriteString(printable(orig))
		sb.WriteByte('>')
	}
	sb.WriteString(", relay=")
	if res.Relay == "" {
		sb.WriteString("none")
	} else {
		sb.WriteString(printable(res.Relay))
	}
	if res.ConnUse > 1 {
		sb.WriteString(", conn_use=")
		sb.WriteString(strconv.Itoa(res.ConnUse))
	}
	c, d := max(res.ConnSetup, 0), max(res.Xfer, 0)
	sb.WriteString(", delay=")
	sb.WriteString(formatDelay(a + b + c + d))
	sb.WriteString(", delays=")
	sb.WriteString(formatDelay(a))
	sb.WriteByte('/')
	sb.WriteString(formatDelay(b))
	sb.WriteByte('/')
	sb.WriteString(formatDelay(c))
	sb.WriteByte('/')
	sb.WriteString(formatDelay(d))
	sb.WriteString(", dsn=")
	sb.WriteString(res.DSN)
	sb.WriteString(", status=")
	sb.WriteString(res.Status.String())
	sb.WriteString(" (")
	sb.WriteString(printable(res.Reason))
	sb.WriteByte(')')
	return sb.String()
}

// Postfix formats delays with 2 significant digits and at most
// delay_logging_resolution_limit (2) digits after the point.
const (
	delaySigDigits = 2
	delayMaxDigits = 2
)

// FormatDelay formats a delay as the log's delay= does (postscreen's
// "after" times too).
func FormatDelay(d time.Duration) string { return formatDelay(d) }

// formatDelay formats a delay as Postfix's format_tv does: 10 s and more
// rounded to whole seconds, less with two significant digits (1.2, 0.51,
// 0.08), no more than two digits after the point, no trailing zeros, and
// 0 for what is below the resolution.
func formatDelay(d time.Duration) string {
	const million = 1000000
	pow10 := [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000}
	d = max(d, 0)
	sec := int64(d / time.Second)
	usec := int64(d%time.Second) / int64(time.Microsecond)
	ures := million / pow10[delayMaxDigits]
	wid := pow10[delaySigDigits]
	// Coarsen the resolution so only the significant digits remain.
	if sec > 0 {
		n := int64(1)
		for sec >= n && n <= wid/10 {
			n *= 10
		}
		ures = million / wid * n
	} else {
		for usec >= wid*ures {
			ures *= 10
		}
	}
	// Round at the resolution.
	if ures > 1 {
		usec += ures / 2
		if usec >= million {
			sec++
			usec -= million
		}
	}
	b := strconv.AppendInt(make([]byte, 0, 8), sec, 10)
	if usec >= ures {
		b = append(b, '.')
		for rem, n := usec, int64(million/10); rem >= ures && n > 0; n /= 10 {
			b = append(b, byte('0'+rem/n))
			rem %= n
		}
	}
	return string(b)
}
