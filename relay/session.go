package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stage is where a session is in the SMTP conversation: it picks the time
// limit and the words of an error.
type stage int

const (
	stageGreeting stage = iota
	stageEHLO
	stageHELO
	stageMail
	stageRcpt
	stageData
	stageBody
	stageDot
	stageAbort
	stageProbe
	stageQuit
)

// stageWhere completes "lost connection with H[IP] while ..."
// (smtp_proto.c xfer_states and smtp_helo).
var stageWhere = [...]string{
	stageGreeting: "receiving the initial server greeting",
	stageEHLO:     "performing the EHLO handshake",
	stageHELO:     "performing the HELO handshake",
	stageMail:     "sending MAIL FROM",
	stageRcpt:     "sending RCPT TO",
	stageData:     "sending DATA command",
	stageBody:     "sending message body",
	stageDot:      "sending end of data -- message may be sent more than once",
	stageAbort:    "sending final RSET",
	stageProbe:    "sending RSET probe",
	stageQuit:     "sending QUIT",
}

// stageRequest completes "(in reply to ...)" (smtp_proto.c xfer_request).
var stageRequest = [...]string{
	stageMail:  "MAIL FROM command",
	stageRcpt:  "RCPT TO command",
	stageData:  "DATA command",
	stageBody:  "end of DATA command",
	stageDot:   "end of DATA command",
	stageAbort: "final RSET command",
	stageProbe: "RSET probe",
	stageQuit:  "QUIT command",
}

func (o *Options) timeout(st stage) time.Duration {
	switch st {
	case stageGreeting, stageEHLO, stageHELO:
		return o.HeloTimeout
	case stageMail:
		return o.MailTimeout
	case stageRcpt:
		return o.RcptTimeout
	case stageData:
		return o.DataInitTimeout
	case stageBody:
		return o.DataXferTimeout
	case stageDot:
		return o.DataDoneTimeout
	case stageAbort, stageProbe:
		return o.RsetTimeout
	}
	return o.QuitTimeout
}

// conn is a connection whose deadlines the session sets per stage and that
// a cancelled context can interrupt at any moment.
type conn struct {
	net.Conn
	xfer time.Duration // > 0: each write gets this much time (data transfer)

	mu       sync.Mutex
	canceled bool
}

// setDeadline gives the next reads and writes d, unless cancelled.
func (c *conn) setDeadline(d time.Duration) {
	c.mu.Lock()
	if !c.canceled {
		c.Conn.SetDeadline(time.Now().Add(d))
	}
	c.mu.Unlock()
}

