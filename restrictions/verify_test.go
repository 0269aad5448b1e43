package restrictions

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"postgate/greylist"
)

// fakeProber answers probes from a table, after a delay, and counts them.
type fakeProber struct {
	delay   time.Duration
	answers map[string]greylist.VerifyRecord // default: deliverable

	mu                  sync.Mutex
	probes              map[string]int
	running, maxRunning int
}

func (p *fakeProber) Probe(ctx context.Context, addr string) greylist.VerifyRecord {
	p.mu.Lock()
	p.probes[addr]++
	p.running++
	p.maxRunning = max(p.maxRunning, p.running)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running--
		p.mu.Unlock()
	}()
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return greylist.VerifyRecord{Status: greylist.VerifyDefer, Text: "probe interrupted"}
	}
	if r, ok := p.answers[addr]; ok {
		return r
	}
	return greylist.VerifyRecord{Status: greylist.VerifyOK, Text: "250 2.1.5 Ok"}
}

func (p *fakeProber) count(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes[addr]
}

func TestRejectUnverified(t *testing.T) {
	const said = "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <gone@dst.test>: Recipient address rejected: User unknown (in reply to RCPT TO command)"
	newProber := func(delay time.Duration) *fakeProber {
		return &fakeProber{delay: delay, probes: map[string]int{},
			answers: map[string]greylist.VerifyRecord{
				"gone@dst.test":  {Status: greylist.VerifyBounce, Text: said},
				"later@dst.test": {Status: greylist.VerifyDefer, Text: "connect to 127.0.0.1[127.0.0.1]:1: Connection refused"},
				"bad@src.test":   {Status: greylist.VerifyBounce, Text: "no such sender"},
			}}
	}
	check := func(l *Lists, sender, rcpt string) Verdict {
		req := &Request{ClientAddr: netip.MustParseAddr("198.51.100.1"), ClientName: "mx.src.test", Sender: sender, Recipient: rcpt}
		return l.Check(context.Background(), Rcpt, req, nil)
	}
	base := func(p Prober) Options {
		return Options{DelayReject: true, RelayBeforeRecipient: true, MyDestination: mustDomains(t, "dst.test"),
			StateStore: greylist.NewMemory(), Verify: VerifyOptions{Prober: p, PollDelay: 50 * time.Millisecond}}
	}
	params := map[string]string{"smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient, permit"}

	for _, c := range []struct {
		name  string
		setup func(o *Options)
		rcpt  string
		want  string // "" accepted
	}{
		{"unknown", nil, "gone@dst.test", "450 4.1.1 <gone@dst.test>: Recipient address rejected: unverified address: " + said},
		{"unknown_550", func(o *Options) { o.Verify.Recipient.RejectCode = 550 }, "gone@dst.test",
			"550 5.1.1 <gone@dst.test>: Recipient address rejected: undeliverable address: " + said},
		{"reason", func(o *Options) { o.Verify.Recipient.RejectCode = 550; o.Verify.Recipient.Reason = "No such user" }, "gone@dst.test",
			"550 5.1.1 <gone@dst.test>: Recipient address rejected: undeliverable address: No such user"},
		{"deferred", nil, "later@dst.test", "450 4.1.1 <later@dst.test>: Recipient address rejected: unverified address: connect to 127.0.0.1[127.0.0.1]:1: Connection refused"},
		{"known", nil, "u@dst.test", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProber(0)
			o := base(p)
			if c.setup != nil {
				c.setup(&o)
			}
			l := mustCompile(t, params, o)
			for i := range 2 {
				v := check(l, "s@src.test", c.rcpt)
				if got := v.Reply.String(); v.Decision != Reject && c.want != "" || v.Decision == Reject && got != c.want {
					t.Fatalf("query %d: %v %q, want %q", i, v.Decision, got, c.want)
				}
			}
			if n := p.count(c.rcpt); n != 1 {
				t.Errorf("%d probes, want 1 (the second answer is cached)", n)
			}
		})
	}

	t.Run("in_progress", func(t *testing.T) {
		p := newProber(time.Second)
		o := base(p)
		o.Verify.PollCount = 1
		l := mustCompile(t, params, o)
		want := "450 4.1.1 <gone@dst.test>: Recipient address rejected: unverified address: Address verification in progress"
		if v := check(l, "s@src.test", "gone@dst.test"); v.Reply.String() != want {
			t.Fatalf("got %v %q, want %q", v.Decision, v.Reply.String(), want)
		}
		// Polling waits for the probe this node has out.
		o.Verify.PollCount, o.Verify.PollDelay = 2, 5*time.Second
		l = mustCompile(t, params, o)
		start := time.Now()
		if v := check(l, "s@src.test", "u@dst.test"); v.Decision != Permit {
			t.Fatalf("known address after polling: %+v", v)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("polling took %v: the probe's answer did not wake it", d)
		}
	})

	t.Run("defer_if_permit", func(t *testing.T) {
		// A later reject wins over the deferral, as in Postfix.
		l := mustCompile(t, map[string]string{"smtpd_recipient_restrictions": "reject_unauth_destination, reject_unverified_recipient, reject"}, base(newProber(0)))
		if v := check(l, "s@src.test", "gone@dst.test"); v.Reply.String() != "554 5.7.1 <gone@dst.test>: Recipient address rejected: Access denied" {
			t.Errorf("got %q", v.Reply.String())
		}
	})

	t.Run("sender", func(t *testing.T) {
		l := mustCompile(t, map[string]string{"smtpd_sender_restrictions": "reject_unverified_sender"}, base(newProber(0)))
		want := "450 4.1.7 <bad@src.test>: Sender address rejected: unverified address: no such sender"
		if v := check(l, "bad@src.test", "u@dst.test"); v.Reply.String() != want {
			t.Errorf("got %q, want %q", v.Reply.String(), want)
		}
		if v := check(l, "", "u@dst.test"); v.Decision == Reject {
			t.Errorf("null sender: %+v", v)
		}
	})

	t.Run("concurrency", func(t *testing.T) {
		// A burst of new addresses: every one is probed, at most
		// maxProbes at once.
		p := newProber(300 * time.Millisecond)
		o := base(p)
		o.Verify.PollCount = 1
		l := mustCompile(t, params, o)
		const n = maxProbes + 10
		for i := range n {
			check(l, "s@src.test", fmt.Sprintf("u%d@dst.test", i))
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			p.mu.Lock()
			done, peak := len(p.probes) == n && p.running == 0, p.maxRunning
			p.mu.Unlock()
			if done {
				if peak != maxProbes {
					t.Errorf("%d probes at once, want %d", peak, maxProbes)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("probes not done: %d of %d", len(p.probes), n)
			}
		}
	})

	t.Run("store_down", func(t *testing.T) {
		o := base(newProber(0))
		o.StateStore = failingStore{}
		l := mustCompile(t, params, o)
		v := check(l, "s@src.test", "u@dst.test")
		if v.Reply.String() != "450 4.1.1 <u@dst.test>: Recipient address rejected: address verification problem" ||
			len(v.Log) == 0 || v.Log[0].Kind != LogWarning {
			t.Errorf("got %q, log %+v", v.Reply.String(), v.Log)
		}
	})
}
