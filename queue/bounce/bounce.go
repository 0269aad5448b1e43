package bounce

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultBounceSizeLimit is Postfix's default bounce_size_limit.
const DefaultBounceSizeLimit = 50000

// Options are the main.cf settings a notice depends on.
type Options struct {
	// Myhostname is $myhostname: the Reporting-MTA, the domain of
	// MAILER-DAEMON and double-bounce, part of the MIME boundary and of the
	// Message-Id, and the host in "This is the mail system at host X.".
	Myhostname string
	// MailName is $mail_name, which names the X-<mail_name>-Queue-ID and
	// X-<mail_name>-Sender fields and the X-<mail_name> diagnostic type.
	// Empty means Postfix's default, "Postfix", which is what bounce
	// processors that know Postfix's notices look for.
	MailName string
	// BounceSizeLimit is bounce_size_limit: a returned message larger than
	// this many bytes is replaced by its headers. 0 means no limit, as in
	// Postfix; DefaultBounceSizeLimit is Postfix's default.
	BounceSizeLimit int
	// Now is the clock (Date, Message-Id, MIME boundary); nil means
	// time.Now.
	Now func() time.Time
	// MaximalQueueLifetime is maximal_queue_lifetime: Will-Retry-Until on
	// delay reports is the arrival time plus this, and the delay text says
	// "It will be retried until it is N day(s) old."
	MaximalQueueLifetime time.Duration
	// DelayWarningTime is delay_warning_time, for the delay text "Your
	// message could not be delivered for more than N hour(s)."
	DelayWarningTime time.Duration
	// DoubleBounceSender is double_bounce_sender, the local part of the
	// envelope sender of postmaster notices; empty means "double-bounce".
	DoubleBounceSender string
	// SMTPUTF8Enable is smtputf8_enable. When set, every notice is
	// labelled as Postfix labels it under its default smtputf8_enable =
	// yes: Content-Transfer-Encoding: 8bit and a charset=utf-8
	// notification whatever it holds. When unset, those labels appear only
	// when the notice holds something that is not US-ASCII.
	SMTPUTF8Enable bool
	// NoThreading leaves out References and In-Reply-To, as Postfix does
	// under its default enable_threaded_bounces = no. By default the
	// notice refers to the original's Message-ID, as Postfix does with
	// enable_threaded_bounces = yes.
	NoThreading bool
}

// Original is the message a notice reports on, as the queue holds it.
type Original struct {
	QueueID string
	// Sender is the envelope sender; "" is the null sender.
	Sender string
	// EnvID is the DSN ENVID (xtext-decoded), "" when none was given.
	EnvID string
	// RET is the DSN RET parameter: "FULL", "HDRS" or "" (FULL).
	RET string
	// Arrival is when the message was queued; the zero time omits
	// Arrival-Date and Will-Retry-Until.
	Arrival time.Time
	// Content is the stored message, header and body, CRLF line ends.
	// Empty content is reported as unavailable.
	Content []byte
	// SMTPUTF8 is set when the message was received with SMTPUTF8: the
	// report and attachment then use the message/global* types.
	SMTPUTF8 bool
}

// Rcpt is one recipient's status, as the delivery attempt recorded it.
type Rcpt struct {
	// Addr is the recipient address the status is for.
	Addr string
	// OrigAddr is the address as first received, before alias or
	// canonical rewriting (Postfix's original recipient); "" when not
	// known. When it differs from Addr the text says "(expanded from
	// <OrigAddr>)".
	OrigAddr string
	// ORCPT is the DSN ORCPT parameter as stored ("rfc822;x@y"), written
	// unchanged as Original-Recipient.
	ORCPT string
	// Notify is the DSN NOTIFY parameter as stored: "FAILURE,DELAY",
	// "SUCCESS", "NEVER" or "" (none given).
	Notify string
	// Action is the DSN action: "failed", "delayed", "delivered",
	// "relayed", "expanded". Failure notices always say "failed"; empty
	// means the kind's usual action.
	Action string
	// Status is the enhanced status code, "5.1.1".
	Status string
	// Diagnostic is the typed diagnostic, "smtp; 550 5.1.1 <x>: ...", or ""
	// when there was no remote reply (then Reason is reported with the
	// X-Postfix type).
	Diagnostic string
	// RemoteMTA is the remote host that gave the reply ("mx.example.test",
	// reported as "dns; mx.example.test"), or "".
	RemoteMTA string
	// Reason is the human text for the notification part: "host
	// mx.example.test[192.0.2.5] said: 550 ... (in reply to RCPT TO
	// command)".
	Reason string
}

