package queue

import (
	"strings"
	"testing"
	"time"
)

// The remote reply a failure quotes reaches the Bouncer with it, for the
// recipients that got it and for those suspended behind the destination
// it killed, whose reason says "delivery temporarily suspended: " before
// the same reply (Postfix's qmgr defers them with the delivery agent's
// whole status). A failure of our own quotes no reply.
func TestManagerReplyReachesNotice(t *testing.T) {
	s := openQ(t, t.TempDir(), Options{})
	clock := newFakeClock()
	refused := &Reply{Host: "mx.down.example", Code: 421, DSN: "4.3.2", Text: "421-4.3.2 Service shutting down\n421 4.3.2 try later"}
	const why = "host mx.down.example[192.0.2.1] refused to talk to me: 421-4.3.2 Service shutting down 421 4.3.2 try later"
	tr := newFakeTransport(func(d *Delivery, rcpt string) Result {
		switch {
		case strings.HasSuffix(rcpt, "@down.example"):
			return Result{Status: StatusDeferred, DSN: "4.3.2", Reason: why, Relay: "mx.down.example[192.0.2.1]:25", Reply: refused, SiteFail: true}
		case strings.HasSuffix(rcpt, "@lost.example"):
			return Result{Status: StatusDeferred, DSN: "4.4.1", Reason: "connect to mx.lost.example[192.0.2.2]:25: Connection refused"}
		}
		return sentResult() // the notices
	})
	var bouncer fakeBouncer
	runManager(t, s, ManagerOptions{
		Transports: map[string]Transport{"smtp": tr}, Bouncer: &bouncer,
		Now: clock.Now, alarm: clock.alarm, MinimalBackoff: time.Hour,
		// Try once: every deferral is returned at once.
		MaximalQueueLifetime: 0,
	})
	first := mustAppend(t, s, oneRcpt("s@example.net", "a@down.example", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the first notice", gone(s, first))
	second := mustAppend(t, s, oneRcpt("s@example.net", "b@down.example", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the second notice", gone(s, second))
	third := mustAppend(t, s, oneRcpt("s@example.net", "c@lost.example", clock.Now()), []byte("x\r\n"))
	waitFor(t, "the third notice", gone(s, third))
	down := 0
	for _, c := range tr.callList() {
		if c.nexthop == "down.example" {
			down++
		}
	}
	if down != 1 {
		t.Fatalf("%d deliveries to the dead destination, want 1", down)
	}
	ns := bouncer.list()
	if len(ns) != 3 {
		t.Fatalf("%d notices, want 3", len(ns))
	}
	for i, want := range []struct {
		why   string
		reply *Reply
	}{
		{why, refused},
		{"delivery temporarily suspended: " + why, refused},
		{"connect to mx.lost.example[192.0.2.2]:25: Connection refused", nil},
	} {
		if f := ns[i].Failed; len(f) != 1 || f[0].Reason != want.why || f[0].Reply != want.reply {
			t.Errorf("notice %d: %+v, want reason %q and reply %v", i, f, want.why, want.reply)
		}
	}
}
