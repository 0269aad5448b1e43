package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Sink is Postfix's smtp-sink on a loopback port, keeping every message it
// accepts as a file (its -d dump format: smtp-sink's X- headers, then the
// message with LF line ends).
type Sink struct {
	t    testing.TB
	Port int
	Addr string
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// StartSink starts smtp-sink with extra options (e.g. "-r", "RCPT" to answer
// RCPT with 4xx). It is stopped when the test ends.
func StartSink(t testing.TB, extra ...string) *Sink {
	t.Helper()
	// smtp-sink drops root privileges to -u; that user writes the dumps,
	// so the directory must be reachable by it (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("", "postgate-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	s := &Sink{t: t, Port: FreePort(t), Dir: dir, args: extra}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts smtp-sink on the same port and dump directory.
func (s *Sink) Start() {
	s.t.Helper()
	bin := Need(s.t, "smtp-sink", "postfix")
	args := []string{"-d", filepath.Join(s.Dir, "%M.")}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, s.args...)
	args = append(args, s.Addr, "64")
	s.cmd = exec.Command(bin, args...)
	out := new(strings.Builder)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("smtp-sink did not listen on %s: %s", s.Addr, out)
}

// Restart stops smtp-sink and starts it again on the same port and dump
// directory with new options (e.g. from answering 4xx to accepting).
func (s *Sink) Restart(extra ...string) {
	s.t.Helper()
	s.Stop()
	s.args = extra
	s.Start()
}

// Stop stops smtp-sink by its PID.
func (s *Sink) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Messages returns the dumped messages in arrival (file time) order.
// smtp-sink creates a dump at MAIL and writes it as the transaction goes
// on, so a dump written to in the last moments may be incomplete: Messages
// waits (bounded) until every dump has stood still for dumpSettle.
func (s *Sink) Messages() []string {
	s.t.Helper()
	type dump struct {
		at   time.Time
		text string
	}
	var dumps []dump
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		files, err := filepath.Glob(filepath.Join(s.Dir, "*"))
		if err != nil {
			s.t.Fatal(err)
		}
		dumps = dumps[:0]
		fresh := false
		for _, f := range files {
			st, err1 := os.Stat(f)
			b, err2 := os.ReadFile(f)
			if err1 != nil || err2 != nil {
				s.t.Fatal(err1, err2)
			}
			fresh = fresh || time.Since(st.ModTime()) < dumpSettle
			dumps = append(dumps, dump{st.ModTime(), string(b)})
		}
		if !fresh || time.Now().After(deadline) {
			break
		}
	}
	sort.SliceStable(dumps, func(i, j int) bool { return dumps[i].at.Before(dumps[j].at) })
	out := make([]string, len(dumps))
	for i, d := range dumps {
		out[i] = d.text
	}
	return out
}

// dumpSettle is how long a dump must be left alone to count as complete.
const dumpSettle = 150 * time.Millisecond

// SinkBody splits a dump into smtp-sink's envelope headers (X-Mail-Args,
// X-Rcpt-Args, ...) and the message as received, with LF line ends.
func SinkBody(dump string) (envelope, message string) {
	// smtp-sink's own Received: header is three lines and ends its part.
	i := strings.Index(dump, "\nReceived: from ")
	if i < 0 {
		return "", dump
	}
	rest := dump[i+1:]
	for n := 0; n < 3; n++ {
		j := strings.IndexByte(rest, '\n')
		if j < 0 {
			return dump[:i+1], ""
		}
		rest = rest[j+1:]
	}
	// The dump ends with one added empty line.
	return dump[:i+1], strings.TrimSuffix(rest, "\n")
}

// WaitMessages waits until at least n messages arrived (bounded by d) and
// returns them.
func (s *Sink) WaitMessages(n int, d time.Duration) []string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		msgs := s.Messages()
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Established counts the established TCP connections whose local port is
// port (a server's accepted sessions), from /proc/net/tcp.
func Established(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "01" {
			n++
		}
	}
	return n
}
