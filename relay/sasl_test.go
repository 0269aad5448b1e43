package relay

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// authServer is a scripted SMTP server that offers AUTH with mechs and
// takes user/pass by PLAIN or LOGIN; it records the command lines.
type authServer struct {
	l          *countingListener
	mechs      string
	user, pass string
	starttls   bool // offer STARTTLS, and break the handshake

	mu    sync.Mutex
	lines []string
}

func newAuthServer(t *testing.T, mechs string, starttls bool) *authServer {
	a := &authServer{l: listenLocal(t), mechs: mechs, user: "joe", pass: "s3cret", starttls: starttls}
	go func() {
		for {
			c, err := a.l.Accept()
			if err != nil {
				return
			}
			go a.session(c)
		}
	}()
	t.Cleanup(func() { a.l.Close() })
	return a
}

func (a *authServer) nexthop() string { return fmt.Sprintf("[127.0.0.1]:%d", portOf(a.l)) }

func (a *authServer) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	read := func() string {
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			return "" // the client hung up: nothing it said
		}
		line = strings.TrimRight(line, "\r\n")
		a.mu.Lock()
		a.lines = append(a.lines, line)
		a.mu.Unlock()
		return line
	}
	decode := func(s string) string { b, _ := base64.StdEncoding.DecodeString(s); return string(b) }
	io.WriteString(c, "220 auth.test ESMTP\r\n")
	for {
		line := read()
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ext := "250-AUTH " + a.mechs + "\r\n"
			if a.starttls {
				ext = "250-STARTTLS\r\n" + ext
			}
			io.WriteString(c, "250-auth.test\r\n"+ext+"250 8BITMIME\r\n")
		case "STARTTLS":
			io.WriteString(c, "220 2.0.0 Ready to start TLS\r\nthis is no TLS server hello\r\n")
			return
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			var user, pass string
			switch mech {
			case "PLAIN":
				if initial == "" {
					io.WriteString(c, "334 \r\n")
					initial = read()
				}
				parts := strings.Split(decode(initial), "\x00")
				if len(parts) == 3 {
					user, pass = parts[1], parts[2]
				}
				if user == "greedy" {
					// Wants more than PLAIN has to say.
					io.WriteString(c, "334 bW9yZT8=\r\n")
					read()
					io.WriteString(c, "501 5.5.2 cancelled\r\n")
					continue
				}
			case "LOGIN":
				io.WriteString(c, "334 VXNlcm5hbWU6\r\n")
				user = decode(read())
				io.WriteString(c, "334 UGFzc3dvcmQ6\r\n")
				pass = decode(read())
			}
			if user == a.user && pass == a.pass {
				io.WriteString(c, "235 2.7.0 Authentication successful\r\n")
			} else {
				io.WriteString(c, "535 5.7.8 Error: authentication failed: authentication failure\r\n")
			}
		case "MAIL", "RCPT", "RSET":
			io.WriteString(c, "250 2.0.0 Ok\r\n")
		case "DATA":
			io.WriteString(c, "354 go ahead\r\n")
			for read() != "." {
			}
			io.WriteString(c, "250 2.0.0 Ok: queued\r\n")
		case "QUIT":
			io.WriteString(c, "221 2.0.0 Bye\r\n")
			return
		default:
			return
		}
	}
}

// auths returns the AUTH dialogue lines received: AUTH and the responses
// after it, up to MAIL or QUIT.
func (a *authServer) auths() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	in := false
	for _, l := range a.lines {
		switch {
		case strings.HasPrefix(l, "AUTH "):
			in = true
		case strings.HasPrefix(l, "MAIL ") || l == "QUIT":
			in = false
		}
		if in {
			out = append(out, l)
		}
	}
	return out
}

func passwords(entries map[string]string) func(context.Context, string) (string, bool, error) {
	return func(_ context.Context, key string) (string, bool, error) {
		v, ok := entries[key]
		return v, ok, nil
	}
}

