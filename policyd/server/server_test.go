package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/greylist"
	"postgate/policyd"
	"postgate/restrictions"
	"postgate/rules"
)

// testList exercises each stage: a client, HELO, sender and recipient
// access table, relay control and greylisting.
const testList = `check_client_access inline:{ { 192.0.2.66=REJECT go away } }
	check_helo_access inline:{ { bad.helo.test=450 4.7.0 try later } }
	check_sender_access inline:{ { hold@src.test=HOLD held }, ok@src.test=OK, { dip@src.test=DEFER_IF_PERMIT later },
		{ dir@src.test=DEFER_IF_REJECT 4.7.2 perhaps }, { two@src.test=restrictions_two } }
	check_recipient_access inline:{ { spam@dst.test=550 5.7.1 no thanks } }
	reject_unauth_destination
	check_greylist`

// logs collects the server's log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// testServer is a server on a loopback port and what it logged.
type testServer struct {
	addr  string
	logs  *logs
	stop  context.CancelFunc
	done  chan error
	conns *countingListener
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (c *countingListener) Accept() (net.Conn, error) {
	nc, err := c.Listener.Accept()
	if err == nil {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return nc, err
}

func (c *countingListener) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func compile(t *testing.T, list string) *restrictions.Lists {
	t.Helper()
	dst, err := rules.NewDomainList([]string{"dst.test"}, true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := restrictions.Compile(nil, restrictions.Options{
		MyDestination: dst,
		Classes:       map[string]string{"postgate_policyd_restrictions": list, "restrictions_two": "check_sender_access inline:{ two@src.test=HOLD }, check_sender_access inline:{ { two@src.test=WARN careful } }"},
		StateStore:    greylist.NewMemory(),
		Greylist: restrictions.GreylistOptions{Policy: greylist.Policy{Delay: time.Second, RetryWindow: time.Hour,
			Lifetime: time.Hour}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func start(t *testing.T, ln net.Listener, o Options) *testServer {
	t.Helper()
	if o.Lists == nil {
		o.Lists = compile(t, testList)
	}
	o.Class = "postgate_policyd_restrictions"
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Second
	}
	ts := &testServer{logs: &logs{}, done: make(chan error, 1), conns: &countingListener{Listener: ln}}
	o.Logf = ts.logs.logf
	ts.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	ts.stop = cancel
	go func() { ts.done <- New(o).Serve(ctx, ts.conns) }()
	t.Cleanup(func() {
		cancel()
		<-ts.done
	})
	return ts
}

func startTCP(t *testing.T, o Options) *testServer {
	t.Helper()
	ln, err := Listen(context.Background(), "inet:127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	return start(t, ln, o)
}

func client(t *testing.T, spec string, o policyd.Options) *policyd.Client {
	t.Helper()
	c, err := policyd.New(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ask sends req with the policy client Postfix's check_policy_service
// mirrors and returns the action.
func ask(t *testing.T, c *policyd.Client, req *policyd.Request) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	action, ok := c.Query(ctx, req, func(w string) { t.Errorf("client warning: %s", w) })
	if !ok {
		t.Fatalf("no answer to %+v", req)
	}
	return action
}

func TestProtocolStates(t *testing.T) {
	ts := startTCP(t, Options{})
	c := client(t, "inet:"+ts.addr, policyd.Options{})
	base := policyd.Request{ProtocolName: "ESMTP", ClientAddress: "192.0.2.1", ClientName: "mx.src.test",
		ReverseClientName: "mx.src.test", HeloName: "mx.src.test", ClientPort: "4000", ServerAddress: "127.0.0.1", ServerPort: "25"}
	for _, tc := range []struct {
		name  string
		edit  func(r *policyd.Request)
		want  string
		again string // the same request once more, when it differs
	}{
		{"CONNECT clean", func(r *policyd.Request) { r.ProtocolState, r.HeloName = "CONNECT", "" }, "DUNNO", ""},
		{"CONNECT listed", func(r *policyd.Request) { r.ProtocolState, r.ClientAddress = "CONNECT", "192.0.2.66" }, "554 5.7.1 go away", ""},
		{"EHLO", func(r *policyd.Request) { r.ProtocolState, r.HeloName = "EHLO", "bad.helo.test" }, "450 4.7.0 try later", ""},
		{"HELO", func(r *policyd.Request) { r.ProtocolState, r.ProtocolName = "HELO", "SMTP" }, "DUNNO", ""},
		{"MAIL hold", func(r *policyd.Request) { r.ProtocolState, r.Sender = "MAIL", "hold@src.test" }, "HOLD held", ""},
		{"MAIL ok", func(r *policyd.Request) { r.ProtocolState, r.Sender = "MAIL", "ok@src.test" }, "OK", ""},
		{"MAIL defer_if_permit", func(r *policyd.Request) { r.ProtocolState, r.Sender = "MAIL", "dip@src.test" }, "DEFER_IF_PERMIT 4.7.1 later", ""},
		{"MAIL defer_if_reject", func(r *policyd.Request) { r.ProtocolState, r.Sender = "MAIL", "dir@src.test" }, "DEFER_IF_REJECT 4.7.2 perhaps", ""},
		{"MAIL two effects", func(r *policyd.Request) { r.ProtocolState, r.Sender = "MAIL", "two@src.test" }, "HOLD", ""},
		// At RCPT the sender's defer_if_permit is the reply, without its
		// "<dip@src.test>: Sender address rejected: " (Postfix puts the
		// recipient's there).
		{"RCPT defer_if_permit", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.Recipient = "RCPT", "dip@src.test", "u@dst.test"
		}, "450 4.7.1 later", ""},
		{"RCPT rejected", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.Recipient = "RCPT", "s@src.test", "spam@dst.test"
		}, "550 5.7.1 no thanks", ""},
		// A text without "<name>: <class> rejected: " stays whole.
		{"RCPT relay", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.Recipient = "RCPT", "s@src.test", "u@elsewhere.test"
		}, "554 5.7.1 <u@elsewhere.test>: Relay access denied", ""},
		{"RCPT greylisted", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.Recipient = "RCPT", "s@src.test", "u@dst.test"
		}, "450 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/dst.test.html", "450 4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/dst.test.html"},
		{"VRFY", func(r *policyd.Request) { r.ProtocolState, r.Recipient = "VRFY", "spam@dst.test" }, "550 5.7.1 no thanks", ""},
		{"DATA one recipient", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.Recipient, r.RecipientCount = "DATA", "s@src.test", "spam@dst.test", 1
		}, "550 5.7.1 no thanks", ""},
		{"DATA two recipients", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.RecipientCount = "DATA", "s@src.test", 2
		}, "DUNNO", ""},
		{"BDAT", func(r *policyd.Request) { r.ProtocolState, r.Sender = "BDAT", "ok@src.test" }, "OK", ""},
		{"END-OF-MESSAGE", func(r *policyd.Request) {
			r.ProtocolState, r.Sender, r.RecipientCount, r.QueueID = "END-OF-MESSAGE", "hold@src.test", 2, "4ABC"
		}, "HOLD held", ""},
		{"ETRN", func(r *policyd.Request) {
			r.ProtocolState, r.ClientAddress, r.EtrnDomain = "ETRN", "192.0.2.66", "dst.test"
		},
			"554 5.7.1 go away", ""},
		{"unknown state", func(r *policyd.Request) { r.ProtocolState = "NOOP" }, "DUNNO", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := base
			tc.edit(&req)
			if got := ask(t, c, &req); got != tc.want {
				t.Errorf("action=%s, want %s", got, tc.want)
			}
			if tc.again != "" {
				if got := ask(t, c, &req); got != tc.again {
					t.Errorf("again: action=%s, want %s", got, tc.again)
				}
			}
		})
	}
	// The greylisted triplet passes after the delay.
	time.Sleep(1100 * time.Millisecond)
	req := base
	req.ProtocolState, req.Sender, req.Recipient = "RCPT", "s@src.test", "u@dst.test"
	if got := ask(t, c, &req); got != "DUNNO" {
		t.Errorf("after the greylist delay: action=%s, want DUNNO", got)
	}
	// Postfix keeps its connection: every request came on one.
	if n := ts.conns.count(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	log := ts.logs.String()
	for _, want := range []string{
		"NOQUEUE: reject: CONNECT from mx.src.test[192.0.2.66]: 554 5.7.1 <mx.src.test[192.0.2.66]>: Client host rejected: go away; proto=ESMTP helo=<mx.src.test>",
		"NOQUEUE: reject: RCPT from mx.src.test[192.0.2.1]: 450 4.2.0 <u@dst.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/dst.test.html; from=<s@src.test> to=<u@dst.test> proto=ESMTP helo=<mx.src.test>",
		"4ABC: hold: END-OF-MESSAGE from mx.src.test[192.0.2.1]: <hold@src.test>: Sender address held; from=<hold@src.test> proto=ESMTP helo=<mx.src.test>",
		"warning: mx.src.test[192.0.2.1]: one action per answer: WARN careful is not passed on",
		`warning: unknown protocol_state "NOOP": answering DUNNO`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// raw sends text on a new connection and returns what the server sent
// back before it closed the connection (or the read timed out).
func raw(t *testing.T, addr, text string, wait time.Duration) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(wait))
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				b.WriteString("<still open>")
			}
			return b.String()
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	ts := startTCP(t, Options{Timeout: 500 * time.Millisecond, IdleTimeout: time.Second})
	const good = "request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=192.0.2.66\n\n"
	for _, tc := range []struct {
		name, send, reply, log string
	}{
		{"two requests in one write", good + good, "action=554 5.7.1 go away\n\naction=554 5.7.1 go away\n\n<still open>", ""},
		{"a line without =", "request=smtpd_access_policy\nhello\n\n", "",
			`malformed policy request: "hello" is not name=value: closing the connection`},
		{"a long line", "request=smtpd_access_policy\nsender=" + strings.Repeat("x", 5000) + "\n\n", "",
			"malformed policy request: a line longer than 4096 bytes: closing the connection"},
		{"a large request", "request=smtpd_access_policy\n" + strings.Repeat("x_unknown="+strings.Repeat("y", 1000)+"\n", 70) + "\n", "",
			"malformed policy request: a request longer than 65536 bytes: closing the connection"},
		{"a bad number", "request=smtpd_access_policy\nsize=ten\n\n", "",
			`malformed policy request: size="ten" is not a number: closing the connection`},
		{"another request type", "request=something_else\n\n", "action=DUNNO\n\n<still open>",
			`warning: unsupported request type "something_else": answering DUNNO`},
		{"cut short", "request=smtpd_access_policy\nprotocol_st", "", "timeout reading a request: closing the connection"},
		{"closed within a request", "request=smtpd_access_policy\n" + closeMark, "",
			"malformed policy request: the connection closed within a request: closing the connection"},
		// An idle connection is closed after the idle timeout, silently.
		{"idle", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if text, closing := strings.CutSuffix(tc.send, closeMark); closing {
				nc, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				nc.Write([]byte(text))
				nc.(*net.TCPConn).CloseWrite()
				b := make([]byte, 100)
				nc.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, _ := nc.Read(b)
				nc.Close()
				got = string(b[:n])
			} else {
				wait := 3 * time.Second
				if strings.HasSuffix(tc.reply, "<still open>") {
					wait = 300 * time.Millisecond
				}
				got = raw(t, ts.addr, tc.send, wait)
			}
			if got != tc.reply {
				t.Errorf("got %q, want %q", got, tc.reply)
			}
			time.Sleep(50 * time.Millisecond)
			if tc.log != "" && !strings.Contains(ts.logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, ts.logs)
			}
		})
	}
	if n := strings.Count(ts.logs.String(), "warning:"); n != 7 {
		t.Errorf("want 7 warnings (none for the idle connection):\n%s", ts.logs)
	}
}

