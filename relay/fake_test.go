package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Fakes for the relay tests: in-process go-smtp servers that can be told
// to answer badly, a raw TCP server that records the bytes it gets, a map
// resolver, and a dialer that maps made-up server addresses to local
// ports. Every socket is on 127.0.0.1.

const testHelo = "relay.test"

// countingListener counts accepted connections and can close them all.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// closeConns closes the server side of every connection so far.
func (l *countingListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func listenLocal(t *testing.T) *countingListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &countingListener{Listener: l}
}

func portOf(l net.Listener) uint16 {
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(l)
	l.Close()
	return p
}

// received is one message a fake server accepted.
type received struct {
	from     string
	mailOpts smtp.MailOptions
	rcpts    []string
	rcptOpts []smtp.RcptOptions
	data     []byte
}

// fakeServer is a go-smtp server whose answers a test sets.
type fakeServer struct {
	t   *testing.T
	l   *countingListener
	srv *smtp.Server

	mu        sync.Mutex
	rcptReply map[string]*smtp.SMTPError // by recipient address
	mailReply *smtp.SMTPError
	rcptDelay time.Duration
	// data, when set, handles DATA instead of reading and accepting.
	data func(c *smtp.Conn, r io.Reader) error
	msgs []*received
}

func newFakeServer(t *testing.T, configure func(*smtp.Server)) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, l: listenLocal(t), rcptReply: map[string]*smtp.SMTPError{}}
	f.srv = smtp.NewServer(f)
	f.srv.Domain = "fake.test"
	f.srv.ReadTimeout = 10 * time.Second
	f.srv.WriteTimeout = 10 * time.Second
	f.srv.MaxLineLength = 1 << 20
	if configure != nil {
		configure(f.srv)
	}
	go f.srv.Serve(f.l)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeServer) port() uint16 { return portOf(f.l) }

// nexthop is "[127.0.0.1]:port".
func (f *fakeServer) nexthop() string { return fmt.Sprintf("[127.0.0.1]:%d", f.port()) }

func (f *fakeServer) messages() []*received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*received(nil), f.msgs...)
}

func (f *fakeServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &fakeSession{f: f, c: c}, nil
}

type fakeSession struct {
	f   *fakeServer
	c   *smtp.Conn
	msg *received
}

func (s *fakeSession) Mail(from string, opts *smtp.MailOptions) error {
	s.f.mu.Lock()
	reply := s.f.mailReply
	s.f.mu.Unlock()
	if reply != nil {
		return reply
	}
	s.msg = &received{from: from}
	if opts != nil {
		s.msg.mailOpts = *opts
	}
	return nil
}

func (s *fakeSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.f.mu.Lock()
	reply, delay := s.f.rcptReply[to], s.f.rcptDelay
	s.f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if reply != nil {
		return reply
	}
	s.msg.rcpts = append(s.msg.rcpts, to)
	var o smtp.RcptOptions
	if opts != nil {
		o = *opts
	}
	s.msg.rcptOpts = append(s.msg.rcptOpts, o)
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	s.f.mu.Lock()
	hook := s.f.data
	s.f.mu.Unlock()
	if hook != nil {
		return hook(s.c, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.f.mu.Lock()
	s.f.msgs = append(s.f.msgs, s.msg)
	s.f.mu.Unlock()
	return nil
}

func (s *fakeSession) Reset()        { s.msg = nil }
func (s *fakeSession) Logout() error { return nil }

// rawServer is a minimal scripted SMTP server that records every command
// line and the DATA bytes exactly as they arrive.
type rawServer struct {
	t *testing.T
	l *countingListener

	greeting string // whole greeting reply, CRLF included
	ehlo     string // whole EHLO reply
	// dot is the reply to the end of data.
	dot string
	// hold keeps the replies to RSET, MAIL and RCPT until DATA arrives:
	// only a pipelining client gets through.
	hold bool
	// rset is the reply to RSET; closeAfterRSET hangs up once it is sent,
	// muteAfterRSET answers nothing more.
	rset                          string
	closeAfterRSET, muteAfterRSET bool

	mu    sync.Mutex
	lines []string // command lines, without CRLF
	data  [][]byte // DATA bytes up to and including the final ".\r\n"
	after []string // the first line after each end of data
}

func newRawServer(t *testing.T, configure func(*rawServer)) *rawServer {
	t.Helper()
	r := &rawServer{
		t:        t,
		l:        listenLocal(t),
		greeting: "220 raw.test ESMTP\r\n",
		ehlo:     "250-raw.test\r\n250 8BITMIME\r\n",
		dot:      "250 2.0.0 Ok: queued as RAW1\r\n",
		rset:     "250 2.0.0 Ok\r\n",
	}
	if configure != nil {
		configure(r)
	}
	go r.serve()
	t.Cleanup(func() { r.l.Close() })
	return r
}

func (r *rawServer) nexthop() string { return fmt.Sprintf("[127.0.0.1]:%d", portOf(r.l)) }

func (r *rawServer) serve() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		go r.session(c)
	}
}

