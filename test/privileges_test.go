package test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestMailOwner: started as root with mail_owner set, postgate binds its
// port and then runs as that user: the queue and the mail log become the
// user's, mail is received and delivered, mail from sendmail (run by
// root) is picked up, and root's admin commands still reach the daemon.
func TestMailOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("TestMailOwner needs root (make test runs as root)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	// The queue's path must be searchable by the user (t.TempDir's is not).
	base, err := os.MkdirTemp("", "postgate-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	sink := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+routes("relay.test", sink)+"mail_owner = nobody\n"+
		"queue_directory = "+filepath.Join(base, "queue")+"\nmaillog_file = "+filepath.Join(base, "maillog")+"\n", "")
	p.Maillog = filepath.Join(base, "maillog")

	// The daemon drops privileges once its sockets are bound, after the
	// harness already sees it listen: wait (bounded) for the change.
	uids := func() []string {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" { // real, effective, saved, filesystem
				return f[1:]
			}
		}
		return nil
	}
	want := []string{nobody.Uid, nobody.Uid, nobody.Uid, nobody.Uid}
	for deadline := time.Now().Add(20 * time.Second); !slices.Equal(uids(), want) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if got := uids(); !slices.Equal(got, want) {
		t.Errorf("daemon runs with uids %v, want %v", got, want)
	}

	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: as nobody\r\n\r\nx\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Fatalf("DATA: %d %s", code, text)
	}
	c.Expect(221, "QUIT")

	cmd := exec.Command(harness.Binary(t), "sendmail", "-c", p.Dir, "v@relay.test")
	cmd.Stdin = strings.NewReader("Subject: from root's sendmail\n\nx\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	msgs := sink.WaitMessages(2, 30*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("sink got %d messages, want 2\n%s", len(msgs), p.Log(""))
	}
	if out, err := p.Run("queue", "list"); err != nil || !strings.Contains(out, "Mail queue is empty") {
		t.Errorf("queue list: %v: %s", err, out)
	}
	if out, err := exec.Command(harness.Binary(t), "queue", "-c", p.Dir, "hold", "ALL").CombinedOutput(); err != nil {
		t.Errorf("queue hold through the control socket: %v: %s", err, out)
	}
	filepath.WalkDir(filepath.Join(base, "queue"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() == "control" {
			return err
		}
		if info, err := d.Info(); err == nil && int(info.Sys().(*syscall.Stat_t).Uid) != uid {
			t.Errorf("%s is not owned by nobody", path)
		}
		return nil
	})
}

// TestSystemdUnit: the example unit passes systemd's own checks.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze := harness.Need(t, "systemd-analyze", "systemd")
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join(filepath.Dir(strings.TrimSpace(string(root))), "cmd", "postgate", "postgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	// systemd checks that ExecStart names an executable: the one just built.
	text := strings.ReplaceAll(string(unit), "/usr/local/sbin/postgate", harness.Binary(t))
	path := filepath.Join(t.TempDir(), "postgate.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
