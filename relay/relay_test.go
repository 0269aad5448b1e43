package relay

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-smtp"
)

func checkResult(t *testing.T, got Result, status Status, dsn, reply, relay string) {
	t.Helper()
	if got.Status != status || got.DSN != dsn || got.Reply != reply || got.Relay != relay {
		t.Errorf("result = %v %s %q relay=%s\n  want %v %s %q relay=%s", got.Status, got.DSN, got.Reply, got.Relay, status, dsn, reply, relay)
	}
}

func TestDeliverToAddress(t *testing.T) {
	f := newFakeServer(t, nil)
	tr := newTransport(t, Options{})
	m := message(f.nexthop(), simpleContent, "a@example.com", "b@example.com")
	res := tr.Deliver(context.Background(), m)
	relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port())
	for _, r := range res {
		checkResult(t, r, Sent, "2.0.0", "250 2.0.0 OK: queued", relay)
		if r.ConnUse != 1 {
			t.Errorf("ConnUse = %d, want 1", r.ConnUse)
		}
		if r.Conn <= 0 || r.Xfer <= 0 {
			t.Errorf("delays: conn %v xfer %v, want both > 0", r.Conn, r.Xfer)
		}
	}
	msgs := f.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.from != "sender@example.org" || !slices.Equal(got.rcpts, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("envelope = %q %q", got.from, got.rcpts)
	}
	if string(got.data) != simpleContent {
		t.Errorf("data = %q, want %q", got.data, simpleContent)
	}
	if got.mailOpts.Body != smtp.Body8BitMIME {
		t.Errorf("BODY = %q, want 8BITMIME (offered)", got.mailOpts.Body)
	}
}

func TestDeliverNullSender(t *testing.T) {
	f := newFakeServer(t, nil)
	tr := newTransport(t, Options{})
	m := message(f.nexthop(), simpleContent, "a@example.com")
	m.Sender = ""
	if res := tr.Deliver(context.Background(), m); res[0].Status != Sent {
		t.Fatalf("result = %+v", res[0])
	}
	if from := f.messages()[0].from; from != "" {
		t.Errorf("MAIL FROM = %q, want <>", from)
	}
}

func TestRecipientReplies(t *testing.T) {
	f := newFakeServer(t, nil)
	f.rcptReply["later@example.com"] = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "<later@example.com>: Recipient address rejected: Greylisted"}
	f.rcptReply["gone@example.com"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<gone@example.com>: Recipient address rejected: User unknown"}
	tr := newTransport(t, Options{})
	m := message(f.nexthop(), simpleContent, "ok@example.com", "later@example.com", "gone@example.com")
	res := tr.Deliver(context.Background(), m)
	relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port())
	checkResult(t, res[0], Sent, "2.0.0", "250 2.0.0 OK: queued", relay)
	checkResult(t, res[1], Deferred, "4.2.1", "host 127.0.0.1[127.0.0.1] said: 450 4.2.1 <later@example.com>: Recipient address rejected: Greylisted (in reply to RCPT TO command)", relay)
	checkResult(t, res[2], Bounced, "5.1.1", "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command)", relay)
	if msgs := f.messages(); len(msgs) != 1 || !slices.Equal(msgs[0].rcpts, []string{"ok@example.com"}) {
		t.Errorf("server got %d messages", len(msgs))
	}
}

