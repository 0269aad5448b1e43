// Package redistest starts real Redis servers for tests: a single server,
// a three-master Cluster, or a master, a replica and a Sentinel, all on
// loopback ports in temporary directories with no persistence, stopped by
// PID when the test ends.
package redistest

import (
	"fmt"
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
	return start(t, "redis-server", func(port int, dir string) []string {
		return append([]string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no"}, extra...)
	})
}

func start(t testing.TB, prog string, args func(port int, dir string) []string) *Server {
	t.Helper()
	path := harness.Need(t, prog, prog)
	port := harness.FreePort(t)
	dir := t.TempDir()
	s := &Server{t: t, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, prog: path, args: args(port, dir)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// StartCluster runs three masters and joins them into a Cluster with
// redis-cli --cluster create; it returns when every node says the
// cluster is ok.
func StartCluster(t testing.TB) []*Server {
	t.Helper()
	var nodes []*Server
	create := []string{"--cluster", "create"}
	for range 3 {
		n := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		nodes = append(nodes, n)
		create = append(create, n.Addr)
	}
	if out, err := nodes[0].CLI(append(create, "--cluster-replicas", "0", "--cluster-yes")...); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		n.WaitFor("cluster state ok", func() bool {
			out, _ := n.CLI("cluster", "info")
			return strings.Contains(out, "cluster_state:ok")
		})
	}
	return nodes
}

// StartSentinel runs a master, a replica of it and one redis-sentinel
// that monitors the master as master; it returns when the sentinel knows
// the replica (so a failover can promote it).
func StartSentinel(t testing.TB, master string) (primary, replica, sentinel *Server) {
	t.Helper()
	primary = Start(t)
	replica = Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(primary.Port))
	sentinel = start(t, "redis-sentinel", func(port int, dir string) []string {
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %[3]s 2000\nsentinel failover-timeout %[3]s 10000\n",
			port, dir, master, primary.Port)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{conf}
	})
	replica.WaitFor("replica in sync", func() bool {
		out, _ := replica.CLI("info", "replication")
		return strings.Contains(out, "master_link_status:up")
	})
	sentinel.WaitFor("sentinel sees the replica", func() bool {
		out, _ := sentinel.CLI("sentinel", "replicas", master)
		return strings.Contains(out, fmt.Sprint(replica.Port))
	})
	return primary, replica, sentinel
}

// CLI runs redis-cli against the server.
func (s *Server) CLI(args ...string) (string, error) {
	cli := harness.Need(s.t, "redis-cli", "redis-server")
	out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(s.Port)}, args...)...).CombinedOutput()
	return string(out), err
}

// WaitFor polls ok for up to 30 s.
func (s *Server) WaitFor(what string, ok func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s on port %d: no %s after 30 s", filepath.Base(s.prog), s.Port, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
func (s *Server) Do(cmd string) (string, error) { return harness.Ask(s.Addr, cmd) }
