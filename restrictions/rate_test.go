package restrictions

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"postgate/greylist"
)

func TestRateChecks(t *testing.T) {
	base := Options{DelayReject: true, RelayBeforeRecipient: true, MyDestination: mustDomains(t, "dst.test"),
		NullAccessLookupKey: "<>", ParentDomainMatchesSubdomains: func(string) bool { return true }}
	check := func(l *Lists, stage Stage, sender, to string) Verdict {
		req := &Request{ClientAddr: netip.MustParseAddr("192.0.2.1"), ClientName: "mx.src.test", Sender: sender, Recipient: to}
		return l.Check(context.Background(), stage, req, nil)
	}
	// reply is what a sequence of RCPTs got, one word each: ok or the reply.
	replies := func(l *Lists, sender string, rcpts ...string) string {
		var out []string
		for _, r := range rcpts {
			v := check(l, Rcpt, sender, r)
			if v.Decision == Reject {
				out = append(out, v.Reply.String())
			} else {
				out = append(out, "ok")
			}
		}
		return strings.Join(out, " | ")
	}
	compile := func(t *testing.T, list string, o Options) *Lists {
		o.StateStore = greylist.NewMemory()
		return mustCompile(t, map[string]string{"smtpd_recipient_restrictions": "reject_unauth_destination, " + list}, o)
	}

	t.Run("sender", func(t *testing.T) {
		l := compile(t, "check_sender_rate inline:{ a@src.test=2/1h, src.test=3/1h, <>=1/1h, free@src.test=DUNNO, bad.test=x/1h }", base)
		over := func(s string) string {
			return fmt.Sprintf("450 4.7.1 <%s>: Sender address rejected: Sender rate limit exceeded", s)
		}
		for _, c := range []struct {
			sender string
			n      int
			want   string
		}{
			{"a@src.test", 3, "ok | ok | " + over("a@src.test")},
			// The domain's limit counts each address apart.
			{"b@src.test", 4, "ok | ok | ok | " + over("b@src.test")},
			{"C@Sub.Src.Test", 4, "ok | ok | ok | " + over("C@Sub.Src.Test")},
			{"", 2, "ok | " + over("")},
			{"free@src.test", 5, "ok | ok | ok | ok | ok"},
			{"x@elsewhere.test", 5, "ok | ok | ok | ok | ok"},
			{"x@bad.test", 1, "451 4.3.5 Server configuration error"},
		} {
			rcpts := make([]string, c.n)
			for i := range rcpts {
				rcpts[i] = fmt.Sprintf("u%d@dst.test", i)
			}
			if got := replies(l, c.sender, rcpts...); got != c.want {
				t.Errorf("<%s>:\n got %s\nwant %s", c.sender, got, c.want)
			}
		}
		// At MAIL nothing is counted or refused.
		for range 3 {
			if v := check(l, Mail, "a@src.test", ""); v.Decision == Reject {
				t.Errorf("MAIL: %+v", v)
			}
		}
	})

	t.Run("recipient_domain", func(t *testing.T) {
		l := compile(t, "check_recipient_domain_rate inline:{ dst.test=2/1h }", base)
		over := func(r string) string {
			return fmt.Sprintf("450 4.7.1 <%s>: Recipient address rejected: Recipient domain rate limit exceeded", r)
		}
		if got, want := replies(l, "s@src.test", "a@dst.test", "b@DST.test", "c@dst.test"), "ok | ok | "+over("c@dst.test"); got != want {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
		// A subdomain has the parent's limit and its own count.
		if got, want := replies(l, "t@src.test", "a@x.dst.test", "b@x.dst.test", "c@x.dst.test"), "ok | ok | "+over("c@x.dst.test"); got != want {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	})

	t.Run("sliding_window", func(t *testing.T) {
		l := compile(t, "check_recipient_domain_rate inline:{ dst.test=1/1 }", base)
		if got := replies(l, "s@src.test", "a@dst.test", "b@dst.test"); !strings.HasPrefix(got, "ok | 450 ") {
			t.Fatalf("got %s", got)
		}
		time.Sleep(1100 * time.Millisecond)
		if got := replies(l, "s@src.test", "c@dst.test"); got != "ok" {
			t.Errorf("a second later: %s", got)
		}
	})

	t.Run("store_down", func(t *testing.T) {
		params := map[string]string{"smtpd_recipient_restrictions": "reject_unauth_destination, check_sender_rate inline:{ src.test=1/1h }"}
		o := base
		o.StateStore = failingStore{}
		l := mustCompile(t, params, o)
		v := check(l, Rcpt, "s@src.test", "u@dst.test")
		if v.Decision == Reject || len(v.Log) != 1 || v.Log[0].Kind != LogWarning ||
			v.Log[0].Text != "check_sender_rate: state store redis://127.0.0.1:1: connection refused; the recipient is let through (postgate_state_failure_action)" {
			t.Fatalf("first failure: %+v", v)
		}
		if v = check(l, Rcpt, "s@src.test", "u@dst.test"); v.Decision == Reject || len(v.Log) != 0 {
			t.Errorf("second failure within a minute: %+v", v)
		}
		o.Greylist.FailureDefer = true
		v = check(mustCompile(t, params, o), Rcpt, "s@src.test", "u@dst.test")
		if v.Reply.String() != "451 4.3.0 <s@src.test>: Temporary lookup failure" || !strings.Contains(v.Log[0].Text, "the recipient is deferred") {
			t.Errorf("defer: %+v", v)
		}
	})
}

func TestParseRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want greylist.Rate
		err  bool
	}{
		{in: "100/1h", want: greylist.Rate{N: 100, Per: time.Hour}},
		{in: " 5 / 30 ", want: greylist.Rate{N: 5, Per: 30 * time.Second}},
		{in: "1/2d", want: greylist.Rate{N: 1, Per: 48 * time.Hour}},
		{in: "0/1h", err: true},
		{in: "100", err: true},
		{in: "100/", err: true},
		{in: "100/0", err: true},
		{in: "x/1h", err: true},
		{in: "10/1y", err: true},
	} {
		got, err := ParseRate(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseRate(%q) = %+v, %v", c.in, got, err)
		}
	}
}

// FuzzParseRate: a rate limit is admin input (a table value); what parses
// is at least one event per at least a second, and reads back the same
// when written in seconds.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/1h", "1/1", " 5 / 30m", "0/1h", "1/", "/1h", "9999999999/1w", "1/2147483648"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r, err := ParseRate(v)
		if err != nil {
			return
		}
		if r.N < 1 || r.Per < time.Second {
			t.Fatalf("%q: %+v", v, r)
		}
		again, err := ParseRate(fmt.Sprintf("%d/%ds", r.N, int64(r.Per/time.Second)))
		if err != nil || again != r {
			t.Fatalf("%q: %+v reads back as %+v, %v", v, r, again, err)
		}
	})
}