func TestAllRecipientsRejected(t *testing.T) {
	f := newFakeServer(t, nil)
	f.rcptReply["gone@example.com"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
	tr := newTransport(t, Options{ConnectionReuse: true})
	m := message(f.nexthop(), simpleContent, "gone@example.com")
	res := tr.Deliver(context.Background(), m)
	checkResult(t, res[0], Bounced, "5.1.1", "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command)", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	// The session was reset and is good for the next message.
	res = tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "ok@example.com"))
	if res[0].Status != Sent || res[0].ConnUse != 2 {
		t.Errorf("next message: %+v, want sent on the same session", res[0])
	}
	if n := f.l.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestSenderRejected(t *testing.T) {
	f := newFakeServer(t, nil)
	f.mailReply = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "<sender@example.org>: Sender address rejected: Access denied"}
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com", "b@example.com"))
	for _, r := range res {
		checkResult(t, r, Bounced, "5.7.1", "host 127.0.0.1[127.0.0.1] said: 553 5.7.1 <sender@example.org>: Sender address rejected: Access denied (in reply to MAIL FROM command)", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	}
}

func TestDataRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    *smtp.SMTPError
		status Status
		dsn    string
		reply  string
	}{
		{"permanent", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message rejected as spam"}, Bounced, "5.7.1",
			"host 127.0.0.1[127.0.0.1] said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command)"},
		{"temporary", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: queue file write error"}, Deferred, "4.3.0",
			"host 127.0.0.1[127.0.0.1] said: 451 4.3.0 Error: queue file write error (in reply to end of DATA command)"},
		{"no enhanced code", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.NoEnhancedCode, Message: "go away"}, Bounced, "5.0.0",
			"host 127.0.0.1[127.0.0.1] said: 554 go away (in reply to end of DATA command)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t, nil)
			f.data = func(_ *smtp.Conn, r io.Reader) error {
				io.Copy(io.Discard, r)
				return tc.err
			}
			tr := newTransport(t, Options{})
			res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com", "b@example.com"))
			for _, r := range res {
				checkResult(t, r, tc.status, tc.dsn, tc.reply, fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	port := closedPort(t)
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message(fmt.Sprintf("[127.0.0.1]:%d", port), simpleContent, "a@example.com"))
	checkResult(t, res[0], Deferred, "4.4.1", fmt.Sprintf("connect to 127.0.0.1[127.0.0.1]:%d: Connection refused", port), "none")
	if res[0].Xfer != 0 || res[0].Conn <= 0 {
		t.Errorf("delays: conn %v xfer %v, want all setup", res[0].Conn, res[0].Xfer)
	}
}

func TestMXOrderAndFallback(t *testing.T) {
	f := newFakeServer(t, nil)
	mx1 := netip.MustParseAddrPort("192.0.2.1:25")
	mx2 := netip.MustParseAddrPort("192.0.2.2:25")
	res := &fakeResolver{
		mx: map[string][]*net.MX{"example.test": {
			{Host: "mx2.example.test.", Pref: 20}, // out of order on purpose
			{Host: "mx1.example.test.", Pref: 10},
		}},
		hosts: map[string][]netip.Addr{
			"mx1.example.test": {mx1.Addr()},
			"mx2.example.test": {mx2.Addr()},
		},
	}

	t.Run("first refuses", func(t *testing.T) {
		dialer := &mapDialer{t: t, ports: map[netip.AddrPort]uint16{mx2: f.port()}} // mx1 refuses
		var logged []string
		tr := newTransport(t, Options{Resolver: res, Log: func(l string) { logged = append(logged, l) }})
		tr.dial = dialer.dial
		r := tr.Deliver(context.Background(), message("example.test", simpleContent, "a@example.test"))
		checkResult(t, r[0], Sent, "2.0.0", "250 2.0.0 OK: queued", "mx2.example.test[192.0.2.2]:25")
		if got := dialer.attempts(); !slices.Equal(got, []netip.AddrPort{mx1, mx2}) {
			t.Errorf("tried %v, want mx1 then mx2", got)
		}
		if want := []string{"connect to mx1.example.test[192.0.2.1]:25: Connection refused"}; !slices.Equal(logged, want) {
			t.Errorf("log = %q, want %q", logged, want)
		}
	})
	t.Run("first preferred", func(t *testing.T) {
		dialer := &mapDialer{t: t, ports: map[netip.AddrPort]uint16{mx1: f.port(), mx2: f.port()}}
		tr := newTransport(t, Options{Resolver: res})
		tr.dial = dialer.dial
		r := tr.Deliver(context.Background(), message("example.test", simpleContent, "a@example.test"))
		checkResult(t, r[0], Sent, "2.0.0", "250 2.0.0 OK: queued", "mx1.example.test[192.0.2.1]:25")
		if got := dialer.attempts(); !slices.Equal(got, []netip.AddrPort{mx1}) {
			t.Errorf("tried %v, want mx1 only", got)
		}
	})
	t.Run("all refuse", func(t *testing.T) {
		dialer := &mapDialer{t: t}
		tr := newTransport(t, Options{Resolver: res})
		tr.dial = dialer.dial
		r := tr.Deliver(context.Background(), message("example.test", simpleContent, "a@example.test"))
		checkResult(t, r[0], Deferred, "4.4.1", "connect to mx2.example.test[192.0.2.2]:25: Connection refused", "none")
	})
	t.Run("port from next hop", func(t *testing.T) {
		mx1p := netip.AddrPortFrom(mx1.Addr(), 2525)
		dialer := &mapDialer{t: t, ports: map[netip.AddrPort]uint16{mx1p: f.port()}}
		tr := newTransport(t, Options{Resolver: res})
		tr.dial = dialer.dial
		r := tr.Deliver(context.Background(), message("example.test:2525", simpleContent, "a@example.test"))
		checkResult(t, r[0], Sent, "2.0.0", "250 2.0.0 OK: queued", "mx1.example.test[192.0.2.1]:2525")
	})
}

func TestSoftReplyTriesNextMX(t *testing.T) {
	busy := newFakeServer(t, nil)
	busy.rcptReply["b@example.test"] = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	backup := newFakeServer(t, nil)
	mx1 := netip.MustParseAddrPort("192.0.2.1:25")
	mx2 := netip.MustParseAddrPort("192.0.2.2:25")
	res := &fakeResolver{
		mx:    map[string][]*net.MX{"example.test": {{Host: "mx1.example.test", Pref: 10}, {Host: "mx2.example.test", Pref: 20}}},
		hosts: map[string][]netip.Addr{"mx1.example.test": {mx1.Addr()}, "mx2.example.test": {mx2.Addr()}},
	}
	dialer := &mapDialer{t: t, ports: map[netip.AddrPort]uint16{mx1: busy.port(), mx2: backup.port()}}
	var logged []string
	tr := newTransport(t, Options{Resolver: res, Log: func(l string) { logged = append(logged, l) }})
	tr.dial = dialer.dial
	m := message("example.test", simpleContent, "a@example.test", "b@example.test")
	m.QueueID = "4F2A1C0E4B"
	r := tr.Deliver(context.Background(), m)
	checkResult(t, r[0], Sent, "2.0.0", "250 2.0.0 OK: queued", "mx1.example.test[192.0.2.1]:25")
	checkResult(t, r[1], Sent, "2.0.0", "250 2.0.0 OK: queued", "mx2.example.test[192.0.2.2]:25")
	if msgs := backup.messages(); len(msgs) != 1 || !slices.Equal(msgs[0].rcpts, []string{"b@example.test"}) || string(msgs[0].data) != simpleContent {
		t.Errorf("backup MX got %v (the content is read again from its start)", msgs)
	}
	if want := []string{"4F2A1C0E4B: host mx1.example.test[192.0.2.1] said: 451 4.3.0 Try again later (in reply to RCPT TO command)"}; !slices.Equal(logged, want) {
		t.Errorf("log = %q, want %q", logged, want)
	}
}

func TestDNS(t *testing.T) {
	f := newFakeServer(t, nil)
	a := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		name   string
		res    *fakeResolver
		status Status
		dsn    string
		reply  string
		relay  string
	}{
		{"nxdomain", &fakeResolver{mxErr: map[string]error{"example.test": notFound("example.test")}},
			Bounced, "5.4.4", "Host or domain name not found. Name service error for name=example.test type=MX: Host not found", "none"},
		{"temporary", &fakeResolver{mxErr: map[string]error{"example.test": tempFail("example.test")}},
			Deferred, "4.4.3", "Host or domain name not found. Name service error for name=example.test type=MX: Host not found, try again", "none"},
		{"null MX", &fakeResolver{mx: map[string][]*net.MX{"example.test": {{Host: ".", Pref: 0}}}},
			Bounced, "5.1.0", "Domain example.test does not accept mail (nullMX)", "none"},
		{"no MX, address", &fakeResolver{hosts: map[string][]netip.Addr{"example.test": {a}}},
			Sent, "2.0.0", "250 2.0.0 OK: queued", "example.test[192.0.2.7]:25"},
		{"MX host without address", &fakeResolver{mx: map[string][]*net.MX{"example.test": {{Host: "mx.example.test", Pref: 10}}}},
			Bounced, "5.4.4", "Host or domain name not found. Name service error for name=mx.example.test type=A: Host not found", "none"},
		{"MX host lookup fails for now", &fakeResolver{
			mx:      map[string][]*net.MX{"example.test": {{Host: "mx.example.test", Pref: 10}}},
			hostErr: map[string]error{"mx.example.test": tempFail("mx.example.test")}},
			Deferred, "4.4.3", "Host or domain name not found. Name service error for name=mx.example.test type=A: Host not found, try again", "none"},
		{"one MX host resolves", &fakeResolver{
			mx:    map[string][]*net.MX{"example.test": {{Host: "bad.example.test", Pref: 5}, {Host: "mx.example.test", Pref: 10}}},
			hosts: map[string][]netip.Addr{"mx.example.test": {a}}},
			Sent, "2.0.0", "250 2.0.0 OK: queued", "mx.example.test[192.0.2.7]:25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := &mapDialer{t: t, ports: map[netip.AddrPort]uint16{netip.AddrPortFrom(a, 25): f.port()}}
			tr := newTransport(t, Options{Resolver: tc.res})
			tr.dial = dialer.dial
			r := tr.Deliver(context.Background(), message("example.test", simpleContent, "a@example.test"))
			checkResult(t, r[0], tc.status, tc.dsn, tc.reply, tc.relay)
		})
	}
}

