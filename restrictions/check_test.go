package restrictions

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"postgate/rules"
)

func mustCompile(t testing.TB, params map[string]string, o Options) *Lists {
	t.Helper()
	l, err := Compile(params, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestVerdictFields(t *testing.T) {
	l := mustCompile(t, map[string]string{
		"smtpd_recipient_restrictions": "check_recipient_access inline:{ {a@x.test = 421 4.7.0 bye}, b@x.test=HOLD, c@x.test=OK }, reject_unauth_destination",
	}, Options{DelayReject: true, RelayBeforeRecipient: true})
	req := &Request{ClientAddr: netip.MustParseAddr("192.0.2.1"), ClientName: "unknown", Sender: "s@src.test", Recipient: "a@x.test"}
	v := l.Check(context.Background(), Rcpt, req, nil)
	if v.Decision != Reject || v.Reply != (rules.Reply{Code: 421, DSN: "4.7.0", Text: "<a@x.test>: Recipient address rejected: bye"}) || !v.Disconnect {
		t.Errorf("verdict %+v", v)
	}
	if v.Reply.String() != "421 4.7.0 <a@x.test>: Recipient address rejected: bye" {
		t.Errorf("Reply() = %q", v.Reply)
	}
	txn := &Txn{}
	req.Recipient = "b@x.test"
	v = l.Check(context.Background(), Rcpt, req, txn)
	if v.Decision != Reject || v.Reply.Code != 554 || len(v.Effects) != 1 || v.Effects[0].Action != rules.ActionHold || !txn.Held() {
		t.Errorf("HOLD then reject: %+v held=%v", v, txn.Held())
	}
	req.Recipient = "c@x.test"
	if v = l.Check(context.Background(), Rcpt, req, txn); v.Decision != Permit {
		t.Errorf("OK: %+v", v)
	}
	txn.Reset()
	if txn.Held() || txn.Discarded() {
		t.Error("Reset kept transaction state")
	}
}

func TestStageStrings(t *testing.T) {
	want := map[Stage]string{Connect: "CONNECT", Helo: "HELO", Ehlo: "EHLO", Mail: "MAIL", Rcpt: "RCPT", Data: "DATA", EndOfData: "END-OF-MESSAGE", Etrn: "ETRN"}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), w)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	l := mustCompile(t, map[string]string{"smtpd_recipient_restrictions": "sleep 30, permit"}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	v := l.Check(ctx, Rcpt, &Request{Recipient: "u@x.test"}, nil)
	if time.Since(start) > 5*time.Second || v.Decision != Permit {
		t.Errorf("sleep: %v after %v", v.Decision, time.Since(start))
	}
}

// Many sessions share one Lists: value lists are compiled and cached
// concurrently (run with -race).
func TestConcurrentChecks(t *testing.T) {
	l := mustCompile(t, map[string]string{
		"smtpd_recipient_restrictions": "check_recipient_access inline:{ {a@x.test = permit_sasl_authenticated, reject}, {b@x.test = defer_if_permit, permit}, c@x.test=HOLD }, permit",
	}, Options{DelayReject: true})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			txn := &Txn{}
			for j := 0; j < 200; j++ {
				rcpt := fmt.Sprintf("%c@x.test", 'a'+(i+j)%4)
				v := l.Check(context.Background(), Rcpt, &Request{Sender: "s@y.test", Recipient: rcpt}, txn)
				want := map[string]Decision{"a@x.test": Reject, "b@x.test": Reject, "c@x.test": Permit, "d@x.test": Permit}[rcpt]
				if v.Decision != want {
					t.Errorf("%s: %v, want %v", rcpt, v.Decision, want)
					return
				}
				txn.Reset()
			}
		}(i)
	}
	wg.Wait()
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"permit_mynetworks, reject_unauth_destination",
		"check_recipient_access inline:{a=b}, warn_if_reject reject",
		"sleep 0, defer_if_permit, {x}",
		"check_policy_service { inet:1:2, timeout=1 }",
		"warn_if_reject",
		"static:OK",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		l, err := Compile(map[string]string{"smtpd_recipient_restrictions": list}, Options{
			OpenTable: func(spec string) (rules.Table, error) {
				if len(spec) > 6 && spec[:6] == "fail:x" {
					return rules.Open("fail:x")
				}
				return rules.Open("static:DUNNO")
			},
		})
		if err != nil {
			return
		}
		_ = l.RelayGuarded()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		l.Check(ctx, Rcpt, &Request{Recipient: "u@x.test", Sender: "s@y.test"}, nil)
	})
}
