// Package bounce composes delivery status notifications (RFC 3464) and
// postmaster notices the way Postfix's bounce(8) daemon writes them: the
// same subjects, template texts, MIME layout, per-message and per-recipient
// fields and line wrapping, so that people and bounce processors that know
// Postfix's notices recognise postgate's.
//
// It neither queues nor sends anything: Build and BuildPostmaster return the
// message bytes (CRLF line ends) and the queue appends them as a new message
// from the envelope sender that NoticeSender names.
//
// # Which notice carries what (as bounce(8) does it)
//
//	notice                    envelope sender   recipients      attachment
//	Failure to sender         <>                NOTIFY wanted   full, or headers (RET=HDRS)
//	Delay to sender           <>                NOTIFY wanted   headers
//	Success to sender         <>                NOTIFY=SUCCESS  headers
//	postmaster copy           double-bounce     all             headers
//	double bounce (2bounce)   double-bounce     all             full
//
// The full message is replaced by its headers when it is larger than
// bounce_size_limit (Options.BounceSizeLimit). A mail from the null sender
// never gets a sender notice (Build returns ErrNullSender); it is reported
// to 2bounce_notice_recipient with BuildPostmaster(..., doubleBounce=true).
//
// # Fidelity
//
// testdata/postfix-3.7 holds notices written by a real Postfix 3.7.11;
// TestPostfixFixtures rebuilds each from the inputs it reports and compares
// byte for byte (all but the Message-Id, which names Postfix's new queue
// ID; postgate's is "<YYYYMMDDhhmmss.QUEUEID.kind@myhostname>"). Two
// Postfix defaults are options here: smtputf8_enable = yes labels every
// notice 8bit/utf-8 (Options.SMTPUTF8Enable; unset, the labels appear only
// when needed), and enable_threaded_bounces = no leaves out References and
// In-Reply-To (Options.NoThreading; unset, they are written).
package bounce