func TestBracketedNameSkipsMX(t *testing.T) {
	f := newFakeServer(t, nil)
	a := netip.MustParseAddr("192.0.2.9")
	res := &fakeResolver{
		mxErr: map[string]error{"relay.example.test": tempFail("relay.example.test")}, // never asked
		hosts: map[string][]netip.Addr{"relay.example.test": {a}},
	}
	dialer := &mapDialer{t: t, ports: map[netip.AddrPort]uint16{netip.AddrPortFrom(a, 587): f.port()}}
	tr := newTransport(t, Options{Resolver: res})
	tr.dial = dialer.dial
	r := tr.Deliver(context.Background(), message("[relay.example.test]:587", simpleContent, "a@example.test"))
	checkResult(t, r[0], Sent, "2.0.0", "250 2.0.0 OK: queued", "relay.example.test[192.0.2.9]:587")
}

func TestDSNParameters(t *testing.T) {
	f := newFakeServer(t, func(s *smtp.Server) {
		s.EnableDSN = true
		s.MaxMessageBytes = 1 << 20
	})
	tr := newTransport(t, Options{})
	m := message(f.nexthop(), simpleContent, "a@example.com", "b@example.com")
	m.RET, m.EnvID = "HDRS", "id+1=2 x"
	m.Recipients[0].Notify, m.Recipients[0].ORCPT = "SUCCESS,FAILURE", "rfc822;orig+tag@example.com"
	m.Recipients[1].Notify = "NEVER"
	res := tr.Deliver(context.Background(), m)
	if res[0].Status != Sent || res[1].Status != Sent {
		t.Fatalf("results %+v", res)
	}
	got := f.messages()[0]
	if got.mailOpts.Return != smtp.DSNReturnHeaders || got.mailOpts.EnvelopeID != "id+1=2 x" || got.mailOpts.Size != int64(len(simpleContent)) {
		t.Errorf("MAIL options: RET=%q ENVID=%q SIZE=%d", got.mailOpts.Return, got.mailOpts.EnvelopeID, got.mailOpts.Size)
	}
	o := got.rcptOpts[0]
	if !slices.Equal(o.Notify, []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure}) ||
		o.OriginalRecipientType != smtp.DSNAddressTypeRFC822 || o.OriginalRecipient != "orig+tag@example.com" {
		t.Errorf("RCPT options: NOTIFY=%v ORCPT=%s;%s", o.Notify, o.OriginalRecipientType, o.OriginalRecipient)
	}
	if o := got.rcptOpts[1]; !slices.Equal(o.Notify, []smtp.DSNNotify{smtp.DSNNotifyNever}) || o.OriginalRecipient != "" {
		t.Errorf("second RCPT options: %+v", o)
	}
}