func (c *conn) Write(p []byte) (int, error) {
	if c.xfer > 0 {
		c.mu.Lock()
		if !c.canceled {
			c.Conn.SetWriteDeadline(time.Now().Add(c.xfer))
		}
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

// cancel makes every pending and future read and write fail at once.
func (c *conn) cancel() {
	c.mu.Lock()
	c.canceled = true
	c.Conn.SetDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// session is one SMTP connection to one server.
type session struct {
	c    *conn
	br   *bufio.Reader
	bw   *bufio.Writer
	opts *Options

	host        string // the server's name in texts
	addr        netip.AddrPort
	namaddr     string // "host[addr]"
	namaddrport string // "host[addr]:port", the relay= of log lines
	best        bool   // a most preferred MX host

	// Extensions the server offered.
	pipelining, dsn, smtputf8, eightBitMIME, size bool
	sizeLimit                                     int64
	offersTLS                                     bool // STARTTLS offered (and not used yet)
	inTLS                                         bool
	certMatched                                   bool     // the server's certificate verified and matched (levels verify, secure)
	authOffered                                   bool     // AUTH offered, with SASL on (sasl.go)
	authMechs                                     []string // its mechanisms that smtp_sasl_mechanism_filter kept

	opened time.Time
	uses   int  // transactions begun on this session
	broken bool // an I/O error or a 421: never reuse

	idle *time.Timer // while cached
}

func newSession(nc net.Conn, srv server, opts *Options) *session {
	c := &conn{Conn: nc}
	s := &session{
		c:      c,
		br:     bufio.NewReaderSize(c, 4096),
		bw:     bufio.NewWriterSize(c, 32*1024),
		opts:   opts,
		host:   srv.host,
		addr:   srv.addr,
		best:   srv.best,
		opened: time.Now(),
	}
	s.namaddr = fmt.Sprintf("%s[%s]", srv.host, srv.addr.Addr())
	s.namaddrport = fmt.Sprintf("%s:%d", s.namaddr, srv.addr.Port())
	if srv.unix != "" {
		s.namaddr = fmt.Sprintf("%s[%s]", srv.host, srv.unix)
		s.namaddrport = s.namaddr
	}
	return s
}

// connect opens a TCP connection to srv.
func (t *SMTP) connect(ctx context.Context, srv server) (*session, *failure) {
	if srv.unix != "" {
		d := net.Dialer{Timeout: t.opts.ConnectTimeout}
		nc, err := d.DialContext(ctx, "unix", srv.unix)
		if err != nil {
			return nil, softFail("4.4.1", "connect to %s[%s]: %s", srv.host, srv.unix, connectErrorText(err, ctx.Err()))
		}
		return newSession(nc, srv, &t.opts), nil
	}
	nc, err := t.dial(ctx, srv.addr)
	if err != nil {
		return nil, connectFailure(srv.host, srv.addr.Addr().String(), srv.addr.Port(), err, ctx.Err())
	}
	return newSession(nc, srv, &t.opts), nil
}

// handshake reads the greeting and says EHLO, or HELO when EHLO is
// refused with anything but 421 (smtp_proto.c smtp_helo), then starts TLS
// as the policy says and says EHLO again inside it.
func (s *session) handshake(ctx context.Context, srv server, p *tlsPolicy) *failure {
	if f := s.hello(ctx, srv.dest); f != nil {
		return f
	}
	if p.level == TLSNone {
		return nil
	}
	if f := s.startTLS(ctx, p, destinationNames{nexthop: srv.nexthop}); f != nil || !s.inTLS {
		return f
	}
	s.pipelining, s.dsn, s.smtputf8, s.eightBitMIME, s.size, s.sizeLimit = false, false, false, false, false, 0
	s.authOffered, s.authMechs = false, nil
	r, err := s.command(stageEHLO, s.ehloVerb()+s.opts.HeloName)
	if err != nil {
		return s.ioFailure(ctx, stageEHLO, err)
	}
	if r.code/100 != 2 {
		return s.refused(r)
	}
	s.parseEHLO(r)
	return nil
}

// ehloVerb is the greeting command: LHLO for LMTP, else EHLO.
func (s *session) ehloVerb() string {
	if s.opts.LMTP {
		return "LHLO "
	}
	return "EHLO "
}

// hello reads the greeting and says EHLO, or HELO.
func (s *session) hello(ctx context.Context, nexthop string) *failure {
	s.c.setDeadline(s.opts.HeloTimeout)
	r, err := s.readReply()
	if err != nil {
		return s.ioFailure(ctx, stageGreeting, err)
	}
	switch r.code / 100 {
	case 2:
	case 5:
		r.dsn = "4" + r.dsn[1:] // smtp_skip_5xx_greeting = yes
		fallthrough
	default:
		return s.refused(r)
	}
	r, err = s.command(stageEHLO, s.ehloVerb()+s.opts.HeloName)
	if err != nil {
		return s.ioFailure(ctx, stageEHLO, err)
	}
	if r.code/100 == 2 {
		if s.parseEHLO(r) {
			if s.best {
				return hardFail("5.4.6", "mail for %s loops back to myself", nexthop)
			}
			return softFail("4.4.6", "mail for %s loops back to myself", nexthop)
		}
		return nil
	}
	if r.code == 421 || s.opts.LMTP { // LMTP has no HELO to fall back to
		return s.refused(r)
	}
	r, err = s.command(stageHELO, "HELO "+s.opts.HeloName)
	if err != nil {
		return s.ioFailure(ctx, stageHELO, err)
	}
	if r.code/100 != 2 {
		return s.refused(r)
	}
	return nil
}

func (s *session) refused(r *reply) *failure {
	s.broken = true
	return replyFailure(r, "host %s refused to talk to me: %s", s.namaddr, r.line())
}

// parseEHLO notes the extensions the server offers and reports whether it
// greeted with our own host name.
func (s *session) parseEHLO(r *reply) (loop bool) {
	n := 0
	for _, line := range strings.Split(r.text, "\n") {
		// Skip the reply code and its '-' or ' ', then split on " \t=".
		line = strings.TrimLeft(line, "- ")
		if i := strings.IndexAny(line, "- "); i >= 0 {
			line = line[i+1:]
		} else {
			continue
		}
		words := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
		if len(words) == 0 {
			continue
		}
		if n == 0 {
			loop = s.opts.MyHostname != "" && strings.EqualFold(words[0], s.opts.MyHostname)
			n++
			continue
		}
		n++
		switch strings.ToUpper(words[0]) {
		case "PIPELINING":
			s.pipelining = true
		case "STARTTLS":
			s.offersTLS = !s.inTLS
		case "8BITMIME":
			s.eightBitMIME = true
		case "DSN":
			s.dsn = true
		case "SMTPUTF8":
			s.smtputf8 = true
		case "AUTH":
			s.noteAUTH(words[1:])
		case "SIZE":
			s.size = true
			if len(words) > 1 {
				if v, err := strconv.ParseInt(words[1], 10, 64); err == nil && v > 0 {
					s.sizeLimit = v
				}
			}
		}
	}
	return loop
}

// command sends one command and reads its reply.
func (s *session) command(st stage, line string) (*reply, error) {
	s.c.setDeadline(s.opts.timeout(st))
	s.bw.WriteString(line)
	s.bw.WriteString("\r\n")
	if err := s.bw.Flush(); err != nil {
		return nil, err
	}
	r, err := s.readReply()
	if err == nil {
		r.command = commandName(line)
	}
	return r, err
}

// probe checks a cached session with RSET before it is used again.
func (s *session) probe() bool {
	r, err := s.command(stageProbe, "RSET")
	return err == nil && r.code/100 == 2
}

// quit says goodbye without waiting for the reply (smtp_skip_quit_response
// = yes) and closes the connection.
func (s *session) quit() {
	if !s.broken {
		s.c.setDeadline(s.opts.QuitTimeout)
		s.bw.WriteString("QUIT\r\n")
		s.bw.Flush()
	}
	s.c.Close()
}

// ioFailure words an I/O error at stage st (smtp_trouble.c
// smtp_stream_except) and marks the session unusable.
func (s *session) ioFailure(ctx context.Context, st stage, err error) *failure {
	s.broken = true
	where := stageWhere[st]
	if st == stageEHLO && s.opts.LMTP {
		where = "performing the LHLO handshake"
	}
	var ne net.Error
	switch {
	case errors.Is(err, errLocalData):
		return softFail("4.3.0", "local data error while talking to %s", s.namaddr)
	case errors.Is(ctx.Err(), context.Canceled):
		return softFail("4.4.2", "conversation with %s interrupted while %s", s.namaddr, where)
	case ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return softFail("4.4.2", "conversation with %s timed out while %s", s.namaddr, where)
	}
	return softFail("4.4.2", "lost connection with %s while %s", s.namaddr, where)
}

// errLocalData is a failure to read the stored message.
var errLocalData = errors.New("local data error")

// A reply is one SMTP reply, multi-line replies joined with "\n".
type reply struct {
	code int
	dsn  string // enhanced status code, or X.0.0, or 5.5.0 for garbage
	text string // the reply lines as received (made printable), at most lineLimit bytes
	host string // the server's host name
	// command is what the reply answered (Reply.Command); "" for the
	// greeting.
	command string
}

// line is the reply as one line, the way Postfix quotes it.
func (r *reply) line() string { return strings.ReplaceAll(r.text, "\n", " ") }

// lineLimit bounds one reply line and the text kept of a reply
// (line_length_limit, 2048).
const lineLimit = 2048

// readReply reads one reply as Postfix's smtp_chat_resp does: lines are
// continued until one starts with three digits and a space (or ends
// there); anything else, garbage included, continues the reply.
func (s *session) readReply() (*reply, error) {
	var text []byte
	var last string
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		line = printable(line)
		if len(text) < lineLimit {
			if len(text) > 0 {
				text = append(text, '\n')
			}
			text = append(text, line...)
		}
		last = line
		if len(line) >= 3 && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]) && (len(line) == 3 || line[3] == ' ') {
			break
		}
	}
	r := &reply{text: string(text), dsn: "5.5.0", host: s.host}
	r.code = int(last[0]-'0')*100 + int(last[1]-'0')*10 + int(last[2]-'0')
	if c := last[0]; c == '2' || c == '4' || c == '5' {
		rest := strings.TrimLeft(last[3:], " ")
		if n := dsnValid(rest); n > 0 && rest[0] == c {
			r.dsn = rest[:n]
		} else {
			r.dsn = string(c) + ".0.0"
		}
	}
	return r, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// readLine reads one line without its line end; the part of a line beyond
// lineLimit is read and dropped.
func (s *session) readLine() (string, error) {
	var line []byte
	for {
		frag, err := s.br.ReadSlice('\n')
		if room := lineLimit - len(line); room > 0 {
			line = append(line, frag[:min(len(frag), room)]...)
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", err
		}
	}
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
		if n > 0 && line[n-1] == '\r' {
			n--
		}
	}
	return string(line[:n]), nil
}
