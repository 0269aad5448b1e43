package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postgate/gateway/config"
	"postgate/restrictions"
	"postgate/rules"
)

// Before-queue content filtering (smtpd_proxy_filter), as Postfix's
// smtpd_proxy: the session relays each mail transaction live to an SMTP
// filter, and postgate queues nothing itself (the filter hands accepted
// mail to another listener, which queues it). At the first recipient that
// passes the restrictions the session connects to the filter, reads its
// greeting, says EHLO smtpd_proxy_ehlo, sends XFORWARD when the filter
// offers it, and forwards the client's MAIL command as received; then
// each accepted RCPT command as received, DATA, our Received: header and
// the content as it arrives, and the end of data. The filter's replies to
// MAIL, RCPT and DATA when they refuse, and its reply to the end of data,
// are the client's replies. A filter that cannot be reached, that fails,
// or that answers out of protocol gets Postfix's generic "451 4.3.0
// Error: queue file write error". smtpd_proxy_timeout bounds the connect
// and each read and write. Header and body checks, content milters and
// mail authentication are not run by this session: the listener the
// filter reinjects into runs them, as Postfix's cleanup does there.

// proxyFilter is a service's smtpd_proxy_filter; nil when there is none.
type proxyFilter struct {
	name    string // smtpd_proxy_filter as configured, for log lines
	network string // "tcp" or "unix"
	addr    string
	ehlo    string // smtpd_proxy_ehlo
	timeout time.Duration
}

// proxyFailed is Postfix's reply when the filter fails (CLEANUP_STAT_PROXY).
var proxyFailed = rules.Reply{Code: 451, DSN: "4.3.0", Text: "Error: queue file write error"}

// newProxyFilter reads smtpd_proxy_filter and its settings; warn gets
// what postgate ignores.
func newProxyFilter(cfg *config.Config, warn func(string)) (*proxyFilter, error) {
	spec := cfg.Get("smtpd_proxy_filter")
	if spec == "" {
		return nil, nil
	}
	for _, o := range cfg.List("smtpd_proxy_options") {
		switch strings.ToLower(o) {
		case "speed_adjust":
			warn(fmt.Sprintf("%s: parameter smtpd_proxy_options: speed_adjust is not supported by postgate and is ignored: the filter gets each command and the content as they arrive", cfg.Pos("smtpd_proxy_options")))
		default:
			return nil, paramError(cfg, "smtpd_proxy_options", fmt.Errorf("unknown option %q (speed_adjust)", o))
		}
	}
	f := &proxyFilter{name: spec, ehlo: cfg.Get("smtpd_proxy_ehlo"), timeout: cfg.Duration("smtpd_proxy_timeout")}
	if path, ok := cutPrefixFold(spec, "unix:"); ok {
		if !filepath.IsAbs(path) {
			// Postfix's smtpd runs in the queue directory.
			path = filepath.Join(cfg.Get("queue_directory"), path)
		}
		f.network, f.addr = "unix", path
		return f, nil
	}
	hostport, _ := cutPrefixFold(spec, "inet:")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return nil, paramError(cfg, "smtpd_proxy_filter", fmt.Errorf("%q is not host:port, inet:host:port or unix:/path", spec))
	}
	f.network, f.addr = "tcp", net.JoinHostPort(strings.Trim(host, "[]"), port)
	return f, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// proxyConn is one mail transaction's connection to the filter.
type proxyConn struct {
	f    *proxyFilter
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	stop func() bool // undoes the close on the session's end
	// failed: the connection failed (or the filter answered out of
	// protocol); every later command gets proxyFailed.
	failed bool
	data   io.WriteCloser // the content after DATA, dot-stuffed
	line   int            // line_length_limit, for the filter's reply lines
}

// proxyIO is what the connection's reads and writes go through: each is
// bounded by smtpd_proxy_timeout.
type proxyIO struct{ p *proxyConn }

func (x proxyIO) Read(b []byte) (int, error) {
	x.p.c.SetReadDeadline(time.Now().Add(x.p.f.timeout))
	return x.p.c.Read(b)
}

func (x proxyIO) Write(b []byte) (int, error) {
	x.p.c.SetWriteDeadline(time.Now().Add(x.p.f.timeout))
	return x.p.c.Write(b)
}

// proxyRcpt forwards an accepted RCPT command to the filter, connecting
// first at the transaction's first recipient. It returns the reply that
// refuses the recipient, or nil.
func (s *session) proxyRcpt() *rules.Reply {
	if s.txn.proxy == nil {
		if r := s.proxyConnect(); r != nil {
			return r
		}
	}
	if r, ok := s.proxyCmd(s.line, '2'); !ok {
		return &r
	}
	return nil
}