func TestDSNNotOffered(t *testing.T) {
	r := newRawServer(t, nil)
	tr := newTransport(t, Options{})
	m := message(r.nexthop(), simpleContent, "a@example.com")
	m.RET, m.EnvID = "FULL", "abc"
	m.Recipients[0].Notify, m.Recipients[0].ORCPT = "FAILURE", "rfc822;a@example.com"
	if res := tr.Deliver(context.Background(), m); res[0].Status != Sent {
		t.Fatalf("result %+v", res[0])
	}
	want := []string{"EHLO relay.test", "MAIL FROM:<sender@example.org> BODY=8BITMIME", "RCPT TO:<a@example.com>", "DATA", "QUIT"}
	if got := r.commands("QUIT"); !slices.Equal(got, want) {
		t.Errorf("commands:\n %q\nwant\n %q", got, want)
	}
}

func TestContentOnTheWire(t *testing.T) {
	pieces := []struct{ in, out string }{
		{"Subject: t\r\n", "Subject: t\r\n"},
		{"\r\n", "\r\n"},
		{"bare LF\n", "bare LF\r\n"},
		{"bare CR\r", "bare CR\r\n"},
		{".\n", "..\r\n"}, // "\n.\n"
		{".\r", "..\r\n"}, // "\r.\r"
		{"x\n", "x\r\n"},
		{"y\r.\r\n", "y\r\n..\r\n"}, // "\r.\r\n"
		{".\r\n", "..\r\n"},         // a lone dot
		{"..\r\n", "...\r\n"},       // two dots
		{".hidden\r\n", "..hidden\r\n"},
		{"a\r\n.\r\nMAIL FROM:<x>\r\n", "a\r\n..\r\nMAIL FROM:<x>\r\n"}, // smuggling attempt
		{"\r\n.\n", "\r\n..\r\n"},
		{"no final line end", "no final line end\r\n"},
	}
	var in, out strings.Builder
	for _, p := range pieces {
		in.WriteString(p.in)
		out.WriteString(p.out)
	}
	out.WriteString(".\r\n")
	for _, tc := range []struct {
		name string
		r    func(string) io.Reader
	}{
		{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
		{"byte by byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawServer(t, nil)
			tr := newTransport(t, Options{})
			m := message(r.nexthop(), "", "a@example.com")
			m.Content = tc.r(in.String())
			if res := tr.Deliver(context.Background(), m); res[0].Status != Sent {
				t.Fatalf("result %+v", res[0])
			}
			r.commands("QUIT")
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.data) != 1 {
				t.Fatalf("%d DATA transfers", len(r.data))
			}
			if got := string(r.data[0]); got != out.String() {
				t.Errorf("on the wire:\n %q\nwant\n %q", got, out.String())
			}
			// Exactly one end of data: the next thing is the next command.
			if len(r.after) != 1 || r.after[0] != "QUIT\r\n" {
				t.Errorf("after the data: %q, want QUIT", r.after)
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	f := newFakeServer(t, nil)
	tr := newTransport(t, Options{ConnectionReuse: true})
	for i, want := range []int{1, 2, 3} {
		res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, fmt.Sprintf("r%d@example.com", i)))
		if res[0].Status != Sent || res[0].ConnUse != want {
			t.Errorf("message %d: %v conn_use=%d, want sent conn_use=%d", i, res[0].Status, res[0].ConnUse, want)
		}
	}
	if n := f.l.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if n := len(f.messages()); n != 3 {
		t.Errorf("server got %d messages, want 3", n)
	}
}

func TestReuseAfterServerClosed(t *testing.T) {
	f := newFakeServer(t, nil)
	tr := newTransport(t, Options{ConnectionReuse: true, MaxIdle: time.Minute})
	if res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com")); res[0].Status != Sent {
		t.Fatalf("first: %+v", res[0])
	}
	f.l.closeConns()
	time.Sleep(50 * time.Millisecond)
	res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "b@example.com"))
	checkResult(t, res[0], Sent, "2.0.0", "250 2.0.0 OK: queued", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	if res[0].ConnUse != 1 {
		t.Errorf("ConnUse = %d, want 1 (a fresh session)", res[0].ConnUse)
	}
	if n := f.l.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A cached session whose server hangs up right after the RSET probe fails
// at MAIL; the delivery goes on with a fresh session, unseen.
func TestReuseFailsAtMail(t *testing.T) {
	r := newRawServer(t, nil)
	tr := newTransport(t, Options{ConnectionReuse: true, MaxIdle: time.Minute})
	if res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, "a@example.com")); res[0].Status != Sent {
		t.Fatalf("first: %+v", res[0])
	}
	// Make the cached session answer the probe, then vanish.
	s := tr.cache.take(r.nexthop())
	if s == nil {
		t.Fatal("no cached session")
	}
	s.c.Conn = &closeAfterWrite{Conn: s.c.Conn, after: 1}
	tr.cache.put(r.nexthop(), s, time.Minute)
	res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, "b@example.com"))
	if res[0].Status != Sent || res[0].ConnUse != 1 {
		t.Errorf("second: %+v, want sent on a fresh session", res[0])
	}
	if n := r.l.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// pipeliningEHLO offers PIPELINING.
