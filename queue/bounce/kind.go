package bounce

import "strings"

// Kind is the class of a notice, Postfix's bounce template classes.
type Kind int

const (
	// Failure reports recipients that failed permanently or expired
	// ("Undelivered Mail Returned to Sender").
	Failure Kind = iota + 1
	// Delay warns that recipients are still being retried after
	// delay_warning_time ("Delayed Mail (still being retried)").
	Delay
	// Success reports delivery to recipients that asked for it with
	// NOTIFY=SUCCESS ("Successful Mail Delivery Report").
	Success
)

// String names the kind as Postfix's bounce templates do.
func (k Kind) String() string {
	switch k {
	case Failure:
		return "failure"
	case Delay:
		return "delay"
	case Success:
		return "success"
	}
	return "unknown"
}

func (k Kind) valid() bool { return k == Failure || k == Delay || k == Success }

// Wanted returns the recipients whose DSN NOTIFY asks for a notice of kind
// k, in their order: for Failure those without NOTIFY or with FAILURE, for
// Delay those without NOTIFY or with DELAY, for Success only those with
// SUCCESS. NOTIFY=NEVER asks for nothing. The result shares no memory with
// rcpts' backing array; it is nil when nobody wants the notice.
func Wanted(k Kind, rcpts []Rcpt) []Rcpt {
	var out []Rcpt
	for _, r := range rcpts {
		if wants(k, r.Notify) {
			out = append(out, r)
		}
	}
	return out
}

// wants reports whether a stored NOTIFY value ("FAILURE,DELAY", "NEVER",
// "") asks for kind k. Keywords are case-insensitive; unknown ones are
// ignored, as is a NEVER mixed with others (which RFC 3461 forbids).
func wants(k Kind, notify string) bool {
	var success, failure, delay, never, any bool
	for _, w := range strings.FieldsFunc(notify, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t'
	}) {
		switch strings.ToUpper(w) {
		case "SUCCESS":
			success, any = true, true
		case "FAILURE":
			failure, any = true, true
		case "DELAY":
			delay, any = true, true
		case "NEVER":
			never = true
		}
	}
	if !any {
		if never {
			return false
		}
		// No NOTIFY: the RFC 3461 default, FAILURE and DELAY.
		return k == Failure || k == Delay
	}
	switch k {
	case Failure:
		return failure
	case Delay:
		return delay
	case Success:
		return success
	}
	return false
}
