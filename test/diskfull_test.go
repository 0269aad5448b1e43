package test

import (
	"errors"
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

// tmpfsQueue mounts a tmpfs of size (e.g. "24m") and returns a queue
// directory in it; it is unmounted when the test ends, after the daemon
// (started later, so stopped first) is gone. A mount that fails fails the
// test: the tests run as root.
func tmpfsQueue(t *testing.T, size string) (mnt, queueDir string) {
	t.Helper()
	mnt = t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: %s", mnt, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt, filepath.Join(mnt, "queue")
}

// freeBytes is what statfs says is available in dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill writes path until it holds n bytes, or, with n < 0, until the file
// system is full.
func fill(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for written := int64(0); n < 0 || written < n; {
		k := int64(len(chunk))
		if n >= 0 {
			k = min(k, n-written)
		}
		m, err := f.Write(chunk[:k])
		written += int64(m)
		if errors.Is(err, syscall.ENOSPC) && n < 0 {
			return
		}
		if err != nil {
			t.Fatalf("filling %s: %v", path, err)
		}
	}
}

// spaceRefreshed waits out the daemon's statfs cache (200 ms).
func spaceRefreshed() { time.Sleep(300 * time.Millisecond) }

// TestDiskFull runs postgate with its queue on a 24 MB tmpfs that a filler
// file fills. Below queue_minfree, MAIL gets 452 4.3.1 before any content
// and a message already in DATA gets it at its end; with the disk full to
// the last block, mail already queued is still delivered (the records of
// it that cannot be written are kept in memory); once the filler is
// deleted everything resumes by itself. Every message acknowledged with
// 250 reaches the sink exactly once.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt, qdir := tmpfsQueue(t, "24m")
	sink := harness.StartSink(t)
	sink.Stop() // mail waits in the queue
	p := harness.Start(t, rejectUnauth+fastRetry+routes("relay.test", sink)+
		"queue_directory = "+qdir+"\nqueue_minfree = 4194304\nmessage_size_limit = 1048576\n", "")

	acked := map[string]string{} // Message-ID -> queue ID
	send := func(tag string, i int) {
		t.Helper()
		msgid := fmt.Sprintf("%s-%d@src.test", tag, i)
		body := fmt.Sprintf("Subject: %s %d\r\nMessage-ID: <%s>\r\n\r\n%s\r\n", tag, i, msgid, strings.Repeat("body line\r\n", 200))
		acked[msgid] = sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte(body))
	}
	const queued = 20
	for i := range queued {
		send("before", i)
	}
	p.Log("status=deferred")

	// A message in DATA when the queue falls below queue_minfree.
	late := outsideTxn(t, p.Addr)
	late.Expect(354, "DATA")
	late.Send("Subject: late\r\nMessage-ID: <late@src.test>\r\n\r\nstarted with room to spare\r\n")
	filler := filepath.Join(mnt, "filler")
	fill(t, filler, freeBytes(t, mnt)-2<<20) // 2 MiB left: under queue_minfree
	spaceRefreshed()
	late.Send(".\r\n")
	if code, text := late.Reply(); code != 452 || text != "4.3.1 Insufficient system storage" {
		t.Fatalf("end of DATA below queue_minfree: %d %s, want 452 4.3.1 Insufficient system storage", code, text)
	}
	late.Expect(221, "QUIT")

	// A new transaction is refused at MAIL, before any content.
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	if code, text := c.Cmd("MAIL FROM:<a@src.test>"); code != 452 || text != "4.3.1 Insufficient system storage" {
		t.Fatalf("MAIL below queue_minfree: %d %s, want 452 4.3.1 Insufficient system storage", code, text)
	}
	c.Expect(221, "QUIT")
	log := p.Log("bytes < 1.5*message size limit") // the MAIL line, not the earlier append failure
	for _, want := range []string{
		"postgate/smtpd[", "]: NOQUEUE: reject: MAIL from unknown[" + outside + "]: 452 4.3.1 Insufficient system storage; proto=ESMTP helo=<client.src.test>\n",
		"]: warning: not enough free space in mail queue: ",
		" bytes < 1.5*message size limit\n",
		": queue file write error: queue: not enough free space in mail queue: ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}

	// Full to the last block: the deferrals of the queued mail can no
	// longer be written, yet the mail goes out once its next hop is back.
	fill(t, filler, -1)
	if log := p.Log("update queue file"); !strings.Contains(log, "no space left on device") {
		t.Fatalf("no state change failed for want of space; the disk is not full:\n%s", log)
	}
	sink.Start()
	if msgs := sink.WaitMessages(queued, 60*time.Second); len(msgs) < queued {
		t.Fatalf("with the disk full the sink got %d of %d queued messages", len(msgs), queued)
	}
	if n := len(queueJSON(t, p)); n == 0 {
		t.Error("every delivery was recorded on a full disk: the test shows nothing kept in memory")
	}

	// Space again: the records kept in memory are written and acceptance
	// resumes, without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(queueJSON(t, p)) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if q := queueJSON(t, p); len(q) > 0 {
		t.Fatalf("%d messages still queued after the space came back", len(q))
	}
	spaceRefreshed()
	for i := range 3 {
		send("after", i)
	}
	msgs := sink.WaitMessages(queued+3, 30*time.Second)
	time.Sleep(3 * time.Second) // a second copy would come within the backoff
	msgs = sink.Messages()
	seen := map[string]int{}
	for _, m := range msgs {
		for msgid := range acked {
			if strings.Contains(m, "Message-ID: <"+msgid+">") {
				seen[msgid]++
			}
		}
		if strings.Contains(m, "Message-ID: <late@src.test>") {
			t.Error("the message refused with 452 at the end of DATA was delivered")
		}
	}
	for msgid, id := range acked {
		if seen[msgid] != 1 {
			t.Errorf("%s (queue ID %s) reached the sink %d times, want once", msgid, id, seen[msgid])
		}
	}
	if len(msgs) != len(acked) {
		t.Errorf("sink got %d messages, %d were acknowledged", len(msgs), len(acked))
	}
}

// TestDiskFullAnnouncedSize: a client that announces with SIZE= a message
// bigger than the room the queue has left (above queue_minfree) gets 452
// 4.3.1 at MAIL, before it sends the content (Postfix 3.7 checks only
// queue_minfree and message_size_limit); one that fits is taken.
func TestDiskFullAnnouncedSize(t *testing.T) {
	t.Parallel()
	_, qdir := tmpfsQueue(t, "24m")
	p := harness.Start(t, rejectUnauth+"queue_directory = "+qdir+"\nqueue_minfree = 4194304\nmessage_size_limit = 0\n", "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(250, "EHLO client.src.test")
	if code, text := c.Cmd("MAIL FROM:<a@src.test> SIZE=%d", 30<<20); code != 452 || text != "4.3.1 Insufficient system storage" {
		t.Errorf("SIZE past the free space: %d %s, want 452 4.3.1 Insufficient system storage", code, text)
	}
	c.Expect(250, "MAIL FROM:<a@src.test> SIZE=%d", 1<<20)
	if log := p.Log("for a message of"); !strings.Contains(log, "warning: not enough free space in mail queue for a message of 31457280 bytes") {
		t.Errorf("no warning in the log:\n%s", log)
	}
}
