package nettabletest

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"postgate/test/harness"
)

// Memcached is one memcached process, on a loopback port with UDP off,
// stopped by PID when the test ends.
type Memcached struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMemcached runs memcached and waits until it answers.
func StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	path := harness.Need(t, "memcached", "memcached")
	port := harness.FreePort(t)
	s := &Memcached{t: t, Addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
	// -u is required when running as root; memcached drops to nobody.
	s.cmd = exec.Command(path, "-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0", "-m", "16", "-u", "nobody")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Do("version"); err == nil {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("memcached on %s exited: %v", s.Addr, s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached on %s does not answer", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the process by its PID and waits for it to exit.
func (s *Memcached) Stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Set stores key=value with no expiry.
func (s *Memcached) Set(key, value string) {
	s.t.Helper()
	reply, err := s.Do(fmt.Sprintf("set %s 0 0 %d\r\n%s", key, len(value), value))
	if err != nil || reply != "STORED" {
		s.t.Fatalf("memcached set %s: %q %v", key, reply, err)
	}
}

// Do sends one command and returns the first line of the answer.
func (s *Memcached) Do(cmd string) (string, error) { return harness.Ask(s.Addr, cmd) }
