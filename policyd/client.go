package policyd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Client asks one policy server, as Postfix's attr_clnt does: connections
// are kept and reused (up to request_limit requests, while younger than
// max_ttl, closed after max_idle unused), a failed attempt is retried
// after retry_delay on a new connection up to try_limit times. It is safe
// for concurrent use: each request has a connection of its own.
type Client struct {
	ep   endpoint
	opts Options
	// Spec is the check_policy_service argument as written, the name
	// Postfix gives the server in access-action warnings.
	Spec string

	mu   sync.Mutex
	idle []*conn // most recently used last
}

// New parses a check_policy_service argument (see parseService) on top of
// the main.cf defaults o. It does not connect: the first request does.
func New(spec string, o Options) (*Client, error) {
	ep, o, err := parseService(spec, o)
	if err != nil {
		return nil, err
	}
	return &Client{ep: ep, opts: o.withDefaults(), Spec: spec}, nil
}

// Check validates a check_policy_service argument.
func Check(spec string) error {
	_, _, err := parseService(spec, Options{})
	return err
}

// DefaultAction is the action to evaluate when a request fails.
func (c *Client) DefaultAction() string { return c.opts.DefaultAction }

// conn is one connection to the server.
type conn struct {
	nc       net.Conn
	r        *bufio.Reader
	born     time.Time
	requests int
	idleStop *time.Timer // closes it after max_idle in the pool
}

// maxLine bounds one reply line: Postfix reads any length, but a server
// must not make the gateway hold unbounded memory.
const maxLine = 64 << 10

// Query sends req and returns the reply's action. ok is false when every
// attempt failed (or the action is not UTF-8 under smtputf8_enable): the
// caller then evaluates DefaultAction. warn receives Postfix's warning
// lines (without "warning: "), as smtpd logs them.
func (c *Client) Query(ctx context.Context, req *Request, warn func(string)) (action string, ok bool) {
	if c.opts.Observe != nil {
		start := time.Now()
		defer func() { c.opts.Observe(c.ep.name, time.Since(start), ok) }()
	}
	var b strings.Builder
	req.encode(&b, c.opts.PolicyContext)
	for try := 1; ; try++ {
		action, err := c.attempt(ctx, b.String(), warn)
		if err == nil {
			if c.opts.SMTPUTF8 && !utf8.ValidString(action) {
				warn(fmt.Sprintf("malformed UTF-8 in policy server %s response: \"%s\"", c.Spec, action))
				return "", false
			}
			return action, true
		}
		// As attr_clnt: the last failure is always reported, earlier ones
		// only when they are more than a connection the server closed.
		last := try >= c.opts.TryLimit || ctx.Err() != nil
		if errno := errnoOf(err); last || (errno != 0 && errno != syscall.EPIPE && errno != syscall.ENOENT && errno != syscall.ECONNRESET) {
			warn(fmt.Sprintf("problem talking to server %s: %s", c.ep.name, strerror(errno)))
		}
		if last {
			return "", false
		}
		t := time.NewTimer(c.opts.RetryDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", false
		}
	}
}

// attempt sends one request on a pooled or new connection and reads the
// reply. The connection goes back to the pool only after a good reply.
func (c *Client) attempt(ctx context.Context, request string, warn func(string)) (string, error) {
	cn, err := c.get(ctx)
	if err != nil {
		warn(fmt.Sprintf("connect to %s: %s", c.ep.name, strerror(errnoOf(err))))
		return "", err
	}
	deadline := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cn.nc.SetDeadline(deadline)
	// The session's end (the client left, the daemon stops) ends the wait.
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	_, err = io.WriteString(cn.nc, request)
	action := ""
	if err == nil {
		action, err = c.readReply(cn.r, warn)
	}
	// A connection whose deadline the session's end may have moved is
	// not handed to another session.
	if !stop() || err != nil {
		cn.nc.Close()
		return action, err
	}
	cn.requests++
	c.put(cn)
	return action, nil
}

// errProtocol is a reply that has no usable action; errno 0, as in
// Postfix, where the warning then ends in "Application error".
var errProtocol = errors.New("policy protocol error")

// readReply reads name=value lines up to the empty line, as Postfix's
// attr_scan_plain asked for "action": other attributes are skipped, the
// first action counts, and the reply must be complete. A server that
// sends nothing at all before a timeout or EOF gets no warning of its own
// here (attr_scan_plain's EOF check), only attr_clnt's.
func (c *Client) readReply(r *bufio.Reader, warn func(string)) (string, error) {
	action, found := "", false
	for first := true; ; first = false {
		line, err := readLine(r, maxLine)
		if err != nil && first && line == "" {
			return "", err
		}
		if err != nil {
			what, context := "premature end-of-input", "input attribute name"
			if isTimeout(err) {
				what = "timeout"
			}
			if strings.Contains(line, "=") {
				context = "input attribute value"
			}
			warn(fmt.Sprintf("%s on %s while reading %s", what, c.ep.name, context))
			return "", err
		}
		if line == "" {
			if !found {
				warn(fmt.Sprintf("missing attribute action in input from %s", c.ep.name))
				return "", errProtocol
			}
			return action, nil
		}
		name, value, hasValue := strings.Cut(line, "=")
		if found || name != "action" {
			continue
		}
		if !hasValue {
			warn(fmt.Sprintf("missing value for string attribute action from %s", c.ep.name))
			return "", errProtocol
		}
		action, found = value, true
	}
}

// readLine reads up to '\n' (not included), a line of at most limit
// bytes; on error it returns what it had read of the line.
func readLine(r *bufio.Reader, limit int) (string, error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		b = append(b, frag...)
		switch {
		case err == nil && len(b) > limit+1:
			return string(b[:limit]), errProtocol
		case err == nil:
			return string(b[:len(b)-1]), nil
		case err == bufio.ErrBufferFull && len(b) <= limit:
			continue
		case err == bufio.ErrBufferFull:
			return string(b), errProtocol
		case err == io.EOF:
			return string(b), errEOF
		}
		return string(b), err
	}
}

// errEOF is the server closing the connection mid-reply.
var errEOF = errors.New("premature end-of-input")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errnoOf is the system error behind err, as Postfix's errno would be: a
// timeout is ETIMEDOUT, a closed connection or a bad reply none.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno
	case isTimeout(err), errors.Is(err, os.ErrDeadlineExceeded):
		return syscall.ETIMEDOUT
	}
	return 0
}

// strerror is what Postfix's %m prints: the C library's text for errno
// (Go's texts are the same, in lower case), and "Application error" when
// there is none (vbuf_print).
func strerror(errno syscall.Errno) string {
	if errno == 0 {
		return "Application error"
	}
	s := errno.Error()
	return strings.ToUpper(s[:1]) + s[1:]
}