var (
	// ErrNoRecipients means no recipient is to be reported: none was given,
	// or (for sender notices) none asked for this kind with its NOTIFY.
	// Postfix cancels such a notice; so should the caller.
	ErrNoRecipients = errors.New("bounce: no recipient to report")
	// ErrNullSender means the original came from the null sender, which
	// never gets a notice: report it to 2bounce_notice_recipient with
	// BuildPostmaster(..., doubleBounce=true) instead.
	ErrNullSender = errors.New("bounce: null sender gets no notice")
)

// NoticeSender is the envelope sender of a notice: the null sender for
// notices to the original sender, double-bounce@$myhostname for postmaster
// notices (so that a failing postmaster notice is never bounced again).
func NoticeSender(o Options, postmaster bool) string {
	if !postmaster {
		return ""
	}
	local := o.DoubleBounceSender
	if local == "" {
		local = "double-bounce"
	}
	return local + "@" + o.Myhostname
}

// Build composes the notice of kind k to the original sender: a
// multipart/report; report-type=delivery-status message with the
// notification text, the delivery-status report and the returned message
// (in full for failures unless RET=HDRS; headers only for delay and success
// reports and beyond BounceSizeLimit). Only the recipients whose NOTIFY
// wants kind k are reported (see Wanted); when there are none it returns
// ErrNoRecipients. An original from the null sender gets ErrNullSender.
func Build(o Options, k Kind, orig *Original, rcpts []Rcpt) ([]byte, error) {
	if err := check(o, k, orig); err != nil {
		return nil, err
	}
	if orig.Sender == "" {
		return nil, ErrNullSender
	}
	rs := Wanted(k, rcpts)
	if len(rs) == 0 {
		return nil, ErrNoRecipients
	}
	n := notice{
		o: o, kind: k, orig: orig, rcpts: rs,
		to:   orig.Sender,
		full: k == Failure && !strings.EqualFold(strings.TrimSpace(orig.RET), "HDRS"),
	}
	return n.compose(), nil
}

// BuildPostmaster composes a postmaster notice (notify_classes bounce,
// 2bounce, delay) addressed to to (bounce_notice_recipient,
// 2bounce_notice_recipient or delay_notice_recipient; a bare local part is
// qualified with $myhostname, "" means postmaster). It reports every
// recipient regardless of NOTIFY, has no template text, subject "Postmaster
// Copy: Undelivered Mail" ("Postmaster Warning: Delayed Mail" for delays)
// and Auto-Submitted: auto-generated. The attachment is the headers of the
// original, or the whole original (within BounceSizeLimit) for a failure
// with doubleBounce set: the undeliverable bounce itself, Postfix's last
// chance to get it to someone. Send it from NoticeSender(o, true).
func BuildPostmaster(o Options, k Kind, orig *Original, rcpts []Rcpt, to string, doubleBounce bool) ([]byte, error) {
	if err := check(o, k, orig); err != nil {
		return nil, err
	}
	if len(rcpts) == 0 {
		return nil, ErrNoRecipients
	}
	if to == "" {
		to = "postmaster"
	}
	n := notice{
		o: o, kind: k, orig: orig, rcpts: rcpts,
		to:         to,
		postmaster: true,
		double:     doubleBounce,
		full:       doubleBounce && k == Failure,
	}
	return n.compose(), nil
}

func check(o Options, k Kind, orig *Original) error {
	switch {
	case !k.valid():
		return fmt.Errorf("bounce: unknown notice kind %d", int(k))
	case orig == nil:
		return errors.New("bounce: no original message")
	case strings.TrimSpace(o.Myhostname) == "":
		return errors.New("bounce: myhostname is empty")
	}
	return nil
}