func TestSASLClient(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plaintextOK := SASLOptions{SoftBounce: true}
	cases := []struct {
		name    string
		mechs   string
		entries map[string]string // by key; "HOP" is replaced by the next hop
		opts    SASLOptions
		sender  string
		status  Status
		dsn     string
		reply   string
		auth    []string
	}{
		{name: "PLAIN by next hop", mechs: "PLAIN LOGIN", entries: map[string]string{"HOP": "joe:s3cret"}, opts: plaintextOK,
			status: Sent, dsn: "2.0.0", reply: "250 2.0.0 Ok: queued", auth: []string{"AUTH PLAIN " + b64("\x00joe\x00s3cret")}},
		{name: "LOGIN by host name, filtered", mechs: "PLAIN LOGIN", entries: map[string]string{"127.0.0.1": "joe:s3cret"},
			opts:   SASLOptions{MechanismFilter: []string{"login"}},
			status: Sent, dsn: "2.0.0", reply: "250 2.0.0 Ok: queued", auth: []string{"AUTH LOGIN", b64("joe"), b64("s3cret")}},
		{name: "by sender first", mechs: "PLAIN", entries: map[string]string{"HOP": "joe:wrong", "sender@example.org": "joe:s3cret"},
			opts:   SASLOptions{SenderPassword: passwords(map[string]string{"sender@example.org": "joe:s3cret"})},
			status: Sent, dsn: "2.0.0", reply: "250 2.0.0 Ok: queued", auth: []string{"AUTH PLAIN " + b64("\x00joe\x00s3cret")}},
		{name: "no login for this server", mechs: "PLAIN", entries: map[string]string{"[elsewhere.test]": "joe:s3cret"},
			status: Sent, dsn: "2.0.0", reply: "250 2.0.0 Ok: queued"},
		{name: "wrong password, soft bounce", mechs: "PLAIN", entries: map[string]string{"HOP": "joe:wrong"}, opts: plaintextOK,
			status: Deferred, dsn: "4.7.8", reply: "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: authentication failure",
			auth: []string{"AUTH PLAIN " + b64("\x00joe\x00wrong")}},
		{name: "wrong password bounces", mechs: "PLAIN", entries: map[string]string{"HOP": "joe:wrong"},
			status: Bounced, dsn: "5.7.8", reply: "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 Error: authentication failed: authentication failure",
			auth: []string{"AUTH PLAIN " + b64("\x00joe\x00wrong")}},
		{name: "noplaintext", mechs: "PLAIN LOGIN", entries: map[string]string{"HOP": "joe:s3cret"},
			opts:   SASLOptions{Security: SASLSecurity{excludesPlaintext: "noplaintext"}},
			status: Deferred, dsn: "4.7.0", reply: "SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: no mechanism available"},
		{name: "no mechanism we have", mechs: "CRAM-MD5", entries: map[string]string{"HOP": "joe:s3cret"},
			status: Deferred, dsn: "4.7.0", reply: "SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: no mechanism available"},
		{name: "a challenge too many", mechs: "PLAIN", entries: map[string]string{"HOP": "greedy:s3cret"},
			status: Deferred, dsn: "4.7.0", reply: "SASL authentication failed; cannot authenticate to server 127.0.0.1[127.0.0.1]: protocol error",
			auth: []string{"AUTH PLAIN " + b64("\x00greedy\x00s3cret")}},
		{name: "none left by the filter", mechs: "CRAM-MD5", entries: map[string]string{"HOP": "joe:s3cret"},
			opts:   SASLOptions{MechanismFilter: []string{"plain", "login"}},
			status: Deferred, dsn: "4.7.0", reply: "SASL authentication failed: server 127.0.0.1[127.0.0.1] offered no compatible authentication mechanisms for this type of connection security"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newAuthServer(t, c.mechs, false)
			entries := map[string]string{}
			for k, v := range c.entries {
				entries[strings.ReplaceAll(k, "HOP", srv.nexthop())] = v
			}
			opts := c.opts
			opts.Password = passwords(entries)
			var logged []string
			var mu sync.Mutex
			tr := newTransport(t, Options{SASL: opts, Log: func(l string) { mu.Lock(); logged = append(logged, l); mu.Unlock() }})
			res := tr.Deliver(context.Background(), message(srv.nexthop(), simpleContent, "rcpt@example.com"))
			checkResult(t, res[0], c.status, c.dsn, c.reply, fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", portOf(srv.l)))
			if got := srv.auths(); !slices.Equal(got, c.auth) {
				t.Errorf("AUTH dialogue %q, want %q", got, c.auth)
			}
			if c.opts.MechanismFilter != nil && c.mechs == "CRAM-MD5" && !slices.ContainsFunc(logged, func(l string) bool {
				return strings.Contains(l, "offered no supported AUTH mechanisms: 'CRAM-MD5'")
			}) {
				t.Errorf("no warning about the mechanisms in %q", logged)
			}
		})
	}
}