const pipeliningEHLO = "250-raw.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"

// A pipelining server gets a cached session's RSET probe in one flight
// with MAIL, RCPT and DATA. This server answers RSET, MAIL and RCPT only
// once DATA is in, so a lone probe would wait in vain for its reply.
func TestReuseProbePipelined(t *testing.T) {
	r := newRawServer(t, func(r *rawServer) {
		r.ehlo = pipeliningEHLO
		r.hold = true
	})
	tr := newTransport(t, Options{ConnectionReuse: true, MaxIdle: time.Minute, RsetTimeout: 2 * time.Second})
	for i, want := range []int{1, 2, 3} {
		res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, fmt.Sprintf("r%d@example.com", i)))
		if res[0].Status != Sent || res[0].ConnUse != want {
			t.Fatalf("message %d: %+v, want sent with conn_use=%d", i, res[0], want)
		}
	}
	if n := r.l.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	var rsets []int
	lines := r.commands("DATA") // each delivery is done when Deliver returns
	for i, l := range lines {
		if l == "RSET" {
			rsets = append(rsets, i)
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "MAIL FROM:") {
				t.Errorf("RSET not followed by MAIL FROM: %q", lines)
			}
		}
	}
	if len(rsets) != 2 {
		t.Errorf("%d RSET probes, want one per reuse: %q", len(rsets), lines)
	}
}

// A cached session that fails the pipelined probe, or loses the
// connection after answering it, is dropped: the delivery goes on with a
// fresh session, unseen, and the dropped session's flight never gets the
// content.
func TestReuseProbePipelinedFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*rawServer)
	}{
		{"rejected", func(r *rawServer) { r.rset = "421 4.4.2 raw.test Error: timeout exceeded\r\n" }},
		{"refused", func(r *rawServer) { r.rset = "502 5.5.2 Error: command not recognized\r\n" }},
		{"hangup", func(r *rawServer) { r.closeAfterRSET = true }},
		// Nothing after the refused probe: the client must not wait for
		// the replies to the rest of its flight.
		{"mute", func(r *rawServer) { r.rset = "502 5.5.2 Error: command not recognized\r\n"; r.muteAfterRSET = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRawServer(t, func(r *rawServer) {
				r.ehlo = pipeliningEHLO
				tc.configure(r)
			})
			tr := newTransport(t, Options{ConnectionReuse: true, MaxIdle: time.Minute, MailTimeout: time.Minute})
			for i := range 2 {
				// Far less than MailTimeout: a wait for a reply that never
				// comes ends the context, and the delivery is deferred.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res := tr.Deliver(ctx, message(r.nexthop(), simpleContent, fmt.Sprintf("r%d@example.com", i)))
				cancel()
				checkResult(t, res[0], Sent, "2.0.0", "250 2.0.0 Ok: queued as RAW1", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", portOf(r.l)))
				if res[0].ConnUse != 1 {
					t.Errorf("message %d: conn_use=%d, want 1 (a fresh session)", i, res[0].ConnUse)
				}
			}
			if n := r.l.accepted.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.data) != 2 {
				t.Errorf("server got %d messages, want 2 (none on the dropped session)", len(r.data))
			}
		})
	}
}