// proxyConnect connects to the filter (s.txn.proxy) and opens the
// transaction: greeting, EHLO, XFORWARD, MAIL. On failure the connection
// is closed and the reply is the client's.
func (s *session) proxyConnect() *rules.Reply {
	f := s.svc.proxy
	d := net.Dialer{Timeout: f.timeout}
	c, err := d.DialContext(s.ctx, f.network, f.addr)
	if err != nil {
		s.svc.log.Logf("smtpd", "warning: connect to proxy filter %s: %v", f.name, dialReason(err))
		r := proxyFailed
		return &r
	}
	p := &proxyConn{f: f, c: c, line: s.svc.lineLimit}
	p.r, p.w = bufio.NewReader(proxyIO{p}), bufio.NewWriter(proxyIO{p})
	p.stop = context.AfterFunc(s.ctx, func() { c.Close() })
	s.txn.proxy = p
	fail := func(r rules.Reply, fake bool) *rules.Reply {
		s.txn.proxy = nil
		p.close()
		// The client waits for a reply to MAIL or RCPT, not to a
		// greeting or EHLO: those failures get the generic reply.
		if fake {
			r = proxyFailed
		}
		return &r
	}
	if r, ok := s.proxyCmd("", '2'); !ok {
		return fail(r, true)
	}
	ehlo, ok := s.proxyCmd("EHLO "+f.ehlo, '2')
	if !ok {
		return fail(ehlo, true)
	}
	for _, line := range s.xforwardLines(ehlo) {
		if r, ok := s.proxyCmd(line, '2'); !ok {
			return fail(r, true)
		}
	}
	if r, ok := s.proxyCmd(s.txn.proxyMail, '2'); !ok {
		return fail(r, false)
	}
	return nil
}

// dialReason is the system's reason of a failed connect, as Postfix's %m.
func dialReason(err error) string {
	var errno syscall.Errno
	switch {
	case isTimeout(err):
		return "Connection timed out"
	case errors.As(err, &errno):
		t := errno.Error()
		return strings.ToUpper(t[:1]) + t[1:]
	}
	return err.Error()
}

// xforwardLines are the XFORWARD commands for the attributes the filter's
// EHLO reply offers, as Postfix's smtpd_proxy_connect sends them: values
// xtext-encoded, [UNAVAILABLE] for those not known, packed into commands
// of at most 512 bytes with their reply.
func (s *session) xforwardLines(ehlo rules.Reply) []string {
	offered := map[string]bool{}
	for _, l := range strings.Split(ehlo.Text, "\n") {
		words := strings.Fields(l)
		if len(words) > 0 && strings.EqualFold(words[0], "XFORWARD") {
			for _, w := range words[1:] {
				offered[strings.ToUpper(w)] = true
			}
		}
	}
	if len(offered) == 0 {
		return nil
	}
	name, addr, helo, proto := s.client.name, s.client.address(), s.helo, s.proto
	if x := s.txn.xforward; x.set {
		name, addr, helo, proto = orDefault(x.name, name), orDefault(x.addr, addr), orDefault(x.helo, helo), orDefault(x.proto, proto)
	}
	port := ""
	if s.client.port > 0 {
		port = strconv.Itoa(s.client.port)
	}
	source := s.txn.xforward.source // as it was forwarded to us
	if source == "" {
		source = "REMOTE"
		if local, err := matchClients(s.ctx, s.svc.canonical.localClients, s.client.addr, s.peer); err == nil && local {
			source = "LOCAL"
		}
	}
	attrs := []struct{ name, value string }{
		{"NAME", name}, {"ADDR", addr}, {"PORT", port}, {"HELO", helo},
		{"IDENT", ""}, // no queue ID: this session queues nothing
		{"PROTO", proto}, {"SOURCE", source},
	}
	const payloadLimit = 512 - len("250 XFORWARD\r\n")
	var lines []string
	var b strings.Builder
	for _, a := range attrs {
		if !offered[a.name] {
			continue
		}
		v := a.value
		if v == "" || v == "unknown" {
			v = "[UNAVAILABLE]"
		}
		attr := " " + a.name + "=" + rules.Xtext(v)
		if b.Len() > 0 && b.Len()+len(attr) > payloadLimit {
			lines = append(lines, "XFORWARD"+b.String())
			b.Reset()
		}
		b.WriteString(attr)
	}
	if b.Len() > 0 {
		lines = append(lines, "XFORWARD"+b.String())
	}
	return lines
}

