// Package harness starts postgate and its peers for end-to-end tests and
// benchmarks: the built binary on loopback ports with a private config and
// queue, and a raw SMTP client that can bind to any 127.0.0.0/8 address.
// Its default main.cf points postgate's resolver at loopback, so a test that
// forgets cannot reach the machine's DNS server.
package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/postgate once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "postgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "postgate")
		args := []string{"build", "-o", binPath}
		if os.Getenv("POSTGATE_TEST_RACE") != "" {
			// The daemon itself under the race detector, for the
			// end-to-end tests of concurrent paths.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/postgate")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// handedOut remembers the ports FreePort gave in this test process: the
// kernel may give a port back out again before the server it was meant for
// has bound it, and here two processes can listen on one port.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// Ask sends one CRLF-terminated text command to a server (redis-server,
// memcached) and returns the first line of its answer.
func Ask(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
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

// FreePort returns a loopback TCP port that nothing answers on and that no
// other test of this process was given. (Here two processes can listen on
// one port and split its traffic, so a port the kernel hands out is also
// checked to be silent.)
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if handedOut[port] {
			continue
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			continue
		}
		handedOut[port] = true
		return port
	}
	t.Fatal("no free loopback port")
	return 0
}

// Need fails the test when a program the tests use is missing; make test
// installs it (a missing peer is a failure, not a skip).
func Need(t testing.TB, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if _, err := os.Stat(filepath.Join(dir, prog)); err == nil {
				return filepath.Join(dir, prog)
			}
		}
		t.Fatalf("%s not found: run `make test`, which installs Debian package %s", prog, pkg)
	}
	return p
}

// Postgate is one postgate daemon under test.
type Postgate struct {
	t       testing.TB
	Dir     string // config directory
	Queue   string // queue_directory
	Maillog string // maillog_file
	Port    int
	Addr    string // 127.0.0.1:Port
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	waitErr chan error
	command string   // the daemon's subcommand: "serve", or "policyd"
	wrap    []string // a command the daemon runs under (StartWith)
	env     []string // added to the daemon's environment (StartWith)
}

// DefaultMain is the harness's main.cf head; a test's own settings are
// appended and win (last definition wins).
func DefaultMain(queueDir, maillog string, dnsPort int) string {
	return fmt.Sprintf(`# written by the test harness
myhostname = mx.gateway.test
mydomain = gateway.test
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.1/32
relay_domains = relay.test
queue_directory = %s
maillog_file = %s
# never the machine's resolver: only loopback
postgate_dns_servers = 127.0.0.1:%d
`, queueDir, maillog, dnsPort)
}

// Config writes a config directory: the harness defaults plus extraMain,
// and master.cf (empty: one smtpd service on the returned port).
func Config(t testing.TB, extraMain, master string) (dir string, port int) {
	t.Helper()
	dir = t.TempDir()
	port = FreePort(t)
	main := DefaultMain(filepath.Join(dir, "queue"), filepath.Join(dir, "maillog"), FreePort(t)) + extraMain
	if master == "" {
		master = fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n", port)
	}
	master = strings.ReplaceAll(master, "PORT", fmt.Sprint(port))
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(master), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, port
}

// Start runs postgate on a fresh config (see Config) and waits until it
// answers. It is killed when the test ends.
func Start(t testing.TB, extraMain, master string) *Postgate {
	t.Helper()
	return StartWith(t, extraMain, master, nil, nil)
}

// StartWith is Start with the daemon run under wrap, a
// command and its arguments that end by running the daemon (taskset -c 0;
// nil for none), and env added to its environment (GOMAXPROCS=1).
func StartWith(t testing.TB, extraMain, master string, wrap, env []string) *Postgate {
	t.Helper()
	dir, port := Config(t, extraMain, master)
	p := &Postgate{t: t, Dir: dir, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port),
		Queue: filepath.Join(dir, "queue"), Maillog: filepath.Join(dir, "maillog"), command: "serve",
		wrap: wrap, env: env}
	p.Restart()
	t.Cleanup(p.Kill)
	return p
}

// Restart starts the daemon (again) on the same config and queue.
func (p *Postgate) Restart() {
	p.t.Helper()
	p.stderr = new(lockedBuffer)
	argv := append(slices.Clip(p.wrap), Binary(p.t), p.command, "-c", p.Dir)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	if len(p.env) > 0 {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.waitErr = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(p.cmd, p.waitErr)
	// Bounded, and generous: under make test's load (and -race) a start
	// has taken more than 15 s.
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.waitErr:
			p.t.Fatalf("postgate exited at start: %v\n%s", err, p.stderr)
		default:
		}
		if c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("postgate did not listen on %s\n%s", p.Addr, p.stderr)
}

// Kill stops the daemon with SIGKILL (a crash) and waits for it.
func (p *Postgate) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.waitErr
	p.cmd = nil
	p.checkRaces()
}

// checkRaces fails the test when a daemon built with POSTGATE_TEST_RACE
// reported a data race.
func (p *Postgate) checkRaces() {
	if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
		p.t.Errorf("postgate reported a data race:\n%s", p.stderr)
	}
}

// Stop stops the daemon with SIGTERM (graceful) and waits for it.
func (p *Postgate) Stop() error {
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.waitErr:
	case <-time.After(40 * time.Second):
		p.cmd.Process.Kill()
		err = <-p.waitErr
	}
	p.cmd = nil
	p.checkRaces()
	return err
}

// Pid is the running daemon's process ID (0 when it is not running).
func (p *Postgate) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// RSS is the resident memory of process pid in bytes (VmRSS of
// /proc/PID/status), 0 when it cannot be read.
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb << 10
		}
	}
	return 0
}

// Stderr is what the daemon printed so far.
func (p *Postgate) Stderr() string { return p.stderr.String() }

// Run runs a postgate admin command on this daemon's config.
func (p *Postgate) Run(args ...string) (stdout string, err error) {
	p.t.Helper()
	full := append([]string{args[0], "-c", p.Dir}, args[1:]...)
	cmd := exec.Command(Binary(p.t), full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("postgate %s: %v: %s", strings.Join(full, " "), err, errb.String())
	}
	return out.String(), err
}

// Log returns the maillog_file contents, waiting up to 30 s for a line
// containing want (the log is flushed in the background; deliveries and
// retries take their time).
func (p *Postgate) Log(want string) string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(p.Maillog)
		if strings.Contains(string(b), want) || time.Now().After(deadline) {
			return p.settled(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled rereads the log until it stops growing (at most half a second):
// lines written with the one waited for may still be on their way.
func (p *Postgate) settled(b []byte) string {
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		again, _ := os.ReadFile(p.Maillog)
		if len(again) == len(b) {
			break
		}
		b = again
	}
	return string(b)
}

// lockedBuffer is the daemon's output: exec's copying goroutine writes it
// while a failing test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