func TestParseSASLSecurity(t *testing.T) {
	for _, c := range []struct {
		in      string
		plain   bool
		wantErr bool
	}{
		{"noanonymous", true, false},
		{"", true, false},
		{"noplaintext, noanonymous", false, false},
		{"noactive", false, false},
		{"NODICTIONARY", false, false},
		{"nosuch", false, true},
	} {
		s, err := ParseSASLSecurity(strings.FieldsFunc(c.in, func(r rune) bool { return r == ',' || r == ' ' }))
		if (err != nil) != c.wantErr || err == nil && (s.excludesPlaintext == "") != c.plain {
			t.Errorf("%q: %+v %v", c.in, s, err)
		}
	}
}

func TestFallbackRelay(t *testing.T) {
	fb := newFakeServer(t, nil)
	var logged []string
	var mu sync.Mutex
	tr := newTransport(t, Options{FallbackRelay: "[127.0.0.1]:" + fmt.Sprint(closedPort(t)) + ", " + fb.nexthop(),
		Log: func(l string) { mu.Lock(); logged = append(logged, l); mu.Unlock() }})
	closed := closedPort(t)
	res := tr.Deliver(context.Background(), message(fmt.Sprintf("[127.0.0.1]:%d", closed), simpleContent, "rcpt@example.com"))
	checkResult(t, res[0], Sent, "2.0.0", "250 2.0.0 OK: queued", fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", fb.port()))
	if !slices.ContainsFunc(logged, func(l string) bool {
		return strings.Contains(l, fmt.Sprintf("connect to 127.0.0.1[127.0.0.1]:%d: Connection refused", closed))
	}) {
		t.Errorf("the skipped next hop is not logged: %q", logged)
	}

	// Not found, with a fallback relay that cannot be found either: the
	// mail waits (a configuration problem), it does not bounce.
	tr = newTransport(t, Options{FallbackRelay: "[nowhere.invalid]", Resolver: &fakeResolver{}})
	res = tr.Deliver(context.Background(), message("nosuch.invalid", simpleContent, "rcpt@example.com"))
	if res[0].Status != Deferred || res[0].DSN != "4.3.5" {
		t.Errorf("unresolvable next hop and fallback: %+v", res[0])
	}
}

// TestNoPlaintextRetryWithLogin: an opportunistic TLS handshake that
// fails is tried again in clear text, but not when there is a login for
// the server (Postfix's PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE).
func TestNoPlaintextRetryWithLogin(t *testing.T) {
	for _, withLogin := range []bool{false, true} {
		srv := newAuthServer(t, "PLAIN", true)
		entries := map[string]string{}
		if withLogin {
			entries[srv.nexthop()] = "joe:s3cret"
		}
		tr := newTransport(t, Options{TLS: TLSOptions{Level: TLSMay}, SASL: SASLOptions{Password: passwords(entries)}})
		res := tr.Deliver(context.Background(), message(srv.nexthop(), simpleContent, "rcpt@example.com"))
		relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", portOf(srv.l))
		if withLogin {
			checkResult(t, res[0], Deferred, "4.7.5", "Cannot start TLS: handshake failure", relay)
			if n := srv.l.accepted.Load(); n != 1 {
				t.Errorf("with a login: %d connections, want 1", n)
			}
		} else {
			checkResult(t, res[0], Sent, "2.0.0", "250 2.0.0 Ok: queued", relay)
		}
	}
}
