// Package redistest starts real Redis servers for tests: a single server,
// a three-master Cluster, or a master, a replica and a Sentinel, all on
// loopback ports in temporary directories with no persistence, stopped by
// PID when the test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postgate/test/harness"
)

// Server is one redis-server (or redis-sentinel) process.
type Server struct {
	t    testing.TB
	Port int
	Addr string // 127.0.0.1:Port
	Dir  string
	prog string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server on a free loopback port; extra are more
// command-line settings ("--cluster-enabled", "yes", ...).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	prog := harness.Need(t, "redis-server", "redis-server")
	port := harness.FreePort(t)
	dir := t.TempDir()
	args := append([]string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no"}, extra...)
	s := &Server{t: t, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, prog: prog, args: args}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the process on its port and waits until it answers
// PING.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.prog, s.args...)
	s.cmd.Dir = s.Dir
	log, err := os.Create(filepath.Join(s.Dir, "log"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := s.Do("PING"); err == nil && reply == "+PONG" {
			return
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
			s.t.Fatalf("%s on port %d exited: %s", s.prog, s.Port, b)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s on port %d does not answer PING", s.prog, s.Port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the process (by its PID) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Do sends one inline command and returns the first line of the answer.
func (s *Server) Do(cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}
