package restrictions

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"postgate/greylist"
	"postgate/rules"
)

// failingStore is a store that is down.
type failingStore struct{}

var errStoreDown = errors.New("state store redis://127.0.0.1:1: connection refused")

func (failingStore) Greylist(context.Context, greylist.Key, time.Time, greylist.Policy) (greylist.Result, error) {
	return greylist.Result{}, errStoreDown
}
func (failingStore) Connect(context.Context, string, greylist.ConnLimits) (greylist.Conn, error) {
	return greylist.Conn{}, errStoreDown
}
func (failingStore) Disconnect(context.Context, greylist.Conn) error { return errStoreDown }
func (failingStore) Event(context.Context, string, greylist.Rate) (greylist.Count, error) {
	return greylist.Count{}, errStoreDown
}
func (failingStore) VerifyQuery(context.Context, string, time.Time, greylist.VerifyPolicy) (greylist.VerifyRecord, bool, error) {
	return greylist.VerifyRecord{}, false, errStoreDown
}
func (failingStore) VerifyUpdate(context.Context, string, greylist.VerifyRecord, time.Time, greylist.VerifyPolicy) error {
	return errStoreDown
}
func (failingStore) Close() error { return nil }

func TestCheckGreylist(t *testing.T) {
	params := map[string]string{"smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination, check_greylist"}
	policy := greylist.Policy{Delay: time.Hour, RetryWindow: time.Hour, Lifetime: time.Hour}
	rcpt := func(l *Lists, client, sender, to string) Verdict {
		req := &Request{ClientAddr: netip.MustParseAddr(client), ClientName: "mx.src.test", Sender: sender, Recipient: to}
		return l.Check(context.Background(), Rcpt, req, nil)
	}
	base := Options{DelayReject: true, RelayBeforeRecipient: true, MyDestination: mustDomains(t, "dst.test"), StateStore: greylist.NewMemory()}

	t.Run("reply", func(t *testing.T) {
		o := base
		o.Greylist = GreylistOptions{Policy: policy, Text: "Greylisted for %s seconds (%r, 100%%)"}
		l := mustCompile(t, params, o)
		v := rcpt(l, "192.0.2.10", "s@src.test", "u@dst.test")
		if v.Decision != Reject || v.Reply.String() != "450 4.2.0 <u@dst.test>: Recipient address rejected: Greylisted for 3600 seconds (dst.test, 100%)" {
			t.Fatalf("first attempt: %+v", v)
		}
		if len(v.Log) != 1 || v.Log[0].What != "reject" || v.Log[0].Text != v.Reply.String() {
			t.Errorf("log: %+v", v.Log)
		}
		// Same /24: the same triplet, retried too early.
		if v = rcpt(l, "192.0.2.77", "s@src.test", "u@dst.test"); v.Decision != Reject || !strings.Contains(v.Reply.Text, "Greylisted for 3600 seconds") {
			t.Errorf("retry from the same network: %+v", v)
		}
		// mynetworks and unauthorized destinations come first.
		var err error
		if o.Mynetworks, err = rules.NewAddrList([]string{"192.0.2.0/24"}); err != nil {
			t.Fatal(err)
		}
		l = mustCompile(t, params, o)
		if v = rcpt(l, "192.0.2.10", "s@src.test", "new@dst.test"); v.Decision != Permit {
			t.Errorf("mynetworks: %+v", v)
		}
		if v = rcpt(l, "198.51.100.1", "s@src.test", "u@elsewhere.test"); v.Reply.Code != 554 {
			t.Errorf("relay: %+v", v)
		}
	})

	t.Run("default_text", func(t *testing.T) {
		o := base
		o.Greylist = GreylistOptions{Policy: policy}
		v := rcpt(mustCompile(t, params, o), "198.51.100.1", "s@src.test", "u@dst.test")
		if v.Reply.String() != "450 4.2.0 <u@dst.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/dst.test.html" {
			t.Errorf("got %s", v.Reply)
		}
	})

	t.Run("allowlists", func(t *testing.T) {
		o := base
		o.Greylist = GreylistOptions{Policy: policy,
			ClientAllowlist:    []string{"inline:{ 203.0.113=OK, 203.0.114.1=DUNNO }"},
			SenderAllowlist:    []string{"inline:{ friend.test=OK }"},
			RecipientAllowlist: []string{"inline:{ postmaster@=yes }"}}
		l := mustCompile(t, params, o)
		for _, c := range []struct {
			client, sender, rcpt string
			greylisted           bool
		}{
			{"203.0.113.9", "s@src.test", "u@dst.test", false},
			{"203.0.114.1", "s@src.test", "u@dst.test", true},
			{"198.51.100.1", "a@mail.friend.test", "u@dst.test", false},
			{"198.51.100.1", "", "postmaster@dst.test", false},
			{"198.51.100.1", "", "u@dst.test", true},
		} {
			v := rcpt(l, c.client, c.sender, c.rcpt)
			if got := v.Decision == Reject; got != c.greylisted {
				t.Errorf("%s %s %s: %+v", c.client, c.sender, c.rcpt, v)
			}
		}
	})

	t.Run("skip_unknown", func(t *testing.T) {
		o := base
		o.Greylist = GreylistOptions{Policy: policy, Skip: []string{"dnswl", "rbl"}}
		_, err := Compile(params, o)
		if err == nil || !strings.Contains(err.Error(), `postgate_greylist_skip: unknown "rbl": want dnswl or spf_pass`) {
			t.Errorf("got %v", err)
		}
	})

	t.Run("store_down", func(t *testing.T) {
		o := base
		o.StateStore = failingStore{}
		o.Greylist = GreylistOptions{Policy: policy}
		l := mustCompile(t, params, o)
		v := rcpt(l, "198.51.100.1", "s@src.test", "u@dst.test")
		if v.Decision == Reject || len(v.Log) != 1 || v.Log[0].Kind != LogWarning ||
			v.Log[0].Text != "check_greylist: state store redis://127.0.0.1:1: connection refused; the recipient is let through (postgate_state_failure_action)" {
			t.Fatalf("first failure: %+v", v)
		}
		if v = rcpt(l, "198.51.100.1", "s@src.test", "u@dst.test"); v.Decision == Reject || len(v.Log) != 0 {
			t.Errorf("second failure within a minute: %+v", v)
		}
		o.Greylist.FailureDefer = true
		l = mustCompile(t, params, o)
		v = rcpt(l, "198.51.100.1", "s@src.test", "u@dst.test")
		if v.Reply.String() != "451 4.3.0 <u@dst.test>: Temporary lookup failure" || !strings.Contains(v.Log[0].Text, "the recipient is deferred") {
			t.Errorf("defer: %+v", v)
		}
	})
}
