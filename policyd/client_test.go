package policyd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"postgate/policyd/policydtest"
)

func newClient(t *testing.T, spec string, o Options) *Client {
	t.Helper()
	c, err := New(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// query asks c and returns the action and the warnings it logged.
func query(c *Client, req *Request) (string, bool, []string) {
	var warnings []string
	action, ok := c.Query(context.Background(), req, func(w string) { warnings = append(warnings, w) })
	return action, ok, warnings
}

func TestRequestAndReuse(t *testing.T) {
	f := policydtest.Start(t, "tcp", "", func([]string) string { return "foo=bar\naction=DUNNO\naction=REJECT\n\n" })
	c := newClient(t, "inet:"+f.Addr, Options{PolicyContext: "submission"})
	req := &Request{ProtocolState: "RCPT", ProtocolName: "ESMTP", ClientAddress: "192.0.2.1", ClientName: "unknown",
		ClientPort: "4242", ReverseClientName: "unknown", ServerAddress: "127.0.0.1", ServerPort: "25",
		HeloName: "helo.test", Sender: "s@src.test", Recipient: "r@dst.test", QueueID: "4ABCD", Instance: "1.2.3.0", Size: 1234}
	for range 3 {
		if action, ok, w := query(c, req); !ok || action != "DUNNO" || len(w) > 0 {
			t.Fatalf("query: %q %v %q", action, ok, w)
		}
	}
	// Postfix 3.7's attributes in its order.
	want := "request=smtpd_access_policy protocol_state=RCPT protocol_name=ESMTP client_address=192.0.2.1 " +
		"client_name=unknown client_port=4242 reverse_client_name=unknown server_address=127.0.0.1 server_port=25 " +
		"helo_name=helo.test sender=s@src.test recipient=r@dst.test recipient_count=0 queue_id=4ABCD instance=1.2.3.0 " +
		"size=1234 etrn_domain= stress= sasl_method= sasl_username= sasl_sender= ccert_subject= ccert_issuer= " +
		"ccert_fingerprint= ccert_pubkey_fingerprint= encryption_protocol= encryption_cipher= encryption_keysize=0 " +
		"policy_context=submission"
	if got := strings.Join(f.Requests()[0], " "); got != want {
		t.Errorf("request\n got %s\nwant %s", got, want)
	}
	if n, conns, _ := f.Counts(); n != 3 || conns != 1 {
		t.Errorf("%d requests on %d connections, want 3 on 1", n, conns)
	}
}

func TestRequestLimitAndIdle(t *testing.T) {
	f := policydtest.Start(t, "tcp", "", func([]string) string { return "action=OK\n\n" })
	c := newClient(t, "{ inet:"+f.Addr+", request_limit=2 }", Options{MaxIdle: 300 * time.Millisecond})
	for range 4 {
		if _, ok, w := query(c, &Request{}); !ok {
			t.Fatal(w)
		}
	}
	if _, conns, _ := f.Counts(); conns != 2 {
		t.Errorf("request_limit=2: 4 requests on %d connections, want 2", conns)
	}
	// The second connection was closed after its second request; a new
	// one is closed by the client after max_idle.
	query(c, &Request{})
	time.Sleep(700 * time.Millisecond)
	if _, conns, closed := f.Counts(); conns != 3 || closed != 3 {
		t.Errorf("after max_idle: %d connections, %d closed; want 3, 3", conns, closed)
	}
}

func TestMaxTTL(t *testing.T) {
	f := policydtest.Start(t, "tcp", "", func([]string) string { return "action=OK\n\n" })
	c := newClient(t, "inet:"+f.Addr, Options{MaxTTL: 200 * time.Millisecond})
	query(c, &Request{})
	query(c, &Request{})
	time.Sleep(300 * time.Millisecond)
	query(c, &Request{})
	if _, conns, _ := f.Counts(); conns != 2 {
		t.Errorf("max_ttl: %d connections, want 2", conns)
	}
}

// A connection the server closed while idle is not used again, and costs
// no attempt (retry_delay would show).
func TestServerClosedIdle(t *testing.T) {
	f := policydtest.Start(t, "tcp", "", func([]string) string { return "action=OK\n\n" + policydtest.Close })
	c := newClient(t, "inet:"+f.Addr, Options{RetryDelay: 5 * time.Second})
	for range 2 {
		time.Sleep(100 * time.Millisecond) // the server's close has arrived
		start := time.Now()
		if action, ok, w := query(c, &Request{}); !ok || action != "OK" || len(w) > 0 || time.Since(start) > 2*time.Second {
			t.Errorf("after a dead idle connection: %q %v %q in %v", action, ok, w, time.Since(start))
		}
	}
	if n, conns, _ := f.Counts(); n != 2 || conns != 2 {
		t.Errorf("%d requests on %d connections, want 2 on 2", n, conns)
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		want   []string // warnings, with ADDR for the server
	}{
		// Nothing read at all: only attr_clnt's warnings (the timeout's
		// as the real Postfix 3.7 logs it, test/policy_test.go).
		{"hangs", policydtest.Hang, []string{
			"problem talking to server ADDR: Connection timed out",
			"problem talking to server ADDR: Connection timed out"}},
		{"closes", policydtest.Close, []string{
			"problem talking to server ADDR: Application error"}},
		{"closes in a name", "act" + policydtest.Close, []string{
			"premature end-of-input on ADDR while reading input attribute name",
			"premature end-of-input on ADDR while reading input attribute name",
			"problem talking to server ADDR: Application error"}},
		{"garbage", "hello world\nfoo\n\n", []string{
			"missing attribute action in input from ADDR",
			"missing attribute action in input from ADDR",
			"problem talking to server ADDR: Application error"}},
		{"no value", "action\n\n", []string{
			"missing value for string attribute action from ADDR",
			"missing value for string attribute action from ADDR",
			"problem talking to server ADDR: Application error"}},
		{"cut in a value", "action=DUN" + policydtest.Close, []string{
			"premature end-of-input on ADDR while reading input attribute value",
			"premature end-of-input on ADDR while reading input attribute value",
			"problem talking to server ADDR: Application error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := policydtest.Start(t, "tcp", "", func([]string) string { return tc.answer })
			c := newClient(t, "inet:"+f.Addr, Options{Timeout: 200 * time.Millisecond, RetryDelay: 100 * time.Millisecond})
			start := time.Now()
			_, ok, w := query(c, &Request{})
			took := time.Since(start)
			want := strings.ReplaceAll(strings.Join(tc.want, "\n"), "ADDR", f.Addr)
			if ok || strings.Join(w, "\n") != want {
				t.Errorf("ok=%v, warnings:\n%s\nwant:\n%s", ok, strings.Join(w, "\n"), want)
			}
			if n, _, _ := f.Counts(); n != 2 {
				t.Errorf("%d attempts, want try_limit 2", n)
			}
			if took < 100*time.Millisecond || took > 2*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "{ inet:"+addr+", try_limit=3, retry_delay=1 }", Options{})
	c.opts.RetryDelay = 10 * time.Millisecond
	_, ok, w := query(c, &Request{})
	one := []string{"connect to " + addr + ": Connection refused", "problem talking to server " + addr + ": Connection refused"}
	want := strings.Join(append(append(one, one...), one...), "\n")
	if ok || strings.Join(w, "\n") != want {
		t.Errorf("ok=%v, warnings:\n%s\nwant:\n%s", ok, strings.Join(w, "\n"), want)
	}
}

// The session's end stops a request that waits on a slow server.
func TestContextEndsQuery(t *testing.T) {
	f := policydtest.Start(t, "tcp", "", policydtest.Reply(policydtest.Hang))
	c := newClient(t, "inet:"+f.Addr, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, ok := c.Query(ctx, &Request{}, func(string) {}); ok || time.Since(start) > time.Second {
		t.Errorf("ok=%v after %v", ok, time.Since(start))
	}
}

func TestUnixRelativeToQueueDirectory(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "private"), 0o755)
	policydtest.Start(t, "unix", filepath.Join(dir, "private", "policy"), func([]string) string { return "action=HOLD why\n\n" })
	c := newClient(t, "unix:private/policy", Options{QueueDirectory: dir})
	if action, ok, w := query(c, &Request{}); !ok || action != "HOLD why" {
		t.Errorf("%q %v %q", action, ok, w)
	}
}

func TestBadUTF8Action(t *testing.T) {
	f := policydtest.Start(t, "tcp", "", func([]string) string { return "action=REJECT \xff\n\n" })
	c := newClient(t, "inet:"+f.Addr, Options{SMTPUTF8: true})
	_, ok, w := query(c, &Request{})
	want := fmt.Sprintf("malformed UTF-8 in policy server inet:%s response: \"REJECT \xff\"", f.Addr)
	if ok || len(w) != 1 || w[0] != want {
		t.Errorf("ok=%v %q", ok, w)
	}
	if n, _, _ := f.Counts(); n != 1 {
		t.Errorf("%d requests: a bad action is not retried", n)
	}
}

func TestParseService(t *testing.T) {
	for _, tc := range []struct{ spec, err string }{
		{"inet:127.0.0.1:9998", ""},
		{"unix:/run/policy", ""},
		{"{ inet:127.0.0.1:9998, timeout=10s, default_action=DUNNO, policy_context=submission }", ""},
		{"{ inet:127.0.0.1:9998, { default_action = 450 4.7.1 Try again } }", ""},
		{"tcp:127.0.0.1:9998", "invalid transport name: tcp in service: tcp:127.0.0.1:9998"},
		{"{ inet:1:2, timeout=soon }", "timeout: bad time value or unit: soon"},
		{"{ inet:1:2, timeout=0 }", "invalid timeout: 0 (min 1)"},
		{"{ inet:1:2, try_limit=0 }", "invalid try_limit parameter value 0 < 1"},
		{"{ inet:1:2, request_limit=x }", "bad numerical configuration: request_limit = x"},
		{"{ inet:1:2, colour=red }", "unknown option: \"colour = red\""},
		{"{ inet:1:2, policy_context= }", "bad string length 0 < 1: policy_context = "},
		{"{ }", "empty policy service: \"{ }\""},
		{"{ inet:1:2", "policy service syntax error: { inet:1:2"},
	} {
		err := Check(tc.spec)
		if got := fmt.Sprint(err); (tc.err == "" && err != nil) || (tc.err != "" && got != tc.err) {
			t.Errorf("%s: %v, want %q", tc.spec, err, tc.err)
		}
	}
	c := newClient(t, "{ inet:127.0.0.1:9998, timeout=10s, max_idle=1m, max_ttl=2h, retry_delay=3, request_limit=5, try_limit=4, default_action=DUNNO, policy_context=submission }",
		Options{Timeout: time.Hour})
	want := Options{Timeout: 10 * time.Second, MaxIdle: time.Minute, MaxTTL: 2 * time.Hour, RetryDelay: 3 * time.Second,
		RequestLimit: 5, TryLimit: 4, DefaultAction: "DUNNO", PolicyContext: "submission"}
	if got := c.opts; !reflect.DeepEqual(got, want) {
		t.Errorf("overrides: %+v, want %+v", c.opts, want)
	}
	if d := newClient(t, "inet:h:1", Options{}).opts; d.Timeout != 100*time.Second || d.TryLimit != 2 || d.DefaultAction != DefaultAction {
		t.Errorf("defaults: %+v", d)
	}
}
