package relay

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Resolver is what relay needs from the process's one DNS resolver.
type Resolver interface {
	// LookupMX returns the MX records of name sorted by preference, an empty
	// list when the name exists without MX records, and a *net.DNSError
	// with IsNotFound for NXDOMAIN.
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupHost returns the A and AAAA addresses of host, a *net.DNSError
	// with IsNotFound for NXDOMAIN.
	LookupHost(ctx context.Context, host string) ([]netip.Addr, error)
}

// Options configure the SMTP transport. Zero durations and limits take
// Postfix's defaults (in parentheses); a negative limit means no limit.
type Options struct {
	HeloName    string     // smtp_helo_name ($myhostname); "localhost" if empty
	MyHostname  string     // $myhostname: a server that answers EHLO with it is a mail loop; "" turns the check off
	BindAddress netip.Addr // smtp_bind_address (zero: any), for connections of its address family
	Resolver    Resolver   // nil: the Go resolver
	Port        uint16     // smtp_tcp_port: the port of destinations that name none (25)

	ConnectTimeout  time.Duration // smtp_connect_timeout (30s); negative: the system's connect timeout (Postfix's 0)
	HeloTimeout     time.Duration // smtp_helo_timeout (300s): greeting and EHLO/HELO
	MailTimeout     time.Duration // smtp_mail_timeout (300s)
	RcptTimeout     time.Duration // smtp_rcpt_timeout (300s)
	DataInitTimeout time.Duration // smtp_data_init_timeout (120s): the DATA command
	DataXferTimeout time.Duration // smtp_data_xfer_timeout (180s): no progress while sending content
	DataDoneTimeout time.Duration // smtp_data_done_timeout (600s): the reply to "."
	RsetTimeout     time.Duration // smtp_rset_timeout (20s)
	QuitTimeout     time.Duration // smtp_quit_timeout (300s): sending QUIT (its reply is not awaited)

	ConnectionReuse bool          // keep a session to a next hop open for the next message
	MaxIdle         time.Duration // smtp_connection_cache_time_limit (2s)
	MaxReuse        int           // smtp_connection_reuse_count_limit (no limit): N allows N+1 messages
	ReuseTimeLimit  time.Duration // smtp_connection_reuse_time_limit (300s)

	MXAddressLimit  int // smtp_mx_address_limit (5)
	MXSessionLimit  int // smtp_mx_session_limit (2)
	LineLengthLimit int // smtp_line_length_limit (998)

	TLS  TLSOptions
	SASL SASLOptions

	// Generic rewrites an address on the way out (smtp_generic_maps,
	// generic.go): the address to send, the same one when the table has
	// no entry, or a lookup error. nil: no rewriting.
	Generic func(ctx context.Context, addr string) (string, error)

	// FallbackRelay is smtp_fallback_relay: destinations in next-hop
	// syntax tried, in order, when the next hop cannot be found or
	// answers no better than a soft error. Checked by CheckDestinations.
	FallbackRelay string

	// LMTP speaks LMTP (Postfix's lmtp client): LHLO, and one reply per
	// recipient after the content. Destinations may also be
	// inet:host:port and unix:/path (a relative path is under
	// QueueDirectory, as Postfix's lmtp:unix:private/dovecot-lmtp).
	LMTP           bool
	QueueDirectory string

	// Log, when set, receives one line for each server that was skipped
	// with a soft error before the next one was tried, as Postfix's smtp
	// logs them ("connect to ...: Connection refused").
	Log func(line string)
}

// logf writes a line to Log, if set.
func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, args...))
	}
}

func (o *Options) setDefaults() {
	if o.Port == 0 {
		o.Port = 25
	}
	if o.HeloName == "" || !safeCommandArg(o.HeloName) || strings.ContainsAny(o.HeloName, " \t") {
		o.HeloName = "localhost"
	}
	if o.ConnectTimeout < 0 {
		o.ConnectTimeout = 0 // net.Dialer: no limit of its own
	} else if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	durations := []struct {
		p *time.Duration
		d time.Duration
	}{
		{&o.HeloTimeout, 300 * time.Second},
		{&o.MailTimeout, 300 * time.Second},
		{&o.RcptTimeout, 300 * time.Second},
		{&o.DataInitTimeout, 120 * time.Second},
		{&o.DataXferTimeout, 180 * time.Second},
		{&o.DataDoneTimeout, 600 * time.Second},
		{&o.RsetTimeout, 20 * time.Second},
		{&o.QuitTimeout, 300 * time.Second},
		{&o.MaxIdle, 2 * time.Second},
		{&o.ReuseTimeLimit, 300 * time.Second},
	}
	for _, v := range durations {
		if *v.p <= 0 {
			*v.p = v.d
		}
	}
	limits := []struct {
		p *int
		d int
	}{
		{&o.MXAddressLimit, 5},
		{&o.MXSessionLimit, 2},
		{&o.LineLengthLimit, 998},
	}
	for _, v := range limits {
		switch {
		case *v.p == 0:
			*v.p = v.d
		case *v.p < 0:
			*v.p = 0
		}
	}
	if o.LineLengthLimit == 1 {
		o.LineLengthLimit = 2 // a broken line starts with a space
	}
	if o.MaxReuse < 0 {
		o.MaxReuse = 0
	}
	if o.Resolver == nil {
		o.Resolver = netResolver{}
	}
}