// proxyCmd sends line (none when empty: the greeting) to the filter and
// reads its reply. ok says the reply's code starts with want (0: any).
// A failed connection, or a 2xx or 3xx reply that was not wanted, gives
// proxyFailed and fails the connection for the rest of the transaction.
func (s *session) proxyCmd(line string, want byte) (rules.Reply, bool) {
	p := s.txn.proxy
	if p.failed {
		return proxyFailed, false
	}
	if line != "" {
		p.w.WriteString(line)
		p.w.WriteString("\r\n")
		if err := p.w.Flush(); err != nil {
			return s.proxyBroken(err), false
		}
	}
	r, err := p.readReply(s)
	if err != nil {
		return s.proxyBroken(err), false
	}
	if want != 0 && byte('0'+r.Code/100) != want {
		req := line
		if req == "" {
			req = "connection request"
		}
		s.svc.log.Logf("smtpd", "warning: proxy %s rejected \"%s\": \"%s\"", p.f.name, req, r)
		if r.Code/100 == 2 || r.Code/100 == 3 {
			p.failed = true
			return proxyFailed, false
		}
		return r, false
	}
	return r, true
}

// proxyBroken fails the connection after an I/O error and returns the
// client's reply.
func (s *session) proxyBroken(err error) rules.Reply {
	p := s.txn.proxy
	if !p.failed {
		p.failed = true
		if isTimeout(err) {
			s.svc.log.Logf("smtpd", "warning: timeout talking to proxy %s", p.f.name)
		} else {
			s.svc.log.Logf("smtpd", "warning: lost connection with proxy %s", p.f.name)
		}
	}
	return proxyFailed
}

// readReply reads one reply of the filter, its lines made printable, as
// Postfix's smtpd_proxy_cmd: a line that is not "NNN-" continues, with a
// warning unless it ends the reply ("NNN " or "NNN"). The reply keeps
// the filter's text (and enhanced status code) line by line.
func (p *proxyConn) readReply(s *session) (rules.Reply, error) {
	var r rules.Reply
	var lines []string
	for {
		raw, err := p.r.ReadSlice('\n')
		long := errors.Is(err, bufio.ErrBufferFull) || len(raw) > p.line+2
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = p.r.ReadSlice('\n')
		}
		if err != nil {
			return r, err
		}
		text := printable(strings.TrimRight(string(trimEOL(raw)), "\r\n"))
		if long {
			s.svc.log.Logf("smtpd", "warning: %s: response longer than %d: %.30s...", p.f.name, p.line, text)
		}
		code := 0
		if len(text) >= 3 && rules.AllDigits(text[:3]) {
			code, _ = strconv.Atoi(text[:3])
		}
		if len(lines) == 0 {
			r.Code = code
		}
		rest := ""
		if len(text) > 4 {
			rest = text[4:]
		}
		lines = append(lines, rest)
		if code > 0 && len(text) > 3 && text[3] == '-' {
			continue
		}
		if code > 0 && (len(text) == 3 || text[3] == ' ') {
			break
		}
		s.svc.log.Logf("smtpd", "warning: received garbage from proxy %s: %.100s", p.f.name, text)
	}
	r.Text = strings.Join(lines, "\n")
	return r, nil
}

// close ends the connection: QUIT without waiting for its reply, as
// Postfix's smtpd_proxy_close.
func (p *proxyConn) close() {
	if !p.failed {
		p.w.WriteString("QUIT\r\n")
		p.w.Flush()
	}
	p.stop()
	p.c.Close()
}

// proxyData relays DATA: the filter must answer 3xx before the client gets
// 354; then our headers and the content go to the filter as they arrive,
// and the filter's reply to the end of data is the client's.
func (s *session) proxyData() bool {
	if r := s.proxyBegin(); r != nil {
		s.resetTransaction()
		s.reply(*r)
		return false
	}
	s.reply(rules.Reply{Code: 354, Text: "End data with <CR><LF>.<CR><LF>"})
	s.where = "DATA content"
	s.nc.beginRequest(true)
	n, tooBig, err := s.proxyContent(s.c.DataReader(), s.svc.messageSizeLimit)
	if err != nil {
		s.contentLost("DATA", n, err)
		return false
	}
	s.where = "END-OF-MESSAGE"
	if tooBig {
		return s.messageTooBig()
	}
	return s.proxyEnd(n)
}

