package gateway

import (
	"cmp"
	"context"
	"io"
	"strings"

	"postgate/gateway/config"
	"postgate/queue"
	"postgate/queue/bounce"
	"postgate/relay"
)

// bouncer decides who hears about mail that could not be delivered, as
// Postfix's bounce(8) with notify_classes: the sender gets a DSN (as its
// NOTIFY allows); with "bounce" in notify_classes the postmaster gets a
// copy; a bounce that itself fails (null sender) goes to the postmaster
// ("2bounce") from double-bounce@$myhostname; and a postmaster notice that
// fails is discarded and logged, so notices never loop.
type bouncer struct {
	opts          bounce.Options
	classes       map[string]bool
	bounceRcpt    string
	twoBounceRcpt string
	delayRcpt     string
	doubleBounce  string
	log           *MailLog
}

func newBouncer(cfg *config.Config, log *MailLog) *bouncer {
	b := &bouncer{
		opts: bounce.Options{
			Myhostname: cfg.Get("myhostname"),
			// MailName stays empty: the DSN fields keep Postfix's names
			// (X-Postfix-Queue-ID), which admins' tools parse.
			BounceSizeLimit:      int(cfg.Int("bounce_size_limit")),
			MaximalQueueLifetime: cfg.Duration("maximal_queue_lifetime"),
			DelayWarningTime:     cfg.Duration("delay_warning_time"),
		},
		classes:       map[string]bool{},
		bounceRcpt:    cfg.Get("bounce_notice_recipient"),
		twoBounceRcpt: cfg.Get("2bounce_notice_recipient"),
		delayRcpt:     cfg.Get("delay_notice_recipient"),
		log:           log,
	}
	b.doubleBounce = bounce.NoticeSender(b.opts, true)
	for _, c := range cfg.List("notify_classes") {
		b.classes[strings.ToLower(c)] = true
	}
	if b.classes["bounce"] {
		b.classes["2bounce"] = true // "bounce" implies "2bounce"
	}
	return b
}

func (b *bouncer) Notify(ctx context.Context, n *queue.Notice) ([]queue.Outgoing, error) {
	rc, err := n.Content()
	if err != nil {
		return nil, err
	}
	content, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	m := &n.Msg
	orig := &bounce.Original{QueueID: m.ID, Sender: m.Sender, EnvID: m.EnvID, RET: m.RET,
		Arrival: m.Arrival, Content: content}
	failed := make([]bounce.Rcpt, 0, len(n.Failed))
	for _, f := range n.Failed {
		r := m.Recipients[f.Index]
		failed = append(failed, noticeRcpt(r, f, "failed"))
	}
	delayed := make([]bounce.Rcpt, 0, len(n.Delays))
	for _, f := range n.Delays {
		r := m.Recipients[f.Index]
		delayed = append(delayed, noticeRcpt(r, f, "delayed"))
	}

	var out []queue.Outgoing
	var buildErr error
	queueIt := func(label, sender, to string, msg []byte, err error) {
		if err != nil {
			buildErr = cmp.Or(buildErr, err)
			return
		}
		out = append(out, queue.Outgoing{Label: label, Content: msg,
			Envelope: queue.Envelope{Sender: sender, Recipients: []queue.Recipient{{Addr: to}}}})
	}
	// toSender notifies the sender of the recipients whose NOTIFY wants it.
	toSender := func(label string, k bounce.Kind, rcpts []bounce.Rcpt) {
		if w := bounce.Wanted(k, rcpts); len(w) > 0 {
			msg, err := bounce.Build(b.opts, k, orig, w)
			queueIt(label, "", m.Sender, msg, err)
		}
	}
	// toPostmaster sends a notice from double-bounce@, so that its own
	// failure is discarded.
	toPostmaster := func(label string, k bounce.Kind, rcpts []bounce.Rcpt, to string, double bool) {
		if len(rcpts) > 0 {
			msg, err := bounce.BuildPostmaster(b.opts, k, orig, rcpts, to, double)
			queueIt(label, b.doubleBounce, to, msg, err)
		}
	}
	discarded := func() {
		if len(failed) > 0 {
			b.log.Logf("bounce", "%s: undeliverable postmaster notification discarded", m.ID)
		}
	}
	switch {
	case strings.EqualFold(m.Sender, b.doubleBounce):
		discarded() // a postmaster notice that failed: never notify about a notice
	case m.Sender == "":
		// A bounce that failed: the postmaster hears of it with 2bounce.
		if !b.classes["2bounce"] {
			discarded()
			break
		}
		toPostmaster("postmaster non-delivery notification", bounce.Failure, failed, b.twoBounceRcpt, true)
	default:
		toSender("sender non-delivery notification", bounce.Failure, failed)
		if b.classes["bounce"] {
			toPostmaster("postmaster non-delivery notification", bounce.Failure, failed, b.bounceRcpt, false)
		}
		toSender("sender delay notification", bounce.Delay, delayed)
		if b.classes["delay"] {
			toPostmaster("postmaster delay notification", bounce.Delay, delayed, b.delayRcpt, false)
		}
	}
	if buildErr != nil {
		return nil, buildErr
	}
	return out, nil
}

// noticeRcpt is how a notice reports recipient r: the remote server's
// reply, when the failure quotes one, is the Diagnostic-Code ("smtp; "
// and its lines joined with spaces, as Postfix's smtp client joins them;
// "smtp" for LMTP too) and its host the Remote-MTA. Without a reply the
// notice gives the reason (X-Postfix) and no Remote-MTA, as Postfix does
// for failures of its own such as a lost connection. A recipient that
// nothing rewrote was received as it is, so its Original-Recipient is its
// own address, as Postfix's cleanup records one for every recipient.
func noticeRcpt(r queue.Recipient, f queue.FailedRcpt, action string) bounce.Rcpt {
	n := bounce.Rcpt{Addr: r.Addr, OrigAddr: cmp.Or(r.Orig, r.Addr), ORCPT: r.ORCPT, Notify: r.Notify, Action: action,
		Status: f.DSN, Reason: f.Reason}
	if rp := f.Reply; rp != nil {
		n.Diagnostic = "smtp; " + strings.ReplaceAll(rp.Text, "\n", " ")
		n.RemoteMTA = rp.Host
	}
	return n
}

// replyConverter turns relay results' remote replies into the queue's,
// once for the results that share one (every recipient of a message that
// the end of data accepted).
type replyConverter struct {
	last *relay.Reply
	conv *queue.Reply
}

func (c *replyConverter) convert(r *relay.Reply) *queue.Reply {
	if r == nil {
		return nil
	}
	if r != c.last {
		c.last, c.conv = r, &queue.Reply{Host: r.Host, Code: r.Code, DSN: r.DSN, Text: r.Text}
	}
	return c.conv
}