// closeAfterWrite closes the connection once it has written after writes.
type closeAfterWrite struct {
	net.Conn
	after int
}

func (c *closeAfterWrite) Write(p []byte) (int, error) {
	if c.after == 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	c.after--
	return c.Conn.Write(p)
}

func TestReuseLimits(t *testing.T) {
	t.Run("count", func(t *testing.T) {
		f := newFakeServer(t, nil)
		tr := newTransport(t, Options{ConnectionReuse: true, MaxReuse: 1})
		var uses []int
		for i := range 3 {
			res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, fmt.Sprintf("r%d@example.com", i)))
			uses = append(uses, res[0].ConnUse)
		}
		if !slices.Equal(uses, []int{1, 2, 1}) {
			t.Errorf("conn_use = %v, want [1 2 1] (a limit of 1 allows 2 messages)", uses)
		}
	})
	t.Run("idle", func(t *testing.T) {
		f := newFakeServer(t, nil)
		tr := newTransport(t, Options{ConnectionReuse: true, MaxIdle: 20 * time.Millisecond})
		tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com"))
		time.Sleep(100 * time.Millisecond)
		res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "b@example.com"))
		if res[0].Status != Sent || res[0].ConnUse != 1 || f.l.accepted.Load() != 2 {
			t.Errorf("after idle time: %+v, %d connections; want a fresh session", res[0], f.l.accepted.Load())
		}
	})
}

func TestTimeout(t *testing.T) {
	f := newFakeServer(t, nil)
	f.rcptDelay = time.Second
	tr := newTransport(t, Options{RcptTimeout: 100 * time.Millisecond})
	res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com"))
	checkResult(t, res[0], Deferred, "4.4.2", "conversation with 127.0.0.1[127.0.0.1] timed out while sending RCPT TO", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
}

func TestContextCancel(t *testing.T) {
	f := newFakeServer(t, nil)
	f.rcptDelay = time.Second
	tr := newTransport(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := tr.Deliver(ctx, message(f.nexthop(), simpleContent, "a@example.com"))
	if time.Since(start) > 900*time.Millisecond {
		t.Errorf("Deliver took %v after the context ended", time.Since(start))
	}
	checkResult(t, res[0], Deferred, "4.4.2", "conversation with 127.0.0.1[127.0.0.1] interrupted while sending RCPT TO", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
}

func TestLostConnection(t *testing.T) {
	t.Run("while sending message body", func(t *testing.T) {
		f := newFakeServer(t, nil)
		f.data = func(c *smtp.Conn, r io.Reader) error {
			io.CopyN(io.Discard, r, 1000)
			c.Conn().Close()
			return nil
		}
		tr := newTransport(t, Options{})
		big := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 256*1024) // 16 MiB
		res := tr.Deliver(context.Background(), message(f.nexthop(), big, "a@example.com"))
		checkResult(t, res[0], Deferred, "4.4.2", "lost connection with 127.0.0.1[127.0.0.1] while sending message body", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	})
	t.Run("while waiting for the end of data reply", func(t *testing.T) {
		f := newFakeServer(t, nil)
		f.data = func(c *smtp.Conn, r io.Reader) error {
			io.Copy(io.Discard, r)
			c.Conn().Close()
			return nil
		}
		tr := newTransport(t, Options{})
		res := tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, "a@example.com"))
		checkResult(t, res[0], Deferred, "4.4.2", "lost connection with 127.0.0.1[127.0.0.1] while sending end of data -- message may be sent more than once", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	})
}

func TestGreetingRefused(t *testing.T) {
	r := newRawServer(t, func(r *rawServer) {
		r.greeting = "554-5.7.1 No SMTP service here\r\n554 5.7.1 Bad DNS PTR resource record\r\n"
	})
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, "a@example.com"))
	checkResult(t, res[0], Deferred, "4.7.1", "host 127.0.0.1[127.0.0.1] refused to talk to me: 554-5.7.1 No SMTP service here 554 5.7.1 Bad DNS PTR resource record", "127.0.0.1[127.0.0.1]:"+strings.TrimPrefix(r.nexthop(), "[127.0.0.1]:"))
}

