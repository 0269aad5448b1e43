package queue

import (
	"strings"
	"testing"
	"time"
)

func TestFormatDelay(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{-time.Second, "0"},
		{4 * time.Millisecond, "0"},
		{5 * time.Millisecond, "0.01"},
		{80 * time.Millisecond, "0.08"},
		{84999 * time.Microsecond, "0.08"},
		{85 * time.Millisecond, "0.09"},
		{100 * time.Millisecond, "0.1"},
		{510 * time.Millisecond, "0.51"},
		{999 * time.Millisecond, "1"},
		{time.Second, "1"},
		{1200 * time.Millisecond, "1.2"},
		{1290 * time.Millisecond, "1.3"},
		{9940 * time.Millisecond, "9.9"},
		{9960 * time.Millisecond, "10"},
		{10400 * time.Millisecond, "10"},
		{10500 * time.Millisecond, "11"},
		{301 * time.Second, "301"},
		{165276 * time.Second, "165276"},
	} {
		if got := formatDelay(tc.d); got != tc.want {
			t.Errorf("formatDelay(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestDeliveryLineGolden pins the delivery log line, Postfix's log_adhoc
// shape, for a fixed set of inputs.
func TestDeliveryLineGolden(t *testing.T) {
	plain := Recipient{Addr: "r@example.com"}
	aliased := Recipient{Addr: "r@example.org", Orig: "alias+x@example.org"}
	sameOrig := Recipient{Addr: "R@Example.com", Orig: "r@example.com"}
	var b strings.Builder
	for _, tc := range []struct {
		r    Recipient
		res  Result
		a, b time.Duration
	}{
		{plain, Result{Status: StatusSent, DSN: "2.0.0", Reason: "250 2.0.0 Ok: queued as 4XYZ", Relay: "mx.example.com[198.51.100.5]:25",
			ConnSetup: 200 * time.Millisecond, Xfer: 220 * time.Millisecond}, 80 * time.Millisecond, 10 * time.Millisecond},
		{aliased, Result{Status: StatusDeferred, DSN: "4.4.1", Reason: "connect to mx.example.org[192.0.2.9]:25: Connection refused",
			ConnSetup: 500 * time.Millisecond}, 300 * time.Second, 10 * time.Millisecond},
		{sameOrig, Result{Status: StatusBounced, DSN: "5.1.1", Reason: "host mx.example.net[203.0.113.3] said: 550 5.1.1 User unknown (in reply to RCPT TO command)",
			Relay: "mx.example.net[203.0.113.3]:25", ConnSetup: 600 * time.Millisecond, Xfer: 500 * time.Millisecond}, 100 * time.Millisecond, 0},
		{plain, Result{Status: StatusSent, DSN: "2.0.0", Reason: "250 2.0.0 Ok", Relay: "mx.example.com[198.51.100.5]:25", ConnUse: 2,
			Xfer: 30 * time.Millisecond}, 2 * time.Millisecond, time.Millisecond},
		{plain, Result{Status: StatusSent, DSN: "2.0.0", Reason: "250 2.0.0 Ok", Relay: "mx.example.com[198.51.100.5]:25", ConnUse: 1}, 0, 0},
		{Recipient{Addr: "bad\nname@example.com"}, Result{Status: StatusDeferred, DSN: "4.3.0", Reason: "mail transport unavailable"}, 4 * time.Hour, 2 * time.Second},
		{plain, Result{Status: StatusSent, DSN: "2.0.0", Reason: "discarded", Relay: "none"}, 12 * time.Second, 0},
	} {
		b.WriteString(deliveryLine("8045F2AB23", &tc.r, &tc.res, tc.a, tc.b))
		b.WriteByte('\n')
	}
	golden(t, "delivery_lines", []byte(b.String()))
}
