// Package policydtest is a fake Postfix policy server for tests: it keeps
// every request, answers as the test says (a reply, silence, or a closed
// connection) and counts connections.
package policydtest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// What an answer function may return besides a reply.
const (
	// Hang never answers; the connection stays open until the client
	// closes it.
	Hang = "\x00hang"
	// Close, alone or after a reply, closes the connection (after sending
	// the reply).
	Close = "\x00close"
)

// Server is a policy server listening in the test process.
type Server struct {
	Addr string // host:port, or the socket path
	Port int    // 0 for a unix socket

	answer func(req []string) string
	mu     sync.Mutex
	reqs   [][]string
	conns  int
	closed int
}

// Start listens on network ("tcp": addr "" means a free loopback port;
// "unix": addr is the path) and answers each request (its "name=value"
// lines) with answer's reply, which must end with the empty line. It stops
// when the test ends.
func Start(t testing.TB, network, addr string, answer func(req []string) string) *Server {
	t.Helper()
	if network == "tcp" && addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &Server{Addr: ln.Addr().String(), answer: answer}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		s.Port = ta.Port
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

// Reply is an answer function that gives every request the same reply
// (or Hang, or Close).
func Reply(reply string) func([]string) string {
	return func([]string) string { return reply }
}

// Action is an answer function that replies action=value to everything.
func Action(value string) func([]string) string { return Reply("action=" + value + "\n\n") }

// Spec is the check_policy_service argument of a TCP server.
func (s *Server) Spec() string { return "inet:" + s.Addr }

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	var req []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			s.closed++
			s.mu.Unlock()
			return
		}
		if line != "\n" {
			req = append(req, strings.TrimSuffix(line, "\n"))
			continue
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		reply := s.answer(req)
		req = nil
		if reply == Hang {
			continue // keep reading, never answer
		}
		reply, closing := strings.CutSuffix(reply, Close)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, reply)
		if closing {
			return
		}
	}
}

// Requests returns the requests so far, each as its "name=value" lines.
func (s *Server) Requests() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.reqs...)
}

// Counts returns the requests, the connections, and the connections the
// client closed, so far.
func (s *Server) Counts() (requests, conns, closed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs), s.conns, s.closed
}