func TestHELOFallback(t *testing.T) {
	r := newRawServer(t, func(r *rawServer) { r.ehlo = "502 5.5.2 Error: command not recognized\r\n" })
	tr := newTransport(t, Options{})
	m := message(r.nexthop(), simpleContent, "a@example.com")
	m.Size = 100
	if res := tr.Deliver(context.Background(), m); res[0].Status != Sent || res[0].Reply != "250 2.0.0 Ok: queued as RAW1" {
		t.Fatalf("result %+v", res[0])
	}
	want := []string{"EHLO relay.test", "HELO relay.test", "MAIL FROM:<sender@example.org>", "RCPT TO:<a@example.com>", "DATA", "QUIT"}
	if got := r.commands("QUIT"); !slices.Equal(got, want) {
		t.Errorf("commands:\n %q\nwant\n %q", got, want)
	}
}

func TestSizeLimit(t *testing.T) {
	f := newFakeServer(t, func(s *smtp.Server) { s.MaxMessageBytes = 100 })
	tr := newTransport(t, Options{})
	m := message(f.nexthop(), simpleContent, "a@example.com")
	m.Size = 1000
	res := tr.Deliver(context.Background(), m)
	checkResult(t, res[0], Bounced, "5.3.4", "message size 1000 exceeds size limit 100 of server 127.0.0.1[127.0.0.1]", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
}

func TestSMTPUTF8(t *testing.T) {
	t.Run("required, not offered", func(t *testing.T) {
		f := newFakeServer(t, nil)
		tr := newTransport(t, Options{})
		m := message(f.nexthop(), simpleContent, "jörg@example.com")
		m.SMTPUTF8 = true
		res := tr.Deliver(context.Background(), m)
		checkResult(t, res[0], Bounced, "5.6.7", "SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	})
	t.Run("offered", func(t *testing.T) {
		f := newFakeServer(t, func(s *smtp.Server) { s.EnableSMTPUTF8 = true })
		tr := newTransport(t, Options{})
		m := message(f.nexthop(), simpleContent, "jörg@example.com")
		m.SMTPUTF8 = true
		if res := tr.Deliver(context.Background(), m); res[0].Status != Sent {
			t.Fatalf("result %+v", res[0])
		}
		if !f.messages()[0].mailOpts.UTF8 {
			t.Error("MAIL without SMTPUTF8")
		}
	})
	t.Run("requested, ASCII envelope, not offered", func(t *testing.T) {
		f := newFakeServer(t, nil)
		tr := newTransport(t, Options{})
		m := message(f.nexthop(), simpleContent, "a@example.com")
		m.SMTPUTF8 = true
		if res := tr.Deliver(context.Background(), m); res[0].Status != Sent {
			t.Fatalf("result %+v", res[0])
		}
	})
}

func TestMailLoop(t *testing.T) {
	r := newRawServer(t, func(r *rawServer) { r.ehlo = "250-RELAY.TEST\r\n250 PIPELINING\r\n" })
	tr := newTransport(t, Options{MyHostname: "relay.test"})
	res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, "a@example.com"))
	checkResult(t, res[0], Bounced, "5.4.6", "mail for "+r.nexthop()+" loops back to myself", "127.0.0.1[127.0.0.1]:"+strings.TrimPrefix(r.nexthop(), "[127.0.0.1]:"))

	// Without MyHostname there is no check.
	tr = newTransport(t, Options{})
	if res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, "a@example.com")); res[0].Status != Sent {
		t.Errorf("without MyHostname: %+v", res[0])
	}
}

func TestBadNexthop(t *testing.T) {
	tr := newTransport(t, Options{})
	res := tr.Deliver(context.Background(), message("[127.0.0.1]:notaport", simpleContent, "a@example.com"))
	checkResult(t, res[0], Deferred, "4.3.5", `bad network port in destination "[127.0.0.1]:notaport"`, "none")
}

// Content read from a reader that cannot rewind gets one server only.
func TestContentReadError(t *testing.T) {
	f := newFakeServer(t, nil)
	tr := newTransport(t, Options{})
	m := message(f.nexthop(), "", "a@example.com")
	m.Content = io.MultiReader(strings.NewReader("Subject: x\r\n\r\npart"), iotest.ErrReader(io.ErrUnexpectedEOF))
	res := tr.Deliver(context.Background(), m)
	checkResult(t, res[0], Deferred, "4.3.0", "local data error while talking to 127.0.0.1[127.0.0.1]", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port()))
	if n := len(f.messages()); n != 0 {
		t.Errorf("server accepted %d messages from a broken stream", n)
	}
}