func (r *rawServer) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, r.greeting)
	afterData := false
	var held []string
	reply := func(s string) {
		if r.hold {
			held = append(held, s)
			return
		}
		io.WriteString(c, s)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		r.mu.Lock()
		r.lines = append(r.lines, cmd)
		if afterData {
			r.after = append(r.after, line)
			afterData = false
		}
		r.mu.Unlock()
		verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0])
		switch verb {
		case "EHLO":
			io.WriteString(c, r.ehlo)
		case "MAIL", "RCPT":
			reply("250 2.0.0 Ok\r\n")
		case "RSET":
			reply(r.rset)
			if r.closeAfterRSET {
				io.WriteString(c, strings.Join(held, ""))
				return
			}
			if r.muteAfterRSET {
				io.Copy(io.Discard, br)
				return
			}
		case "HELO", "NOOP":
			io.WriteString(c, "250 2.0.0 Ok\r\n")
		case "DATA":
			io.WriteString(c, strings.Join(held, "")+"354 End data with <CR><LF>.<CR><LF>\r\n")
			held = nil
			var data []byte
			for {
				l, err := br.ReadString('\n')
				data = append(data, l...)
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			r.mu.Lock()
			r.data = append(r.data, data)
			r.mu.Unlock()
			io.WriteString(c, r.dot)
			afterData = true
		case "QUIT":
			io.WriteString(c, "221 2.0.0 Bye\r\n")
			return
		default:
			io.WriteString(c, "502 5.5.2 Error: command not recognized\r\n")
		}
	}
}

// commands returns the command lines received, waiting a little for the
// last one: the client does not wait for the reply to QUIT.
func (r *rawServer) commands(last string) []string {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		lines := append([]string(nil), r.lines...)
		r.mu.Unlock()
		if len(lines) > 0 && lines[len(lines)-1] == last || time.Now().After(deadline) {
			return lines
		}
	}
}

// fakeResolver answers from maps; names are looked up without a final dot.
type fakeResolver struct {
	mx      map[string][]*net.MX
	mxErr   map[string]error
	hosts   map[string][]netip.Addr
	hostErr map[string]error
}

func (r *fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if err := r.mxErr[name]; err != nil {
		return nil, err
	}
	return r.mx[name], nil
}

func (r *fakeResolver) LookupHost(_ context.Context, host string) ([]netip.Addr, error) {
	if err := r.hostErr[host]; err != nil {
		return nil, err
	}
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func tempFail(name string) error {
	return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
}

// mapDialer connects made-up server addresses to local ports and records
// the order of attempts; addresses it does not know get a refused
// connection on 127.0.0.1.
type mapDialer struct {
	t     *testing.T
	ports map[netip.AddrPort]uint16
	mu    sync.Mutex
	tried []netip.AddrPort
}

func (m *mapDialer) dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	m.mu.Lock()
	m.tried = append(m.tried, addr)
	port, ok := m.ports[addr]
	m.mu.Unlock()
	if !ok {
		port = closedPort(m.t)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

func (m *mapDialer) attempts() []netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]netip.AddrPort(nil), m.tried...)
}

// newTransport is an SMTP transport with test defaults.
func newTransport(t *testing.T, opts Options) *SMTP {
	t.Helper()
	if opts.HeloName == "" {
		opts.HeloName = testHelo
	}
	tr := NewSMTP(opts)
	t.Cleanup(func() { tr.Close() })
	return tr
}

func message(nexthop string, content string, rcpts ...string) *Message {
	m := &Message{Nexthop: nexthop, Sender: "sender@example.org", Content: strings.NewReader(content), Size: int64(len(content))}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, Recipient{Addr: r})
	}
	return m
}

const simpleContent = "From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: test\r\n\r\nHello.\r\n"
