package gateway

import (
	"cmp"
	"context"
	"io"
	"strings"

	"postgate/gateway/config"
	"postgate/queue"
	"postgate/queue/bounce"
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
		failed = append(failed, bounce.Rcpt{Addr: r.Addr, OrigAddr: r.Orig, ORCPT: r.ORCPT, Notify: r.Notify, Action: "failed",
			Status: f.DSN, Diagnostic: diagnostic(f.Reason), RemoteMTA: remoteMTA(f.Relay), Reason: f.Reason})
	}
	delayed := make([]bounce.Rcpt, 0, len(n.Delays))
	for _, f := range n.Delays {
		r := m.Recipients[f.Index]
		delayed = append(delayed, bounce.Rcpt{Addr: r.Addr, OrigAddr: r.Orig, ORCPT: r.ORCPT, Notify: r.Notify, Action: "delayed",
			Status: f.DSN, Diagnostic: diagnostic(f.Reason), RemoteMTA: remoteMTA(f.Relay), Reason: f.Reason})
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

// diagnostic turns a delivery reason into a Diagnostic-Code value: the
// remote reply when the reason quotes one ("host H[IP] said: 550 ..."),
// else "" (the bounce package then writes the reason as X-Postfix).
func diagnostic(reason string) string {
	if _, reply, ok := strings.Cut(reason, " said: "); ok {
		reply = strings.TrimSuffix(reply, ")")
		if i := strings.LastIndex(reply, " (in reply to "); i >= 0 {
			reply = reply[:i]
		}
		return "smtp; " + reply
	}
	return ""
}

// remoteMTA is the host name of a relay "host[ip]:port", "" for none.
func remoteMTA(relay string) string {
	if relay == "" || relay == "none" {
		return ""
	}
	if i := strings.IndexByte(relay, '['); i > 0 {
		return relay[:i]
	}
	return relay
}