// proxyBegin sends DATA to the filter (at DATA, or at the first BDAT
// chunk, which the filter gets as DATA) and then our headers. It returns
// the client's reply when the filter refuses.
func (s *session) proxyBegin() *rules.Reply {
	if r, ok := s.proxyCmd("DATA", '3'); !ok {
		return &r
	}
	p := s.txn.proxy
	p.data = textproto.NewWriter(p.w).DotWriter()
	var head []byte
	for _, h := range s.txn.prepend {
		head = append(append(head, h...), '\r', '\n')
	}
	head = s.appendReceivedSPF(head)
	if !s.txn.xforward.set {
		// Postfix leaves its Received: header out when it is itself an
		// intermediate proxy (its client sent XFORWARD).
		head = s.appendReceived(head, time.Now())
	}
	s.proxyWrite(head)
	return nil
}

// proxyChunk relays a BDAT chunk to the filter; the last one ends the
// message. A failed filter fails the chunk, and the chunks after it are
// dropped until BDAT LAST or RSET, as Postfix does.
func (s *session) proxyChunk(size int64, last bool) bool {
	b := s.txn.bdat
	s.where = "BDAT content"
	s.nc.beginRequest(true)
	n, _, err := s.proxyContent(s.c.ChunkReader(size), 0)
	b.proxied += n
	if err != nil {
		s.contentLost("BDAT", b.proxied, err)
		return false
	}
	if last {
		s.where = "END-OF-MESSAGE"
		return s.proxyEnd(b.proxied)
	}
	if s.txn.proxy.failed {
		s.resetTransaction()
		s.txn.bdatError = true
		s.reply(proxyFailed)
		return false
	}
	s.reply(rules.Reply{Code: 250, DSN: "2.0.0", Text: "Ok: " + strconv.FormatInt(size, 10) + " bytes"})
	return true
}

// proxyEnd ends the message the client sent (n bytes): the end-of-data
// restrictions, then the end of data to the filter, whose reply is the
// client's (the generic one if the filter failed), logged as Postfix
// logs it.
func (s *session) proxyEnd(n int64) bool {
	defer s.resetTransaction()
	p := s.txn.proxy
	s.txn.received = n
	if !p.failed && s.svc.hasEndOfDataRestrictions && !s.passes("END-OF-MESSAGE", s.onlyRecipient(), s.check(restrictions.EndOfData, s.onlyRecipient())) {
		return false
	}
	r := proxyFailed
	if !p.failed {
		if err := p.data.Close(); err != nil {
			s.proxyBroken(err)
		} else {
			r, _ = s.proxyCmd("", 0)
		}
	}
	what := "reject"
	if r.Code/100 == 2 && !p.failed {
		what = "accept"
		s.errors, s.junk = 0, 0
		s.svc.metrics.Messages.WithLabelValues(s.svc.name).Inc()
		s.svc.metrics.MessageBytes.WithLabelValues(s.svc.name).Add(float64(n))
	}
	s.reply(r)
	last := ""
	if k := len(s.txn.rcpts); k > 0 {
		last = s.txn.rcpts[k-1].Addr
	}
	s.svc.log.Logf("smtpd", "proxy-%s: %s: %s;%s", what, s.where, r, s.logContext(last))
	return what == "accept"
}

// received is what the client has sent of a BDAT message so far.
func (b *bdatState) received() int64 {
	if b.msg == nil {
		return b.proxied
	}
	return b.msg.raw
}

// proxyContent copies the client's content to the filter, reading it all
// even when the filter has failed (the client must be answered after its
// end). Past limit (0: none) the message is too big: the rest is read and
// dropped. It returns the bytes the client sent.
func (s *session) proxyContent(r io.Reader, limit int64) (n int64, tooBig bool, err error) {
	bp := getBuffer()
	defer bufferPool.Put(bp)
	buf := (*bp)[:cap(*bp)]
	for {
		k, rerr := r.Read(buf)
		n += int64(k)
		switch {
		case limit > 0 && n > limit:
			tooBig = true
		case k > 0:
			s.proxyWrite(buf[:k])
		}
		if rerr == io.EOF {
			return n, tooBig, nil
		}
		if rerr != nil {
			return n, tooBig, rerr
		}
	}
}

// proxyWrite sends content to the filter unless the connection failed.
func (s *session) proxyWrite(b []byte) {
	p := s.txn.proxy
	if p.failed {
		return
	}
	if _, err := p.data.Write(b); err != nil {
		s.proxyBroken(err)
	}
}