// closeMark in a test's input: the client shuts its side down there.
const closeMark = "\x00close"

// A server that stops answers what it has read, closes idle connections
// and returns.
func TestStop(t *testing.T) {
	ts := startTCP(t, Options{})
	idle, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c := client(t, "inet:"+ts.addr, policyd.Options{})
	if got := ask(t, c, &policyd.Request{ProtocolState: "CONNECT", ClientAddress: "192.0.2.66"}); got != "554 5.7.1 go away" {
		t.Fatalf("action=%s", got)
	}
	start := time.Now()
	ts.stop()
	select {
	case err := <-ts.done:
		ts.done <- err // for the cleanup
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
	idle.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := bufio.NewReader(idle).ReadByte(); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("idle connection: %v after %v", err, time.Since(start))
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("still listening")
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "private"), 0o755)
	path := filepath.Join(dir, "private", "policy")
	// A socket file left by a run that did not clean up.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	ln, err := Listen(context.Background(), "unix:private/policy", dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o666 {
		t.Errorf("socket: %v %v", st.Mode(), err)
	}
	start(t, ln, Options{})
	c := client(t, "unix:private/policy", policyd.Options{QueueDirectory: dir})
	if got := ask(t, c, &policyd.Request{ProtocolState: "MAIL", Sender: "ok@src.test"}); got != "OK" {
		t.Errorf("action=%s", got)
	}
}

func TestListenErrors(t *testing.T) {
	for _, spec := range []string{"tcp:127.0.0.1:1", "inet", "inet:127.0.0.1:99999"} {
		if ln, err := Listen(context.Background(), spec, ""); err == nil {
			ln.Close()
			t.Errorf("%s: no error", spec)
		}
	}
}
