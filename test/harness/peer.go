package harness

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// StartTCPPeer starts cmd, a real server listening on TCP addr, stops it
// by its PID when the test ends, and waits (bounded) until it accepts a
// connection. diag tells what the server said, for the failure.
func StartTCPPeer(t testing.TB, cmd *exec.Cmd, addr string, diag func() string) {
	t.Helper()
	done := startPeer(t, cmd)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s ended: %s", cmd.Path, diag())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s: %s", cmd.Path, addr, diag())
		}
	}
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