func TestPipelining(t *testing.T) {
	r := newRawServer(t, func(r *rawServer) {
		r.ehlo = "250-raw.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
		r.hold = true // answers MAIL and RCPT only once DATA is in
	})
	tr := newTransport(t, Options{MailTimeout: 2 * time.Second, RcptTimeout: 2 * time.Second})
	var rcpts []string
	for i := range 300 { // more than one 4 KiB window of commands
		rcpts = append(rcpts, fmt.Sprintf("recipient-number-%03d@example.com", i))
	}
	res := tr.Deliver(context.Background(), message(r.nexthop(), simpleContent, rcpts[:3]...))
	for _, x := range res {
		if x.Status != Sent {
			t.Fatalf("pipelined: %+v", x)
		}
	}

	// A real server with many recipients: commands go in windows.
	f := newFakeServer(t, nil)
	res = tr.Deliver(context.Background(), message(f.nexthop(), simpleContent, rcpts...))
	for i, x := range res {
		if x.Status != Sent {
			t.Fatalf("recipient %d: %+v", i, x)
		}
	}
	if got := f.messages()[0].rcpts; !slices.Equal(got, rcpts) {
		t.Errorf("server got %d recipients, want %d in order", len(got), len(rcpts))
	}
}

func TestMXSessionLimit(t *testing.T) {
	var servers []*fakeServer
	ports := map[netip.AddrPort]uint16{}
	res := &fakeResolver{mx: map[string][]*net.MX{}, hosts: map[string][]netip.Addr{}}
	for i := range 3 {
		f := newFakeServer(t, nil)
		f.rcptReply["a@example.test"] = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: fmt.Sprintf("busy %d", i+1)}
		servers = append(servers, f)
		host := fmt.Sprintf("mx%d.example.test", i+1)
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		res.mx["example.test"] = append(res.mx["example.test"], &net.MX{Host: host, Pref: uint16(10 * (i + 1))})
		res.hosts[host] = []netip.Addr{a}
		ports[netip.AddrPortFrom(a, 25)] = f.port()
	}
	dialer := &mapDialer{t: t, ports: ports}
	tr := newTransport(t, Options{Resolver: res}) // smtp_mx_session_limit = 2
	tr.dial = dialer.dial
	r := tr.Deliver(context.Background(), message("example.test", simpleContent, "a@example.test"))
	checkResult(t, r[0], Deferred, "4.3.0", "host mx2.example.test[192.0.2.2] said: 451 4.3.0 busy 2 (in reply to RCPT TO command)", "mx2.example.test[192.0.2.2]:25")
	if n := servers[2].l.accepted.Load(); n != 0 {
		t.Errorf("third MX got %d connections, want none", n)
	}
}

// A server that says why before it hangs up in the middle of the data is
// quoted, as Postfix does.
func TestPrematureReply(t *testing.T) {
	f := newFakeServer(t, nil)
	f.data = func(c *smtp.Conn, r io.Reader) error {
		io.CopyN(io.Discard, r, 1000)
		io.WriteString(c.Conn(), "552 5.3.4 Error: message file too big\r\n")
		c.Conn().Close()
		return nil
	}
	tr := newTransport(t, Options{})
	big := strings.Repeat(strings.Repeat("z", 78)+"\r\n", 200*1024) // 16 MiB
	res := tr.Deliver(context.Background(), message(f.nexthop(), big, "a@example.com"))
	relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port())
	// Whether the reply can still be read depends on the kernel; either
	// text is Postfix's.
	t.Logf("result: %+v", res[0])
	if res[0].Reply != "host 127.0.0.1[127.0.0.1] said: 552 5.3.4 Error: message file too big (in reply to end of DATA command)" {
		checkResult(t, res[0], Deferred, "4.4.2", "lost connection with 127.0.0.1[127.0.0.1] while sending message body", relay)
	} else if res[0].Status != Bounced || res[0].DSN != "5.3.4" {
		t.Errorf("result %+v", res[0])
	}
}

// TestVerifyProbe: an address verification probe says per recipient what
// RCPT answered, sends no content, and leaves the session reusable.
func TestVerifyProbe(t *testing.T) {
	f := newFakeServer(t, nil)
	f.rcptReply["later@example.com"] = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "Greylisted"}
	f.rcptReply["gone@example.com"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<gone@example.com>: Recipient address rejected: User unknown"}
	tr := newTransport(t, Options{ConnectionReuse: true})
	relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", f.port())
	for i, want := range []int{1, 2} {
		m := message(f.nexthop(), simpleContent, "ok@example.com", "later@example.com", "gone@example.com")
		m.Verify = true
		res := tr.Deliver(context.Background(), m)
		checkResult(t, res[0], Sent, "2.0.0", "host 127.0.0.1[127.0.0.1] said: 250 2.0.0 I'll make sure <ok@example.com> gets this (in reply to RCPT TO command)", relay)
		checkResult(t, res[1], Deferred, "4.2.1", "host 127.0.0.1[127.0.0.1] said: 450 4.2.1 Greylisted (in reply to RCPT TO command)", relay)
		checkResult(t, res[2], Bounced, "5.1.1", "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command)", relay)
		if res[0].ConnUse != want {
			t.Errorf("probe %d: conn_use=%d, want %d", i, res[0].ConnUse, want)
		}
	}
	if n := len(f.messages()); n != 0 {
		t.Errorf("server got %d messages from probes, want none", n)
	}
	if n := f.l.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (reset and reused)", n)
	}
}
