package gateway

import (
	"context"
	"strings"
	"testing"

	"postgate/gateway/config"
	"postgate/queue"
)

func TestPerTransport(t *testing.T) {
	transports := map[string]queue.Transport{"smtp": errorTransport{}, "relay": errorTransport{}}
	for _, tc := range []struct {
		name, main string
		want       map[string]int
		err        string
	}{
		{"defaults", "", map[string]int{"smtp": 20, "relay": 20, "other": 20}, ""},
		{"default changed", "default_destination_concurrency_limit = 5\n", map[string]int{"smtp": 5, "other": 5}, ""},
		{"per transport", "relay_destination_concurrency_limit = 2\nsmtp_destination_concurrency_limit = $two\ntwo = 3\n",
			map[string]int{"relay": 2, "smtp": 3, "other": 20}, ""},
		{"bad", "smtp_destination_concurrency_limit = lots\n", nil, `main.cf:1: parameter smtp_destination_concurrency_limit: bad value "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("/d/main.cf", []byte(tc.main), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			f, err := perTransport(cfg, "destination_concurrency_limit", transports)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for tr, n := range tc.want {
				if got := f(tr); got != n {
					t.Errorf("%s: %d, want %d", tr, got, n)
				}
			}
		})
	}
}

func TestErrorTransport(t *testing.T) {
	env := &queue.Envelope{Recipients: []queue.Recipient{{Addr: "u@x.test"}}}
	for _, tc := range []struct {
		nexthop, dsn, reason string
		status               queue.ResultStatus
	}{
		{"5.1.1 no such user", "5.1.1", "no such user", queue.StatusBounced},
		{"4.3.2 try later", "4.3.2", "try later", queue.StatusDeferred},
		{"mailbox gone", "5.0.0", "mailbox gone", queue.StatusBounced},
	} {
		r := errorTransport{}.Deliver(context.Background(), &queue.Delivery{Envelope: env, Rcpts: []int{0}, Nexthop: tc.nexthop})
		if len(r) != 1 || r[0].DSN != tc.dsn || r[0].Reason != tc.reason || r[0].Status != tc.status {
			t.Errorf("%q: %+v", tc.nexthop, r)
		}
	}
}
