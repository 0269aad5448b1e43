package sasl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// dovecot is a Dovecot auth service (its auth-client protocol, version 1).
// Each AUTH opens its own connection; the mechanism list is asked for
// once a minute at most.
type dovecot struct {
	network, addr string
	timeout       time.Duration

	mu      sync.Mutex
	mechs   []string
	mechsAt time.Time
}

// mechanismsTTL is how long the service's mechanism list is trusted.
const mechanismsTTL = time.Minute

func dovecotAddress(path, qdir string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(path, "inet:"):
		return "tcp", strings.TrimPrefix(path, "inet:"), nil
	case strings.HasPrefix(path, "unix:"):
		path = strings.TrimPrefix(path, "unix:")
	case path == "":
		return "", "", errors.New("smtpd_sasl_path is empty: name the Dovecot auth socket (inet:host:port or a path)")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(qdir, path)
	}
	return "unix", path, nil
}

func (d *dovecot) Mechanisms(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mechs != nil && time.Since(d.mechsAt) < mechanismsTTL {
		return d.mechs, nil
	}
	c, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.close()
	d.mechs, d.mechsAt = c.mechs, time.Now()
	return d.mechs, nil
}

func (d *dovecot) NewServer(s Session) Server { return &dovecotServer{d: d, s: s} }

// dovecotConn is one connection to the auth service, after the handshake.
type dovecotConn struct {
	nc    net.Conn
	r     *bufio.Reader
	mechs []string
}

func (d *dovecot) connect(ctx context.Context) (*dovecotConn, error) {
	dl := net.Dialer{Timeout: d.timeout}
	nc, err := dl.DialContext(ctx, d.network, d.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to Dovecot auth service %s: %w", d.addr, err)
	}
	nc.SetDeadline(time.Now().Add(d.timeout))
	c := &dovecotConn{nc: nc, r: bufio.NewReader(nc)}
	if _, err := fmt.Fprintf(nc, "VERSION\t1\t0\nCPID\t%d\n", os.Getpid()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("Dovecot auth service %s: %w", d.addr, err)
	}
	for {
		line, err := c.line()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("Dovecot auth service %s: handshake: %w", d.addr, err)
		}
		f := strings.Split(line, "\t")
		switch f[0] {
		case "VERSION":
			if len(f) < 2 || f[1] != "1" {
				nc.Close()
				return nil, fmt.Errorf("Dovecot auth service %s: protocol version %q, not 1", d.addr, strings.Join(f[1:], "."))
			}
		case "MECH":
			if len(f) >= 2 {
				c.mechs = append(c.mechs, strings.ToUpper(f[1]))
			}
		case "DONE":
			if len(c.mechs) == 0 {
				// auth-userdb and auth-master sockets send no MECH.
				nc.Close()
				return nil, fmt.Errorf("Dovecot auth service %s offers no mechanism: is it the auth-client socket?", d.addr)
			}
			return c, nil
		}
	}
}

func (c *dovecotConn) line() (string, error) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(l, "\n"), nil
}

func (c *dovecotConn) close() { c.nc.Close() }

// dovecotServer is one session's exchanges with the service.
type dovecotServer struct {
	d  *dovecot
	s  Session
	c  *dovecotConn
	id int
}

func (ds *dovecotServer) Start(ctx context.Context, mech, initial string) Step {
	ds.Close()
	mechs, err := ds.d.Mechanisms(ctx)
	if err != nil {
		return Step{Status: Temp, Reason: "Can't connect to authentication server"}
	}
	found := false
	for _, m := range mechs {
		found = found || strings.EqualFold(m, mech)
	}
	if !found {
		return Step{Status: Fail, Reason: "Invalid authentication mechanism"}
	}
	if initial != "" && !validBase64(initial) {
		return Step{Status: Fail, Reason: "Invalid base64 data in initial response"}
	}
	if ds.c, err = ds.d.connect(ctx); err != nil {
		return Step{Status: Temp, Reason: "Can't connect to authentication server"}
	}
	ds.id++
	req := fmt.Sprintf("AUTH\t%d\t%s\tservice=%s\tnologin\tlip=%s\trip=%s", ds.id, strings.ToUpper(mech), ds.s.Service, ds.s.LocalAddr, ds.s.RemoteAddr)
	if ds.s.Secured {
		req += "\tsecured"
	}
	if initial != "" {
		req += "\tresp=" + initial
	}
	return ds.send(req + "\n")
}

func (ds *dovecotServer) Next(ctx context.Context, response string) Step {
	if ds.c == nil {
		return Step{Status: Temp, Reason: "Connection lost to authentication server"}
	}
	if !validBase64(response) {
		return Step{Status: Fail, Reason: "Invalid base64 data in continued response"}
	}
	return ds.send(fmt.Sprintf("CONT\t%d\t%s\n", ds.id, response))
}

// send writes a request and reads the service's answer to it.
func (ds *dovecotServer) send(req string) Step {
	lost := Step{Status: Temp, Reason: "Connection lost to authentication server"}
	ds.c.nc.SetDeadline(time.Now().Add(ds.d.timeout))
	if _, err := ds.c.nc.Write([]byte(req)); err != nil {
		ds.Close()
		return lost
	}
	for {
		line, err := ds.c.line()
		if err != nil {
			ds.Close()
			return lost
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 || f[1] != fmt.Sprint(ds.id) {
			continue // another request's answer: not ours
		}
		switch f[0] {
		case "OK", "FAIL":
			ds.Close()
			st := Step{Status: Fail}
			for _, a := range f[2:] {
				if v, ok := strings.CutPrefix(a, "user="); ok {
					st.Username = printable(v)
				} else if v, ok := strings.CutPrefix(a, "reason="); ok && f[0] == "FAIL" {
					st.Reason = printable(v)
				}
			}
			if f[0] == "OK" {
				if st.Username == "" {
					return Step{Status: Fail, Reason: "Authentication backend error"}
				}
				st.Status, st.Reason = Done, ""
			}
			return st
		case "CONT":
			if len(f) < 3 {
				ds.Close()
				return Step{Status: Fail, Reason: "Authentication backend error"}
			}
			return Step{Status: More, Challenge: f[2]}
		}
	}
}

func (ds *dovecotServer) Close() {
	if ds.c != nil {
		ds.c.close()
		ds.c = nil
	}
}

// printable replaces what cannot be logged with '?', as Postfix's
// printable().
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
