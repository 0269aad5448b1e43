package ldaptable

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"postgate/rules/dbcommon"
)

// server is one server_host entry.
type server struct {
	url     string // as written, or ldap://host:port for a plain host name
	network string // "tcp" or "unix" (ldapi://)
	addr    string // host:port, or the socket path
	tls     bool   // ldaps://: TLS from the first byte
	host    string // the name the certificate must show
}

// parseServers reads server_host (URLs and host names, separated by
// commas or spaces, plain names on server_port) and the TLS and bind
// settings every connection uses.
func (t *Table) parseServers(c *dbcommon.Config) error {
	port, err := c.Int("server_port", 389, 1)
	if err != nil {
		return err
	}
	for _, h := range strings.FieldsFunc(c.Str("server_host", "localhost"), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		s, err := parseServer(h, port)
		if err != nil {
			return fmt.Errorf("%s: %q: %w", c.Where("server_host"), h, err)
		}
		t.servers = append(t.servers, s)
	}
	if len(t.servers) == 0 {
		return fmt.Errorf("%s: no server", c.Where("server_host"))
	}
	if t.startTLS, err = c.Bool("start_tls", false); err != nil {
		return err
	}
	for _, s := range t.servers {
		if t.startTLS && (s.tls || s.network == "unix") {
			return fmt.Errorf("%s: start_tls = yes with %s: use ldap:// (STARTTLS) or ldaps:// (TLS from the start), not both", c.Where("start_tls"), s.url)
		}
	}
	if t.tlsConfig, err = tlsConfig(c); err != nil {
		return err
	}
	switch b := strings.ToLower(c.Str("bind", "yes")); b {
	case "yes", "simple":
		t.bind = true
	case "no", "none":
	case "sasl":
		return fmt.Errorf("%s: SASL binds are not supported: use bind = yes with bind_dn and bind_pw (a simple bind, over ldaps:// or start_tls)", c.Where("bind"))
	default:
		return fmt.Errorf("%s: unsupported value %q: want yes, no or sasl", c.Where("bind"), b)
	}
	t.bindDN, t.bindPW = c.Str("bind_dn", ""), c.Str("bind_pw", "")
	return nil
}

func parseServer(h string, port int) (server, error) {
	scheme, rest, isURL := strings.Cut(h, "://")
	if !isURL {
		if !strings.Contains(h, ":") { // as Postfix: a colon means host:port
			h = fmt.Sprintf("%s:%d", h, port)
		}
		scheme, rest = "ldap", h
	}
	s := server{url: scheme + "://" + rest}
	hostport, _, _ := strings.Cut(rest, "/") // a DN after the host is not used
	switch strings.ToLower(scheme) {
	case "ldap", "ldaps":
		s.tls = strings.EqualFold(scheme, "ldaps")
		if hostport == "" {
			hostport = "localhost"
		}
		host, p, err := net.SplitHostPort(hostport)
		if err != nil {
			host, p = strings.Trim(hostport, "[]"), "389"
			if s.tls {
				p = "636"
			}
		}
		s.network, s.addr, s.host = "tcp", net.JoinHostPort(host, p), host
	case "ldapi":
		path := strings.ReplaceAll(strings.ReplaceAll(hostport, "%2F", "/"), "%2f", "/")
		if path == "" {
			path = "/var/run/slapd/ldapi"
		}
		s.network, s.addr = "unix", path
	default:
		return s, fmt.Errorf("unknown scheme %q: want ldap://, ldaps:// or ldapi://", scheme)
	}
	return s, nil
}

// tlsConfig is the TLS client setup for ldaps:// and start_tls:
// tls_require_cert = no (Postfix's default) does not check the server's
// certificate; yes checks it against tls_ca_cert_file and
// tls_ca_cert_dir (the system's roots when neither is set).
func tlsConfig(c *dbcommon.Config) (*tls.Config, error) {
	require, err := c.Bool("tls_require_cert", false)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{InsecureSkipVerify: !require}
	// Each CA file with the parameter that names it, for errors.
	type caFile struct{ path, param string }
	var files []caFile
	if f := c.Str("tls_ca_cert_file", ""); f != "" {
		files = append(files, caFile{f, "tls_ca_cert_file"})
	}
	if d := c.Str("tls_ca_cert_dir", ""); d != "" {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Where("tls_ca_cert_dir"), err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, caFile{filepath.Join(d, e.Name()), "tls_ca_cert_dir"})
			}
		}
	}
	if len(files) > 0 {
		cfg.RootCAs = x509.NewCertPool()
	}
	for _, f := range files {
		pem, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Where(f.param), err)
		}
		// A directory may hold other files (OpenLDAP's hash links too).
		if !cfg.RootCAs.AppendCertsFromPEM(pem) && f.param == "tls_ca_cert_file" {
			return nil, fmt.Errorf("%s: no PEM certificate in %s", c.Where(f.param), f.path)
		}
	}
	if cert, key := c.Str("tls_cert", ""), c.Str("tls_key", ""); cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Where("tls_cert"), err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// connect opens a connection to the first server that accepts it (TLS
// and bind included), trying them in order.
func (t *Table) connect(ctx context.Context) (*ldap.Conn, error) {
	var errs []error
	for _, s := range t.servers {
		c, err := t.connectTo(ctx, s)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("server %s: %w", s.url, ctx.Err())
		}
		errs = append(errs, fmt.Errorf("server %s: %w", s.url, err))
	}
	return nil, errors.Join(errs...)
}

func (t *Table) connectTo(ctx context.Context, s server) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, s.network, s.addr)
	if err != nil {
		return nil, err
	}
	tlsCfg := t.tlsConfig.Clone()
	tlsCfg.ServerName = s.host
	if s.tls {
		tc := tls.Client(nc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	c := ldap.NewConn(nc, s.tls)
	c.Start()
	c.SetTimeout(t.timeout)
	if t.startTLS {
		if err := call(ctx, func() error { return c.StartTLS(tlsCfg) }); err != nil {
			c.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if t.bind {
		err := call(ctx, func() error {
			_, err := c.SimpleBind(&ldap.SimpleBindRequest{Username: t.bindDN, Password: t.bindPW, AllowEmptyPassword: true})
			return err
		})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("bind as %q: %w", t.bindDN, err)
		}
	}
	return c, nil
}

// connSlot holds a table's connection, shared by concurrent lookups (LDAP
// answers requests on one connection by message ID).
type connSlot struct {
	mu      sync.Mutex
	conn    *ldap.Conn
	dialing chan struct{} // held by the lookup that connects
}

// get returns the open connection (reused true), or connects with dial.
func (s *connSlot) get(ctx context.Context, dial func(context.Context) (*ldap.Conn, error)) (c *ldap.Conn, reused bool, err error) {
	if c := s.current(); c != nil {
		return c, true, nil
	}
	select {
	case s.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-s.dialing }()
	if c := s.current(); c != nil { // another lookup connected meanwhile
		return c, true, nil
	}
	if c, err = dial(ctx); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	return c, false, nil
}

func (s *connSlot) current() *ldap.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.IsClosing() {
		s.conn = nil
	}
	return s.conn
}

// drop closes c, so that the next lookup connects again.
func (s *connSlot) drop(c *ldap.Conn) {
	s.mu.Lock()
	if s.conn == c {
		s.conn = nil
	}
	s.mu.Unlock()
	c.Close()
}

func (s *connSlot) close() {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
