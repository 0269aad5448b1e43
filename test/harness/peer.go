package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// StartDNSPeer starts cmd, a real DNS server listening on addr, stops it
// by its PID when the test ends, and waits until its answer to q is one
// ready accepts. diag tells what the server said, for the failure.
func StartDNSPeer(t testing.TB, cmd *exec.Cmd, addr string, q *dns.Msg, ready func(*dns.Msg) bool, diag func() string) {
	t.Helper()
	done := startPeer(t, cmd)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for deadline := time.Now().Add(15 * time.Second); ; {
		if r, _, err := c.Exchange(q, addr); err == nil && ready(r) {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s ended: %s", cmd.Path, diag())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer on %s: %s", cmd.Path, addr, diag())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startPeer starts cmd and stops it by its PID when the test ends; the
// channel closes when it has ended.
func startPeer(t testing.TB, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return done
}

// StartRbldnsd runs the real rbldnsd on bind ("127.0.0.1:PORT", or a
// 127.53.x.y:53 address a Postfix resolver can ask), serving the zone
// files (name -> content) with the zone specs given
// ("zen.test:ip4set:zen.zone"). It is stopped by its PID when the test ends.
func StartRbldnsd(t testing.TB, bind string, files map[string]string, zones ...string) {
	t.Helper()
	bin := Need(t, "rbldnsd", "rbldnsd")
	dir := t.TempDir()
	// rbldnsd drops to its own user before it reads the zones.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := strings.Cut(bind, ":")
	args := append([]string{"-n", "-4", "-u", "rbldns", "-b", host + "/" + port, "-w", dir, "-t", "60", "-a"}, zones...)
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// Ready when it answers a question about its first zone.
	first := strings.SplitN(zones[0], ":", 2)[0]
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("1.0.0.127."+first), dns.TypeA)
	StartDNSPeer(t, cmd, bind, m, func(*dns.Msg) bool { return true }, out.String)
}

// StartPeer runs a real peer in its own process group and waits until it
// accepts connections on addr; when the test ends the group is stopped
// (the peers fork workers).
func StartPeer(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("%s already answers before %s starts", addr, cmd.Path)
	}
	out := new(lockedBuffer) // read below while the peer may still write
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s ended: %s", cmd.Path, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %s", cmd.Path, addr, out.String())
		}
	}
}

// StartSpamassMilter runs spamd (no network tests) and spamass-milter in
// front of it, rejecting a score of 15 or more; it returns the milter's
// address.
func StartSpamassMilter(t testing.TB) string {
	t.Helper()
	spamd := Need(t, "spamd", "spamd")
	milter := Need(t, "spamass-milter", "spamass-milter")
	Need(t, "spamc", "spamc")
	spamdPort, milterPort := FreePort(t), FreePort(t)
	StartPeer(t, exec.Command(spamd, "-L", "-i", "127.0.0.1", "-p", fmt.Sprint(spamdPort), "-A", "127.0.0.0/8",
		"-u", "debian-spamd", "-m", "2", "--nouser-config", "-s", "stderr"), fmt.Sprintf("127.0.0.1:%d", spamdPort))
	StartPeer(t, exec.Command(milter, "-p", fmt.Sprintf("inet:%d@127.0.0.1", milterPort), "-r", "15", "-m",
		"--", "-d", "127.0.0.1", "-p", fmt.Sprint(spamdPort)), fmt.Sprintf("127.0.0.1:%d", milterPort))
	return fmt.Sprintf("127.0.0.1:%d", milterPort)
}
