// Package nettabletest runs the servers the network table tests talk to:
// a real memcached, and small in-test servers for the tcp_table(5) and
// socketmap_table(5) protocols (Debian ships no standalone ones).
package nettabletest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Server is an in-test protocol server.
type Server struct {
	Addr  string // host:port, or the socket path
	ln    net.Listener
	conns atomic.Int32
	mu    sync.Mutex
	open  []net.Conn
	wg    sync.WaitGroup
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int { return int(s.conns.Load()) }

// Stop closes the listener and every connection: the server is down.
func (s *Server) Stop() {
	s.ln.Close()
	s.Drop()
	s.wg.Wait()
}

// Drop closes the open connections but keeps listening, as a server that
// restarted or timed idle clients out.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
	s.open = nil
}

// TCPTable serves tcp_table(5) on a loopback port: each "get KEY" request
// (KEY %XX-decoded) is answered with the line answer returns ("200
// value", "500 not found", "400 try again"), as it is.
func TCPTable(t testing.TB, answer func(key string) string) *Server {
	return serve(t, "tcp", "127.0.0.1:0", func(r *bufio.Reader, w io.Writer) error {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		req, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "get ")
		key, err := url.PathUnescape(req)
		if !ok || err != nil {
			_, err = fmt.Fprintf(w, "400 bad request\n")
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", answer(key))
		return err
	})
}

// TCPValue encodes a value for a "200" reply.
func TCPValue(v string) string { return url.PathEscape(v) }

// Socketmap serves socketmap_table(5) on a loopback port (network "tcp")
// or a socket in a temporary directory ("unix"): each netstring request
// "name key" is answered with the netstring answer returns ("OK value",
// "NOTFOUND ", "TEMP why", ...).
func Socketmap(t testing.TB, network string, answer func(name, key string) string) *Server {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "socketmap")
	}
	return serve(t, network, addr, func(r *bufio.Reader, w io.Writer) error {
		lenText, err := r.ReadString(':')
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenText, ":"))
		if err != nil {
			return err
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		name, key, _ := strings.Cut(string(buf[:n]), " ")
		reply := answer(name, key)
		_, err = fmt.Fprintf(w, "%d:%s,", len(reply), reply)
		return err
	})
}

// serve accepts connections and runs one request/reply after another on
// each until the client leaves.
func serve(t testing.TB, network, addr string, exchange func(*bufio.Reader, io.Writer) error) *Server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln}
	t.Cleanup(s.Stop)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for exchange(r, c) == nil {
				}
			}()
		}
	}()
	return s
}
