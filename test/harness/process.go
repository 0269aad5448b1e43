package harness

import (
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is a private server run in its own process group, stopped by
// its PID when the test ends (or by Stop).
type process struct {
	stopSignal syscall.Signal
	cmd        *exec.Cmd
	done       chan struct{}
	stopOnce   sync.Once
}

// start runs cmd with its output in log.
func (p *process) start(t testing.TB, cmd *exec.Cmd, log *strings.Builder) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
}

// waitReady polls ready until it succeeds; the server ending, or 60 s
// without success, fails the test with what the server said.
func (p *process) waitReady(t testing.TB, log *strings.Builder, ready func() error) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s ended: %s", p.cmd.Path, log.String())
		default:
		}
		if time.Now().After(deadline) {
			p.Stop() // its output is complete only once it has ended
			t.Fatalf("%s is not ready: %v\n%s", p.cmd.Path, err, log.String())
		}
	}
}

// Stop shuts the server down with its stop signal and waits for it
// (bounded, then SIGKILL to its process group).
func (p *process) Stop() {
	p.stopOnce.Do(func() {
		p.cmd.Process.Signal(p.stopSignal)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}
