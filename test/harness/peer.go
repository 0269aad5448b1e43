package harness

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartPeer runs a real peer in its own process group and waits until it
// accepts connections on addr; when the test ends the group is stopped
// (the peers fork workers).
func StartPeer(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("%s already answers before %s starts", addr, cmd.Path)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
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