// Message is one delivery request: one message, one next hop, its
// recipients.
type Message struct {
	QueueID    string // for log lines only
	Nexthop    string // "[host]:port", "[1.2.3.4]", "host:port", "host", or a list of them
	Sender     string // "" is the null sender
	Recipients []Recipient
	RET, EnvID string // DSN: "FULL"/"HDRS"/"", ENVID as received (not xtext)
	SMTPUTF8   bool   // the client asked for SMTPUTF8
	Size       int64  // content size, for SIZE=
	// Verify makes the delivery an address verification probe (Postfix's
	// DEL_REQ_FLAG_MTA_VRFY): MAIL and RCPT only, then RSET; a recipient
	// the server accepts is Sent with the RCPT reply, and no content is
	// ever sent.
	Verify bool
	// Content is the stored message: CRLF lines, possibly with bare CR or
	// bare LF, which are normalized. An io.Seeker is rewound when the
	// message goes to a second server; other readers allow one attempt.
	Content io.Reader
}

// Recipient is one envelope recipient with its DSN parameters as received.
type Recipient struct {
	Addr   string
	Notify string // "SUCCESS,FAILURE", "NEVER", ... or ""
	ORCPT  string // "rfc822;addr" (decoded, not xtext) or ""
	// Orig is the address as first received (internal form), before
	// canonical or alias rewriting; "" when unknown. A recipient without
	// an ORCPT is sent with one made from it, as Postfix's smtp client
	// does from the original recipient that cleanup records for every
	// recipient.
	Orig string
}

// Status is what happened to a recipient.
type Status int

const (
	Deferred Status = iota // try again later
	Sent
	Bounced
)

func (s Status) String() string {
	switch s {
	case Sent:
		return "sent"
	case Bounced:
		return "bounced"
	}
	return "deferred"
}

// Result is the outcome for one recipient, with what the delivery log line
// needs.
type Result struct {
	Status  Status
	DSN     string        // "2.0.0", "4.4.1", "5.1.1", ...
	Reply   string        // the server's reply, or the reason in Postfix's words
	Relay   string        // "host[ip]:port", or "none"
	Remote  *Reply        // the server's reply that Reply quotes; nil when it quotes none
	Conn    time.Duration // connection setup: DNS, connect, greeting, EHLO (the c of delays=a/b/c/d)
	Xfer    time.Duration // transmission (the d)
	ConnUse int           // the session's use count: 1 fresh, >= 2 reused (conn_use=)
}

// SMTP is the SMTP transport. It is safe for concurrent use; each Deliver
// uses its own session.
type SMTP struct {
	opts     Options
	fallback []destination // FallbackRelay, parsed
	cache    cache
	// dial opens a TCP connection; tests replace it.
	dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
}

// NewSMTP returns an SMTP transport.
func NewSMTP(opts Options) *SMTP {
	opts.setDefaults()
	t := &SMTP{opts: opts}
	if opts.FallbackRelay != "" {
		// A bad list is refused by CheckDestinations before it gets here.
		t.fallback, _ = parseNexthop(opts.FallbackRelay, opts.Port)
	}
	t.cache.sessions = make(map[string][]*session)
	t.dial = t.dialTCP
	return t
}

// Close closes the cached sessions; sessions in use close when their
// delivery ends.
func (t *SMTP) Close() error {
	for _, s := range t.cache.close() {
		s.quit()
	}
	return nil
}

func (t *SMTP) dialTCP(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: t.opts.ConnectTimeout}
	if b := t.opts.BindAddress.Unmap(); b.IsValid() && !b.IsUnspecified() && b.Is4() == addr.Addr().Is4() {
		d.LocalAddr = &net.TCPAddr{IP: b.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", addr.String())
}

// netResolver is the Go resolver, for when no Resolver is given.
type netResolver struct{}

// LookupMX leaves "not found" to the address lookup: the Go resolver does
// not tell NXDOMAIN from a name without MX records.
func (netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := net.DefaultResolver.LookupMX(ctx, name)
	if dnsErr, ok := err.(*net.DNSError); ok && dnsErr.IsNotFound {
		return nil, nil
	}
	return mx, err
}

func (netResolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
