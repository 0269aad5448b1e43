package test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startDNSPeer starts cmd, a real DNS server listening on addr, stops it
// by its PID when the test ends, and waits until its answer to q is one
// ready accepts. diag tells what the server said, for the failure.
func startDNSPeer(t testing.TB, cmd *exec.Cmd, addr string, q *dns.Msg, ready func(*dns.Msg) bool, diag func() string) {
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
