// Package server is postgate's policy server (postgate policyd): it
// answers the policy delegation requests of an existing Postfix
// (check_policy_service) with a restriction list of postgate's own,
// evaluated by the restrictions package at the request's protocol state,
// so Postfix gets postgate's greylisting, DNS lists, SPF and rate limits.
package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"postgate/policyd"
	"postgate/restrictions"
)

// Options configure a Server.
type Options struct {
	// Lists holds the compiled restriction class Class, the list every
	// request is checked with.
	Lists *restrictions.Lists
	Class string
	// Timeout bounds one request from its first byte to its answer,
	// evaluation included (postgate_policyd_timeout).
	Timeout time.Duration
	// IdleTimeout bounds the wait for a connection's next request
	// (postgate_policyd_idle_timeout).
	IdleTimeout time.Duration
	// Limits bound a request's lines and size; zero fields get
	// DefaultLimits'.
	Limits policyd.Limits
	// Logf writes one mail log line (without the program prefix).
	Logf func(format string, args ...any)
}

// DefaultLimits are generous for what smtpd sends (its longest values are
// addresses and certificate names) and small enough that no client can
// make the server hold much memory.
var DefaultLimits = policyd.Limits{Line: 4096, Request: 64 << 10}

// Server serves policy requests on listeners.
type Server struct {
	o  Options
	wg sync.WaitGroup
}

// New makes a server.
func New(o Options) *Server {
	if o.Limits.Line <= 0 {
		o.Limits.Line = DefaultLimits.Line
	}
	if o.Limits.Request <= 0 {
		o.Limits.Request = DefaultLimits.Request
	}
	return &Server{o: o}
}

// Serve accepts connections on ln until ctx ends, then closes ln, stops
// reading (a connection waiting for its next request is closed at once),
// answers the requests already read and returns when every connection
// is closed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
			// Out of file descriptors, say: the server goes on once
			// connections have closed.
			s.o.Logf("warning: accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// serveConn answers the requests of one connection, which Postfix keeps
// open for many. A request that breaks the protocol, or does not arrive
// in time, gets no answer: the connection is closed, as
// SMTPD_POLICY_README asks of a server.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	// Stopping ends any read: the wait for a next request, or a request
	// that was coming in.
	stop := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	r := bufio.NewReader(nc)
	peer := nc.RemoteAddr().String()
	for ctx.Err() == nil {
		nc.SetReadDeadline(time.Now().Add(s.o.IdleTimeout))
		if ctx.Err() != nil {
			return // the stop came before the deadline was set
		}
		if _, err := r.Peek(1); err != nil {
			return // the client closed it, or it stayed idle too long
		}
		deadline := time.Now().Add(s.o.Timeout)
		nc.SetDeadline(deadline)
		kind, req, err := policyd.ReadRequest(r, s.o.Limits)
		if err != nil {
			if ctx.Err() == nil {
				s.readError(peer, err)
			}
			return
		}
		// The answer is given even when the server is stopping: the
		// request is in, and Postfix waits for it.
		rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		action := s.answer(rctx, kind, req)
		cancel()
		if _, err := io.WriteString(nc, "action="+action+"\n\n"); err != nil {
			s.o.Logf("warning: %s: write: %v", peer, err)
			return
		}
	}
}

func (s *Server) readError(peer string, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
	case errors.Is(err, policyd.ErrMalformed):
		s.o.Logf("warning: %s: %v: closing the connection", peer, err)
	case errors.As(err, &ne) && ne.Timeout():
		s.o.Logf("warning: %s: timeout reading a request: closing the connection", peer)
	default:
		s.o.Logf("warning: %s: read: %v", peer, err)
	}
}
