package test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postgate/test/harness"
)

// TestMemoryBounded: total memory is bounded, not only per session
// (postgate_memory_limit). 50 concurrent clients each send a message over
// message_size_limit (each refused), then 50 concurrent clients each send
// a 9 MB message under it (each queued intact, half of them with BDAT,
// with bare LFs to normalize), with a 64 MB budget, and a client from
// mynetworks is served meanwhile: the daemon's resident
// memory (VmRSS) stays under the budget + 100 MB during each burst, and
// within 15 s after it settles under 48 MB (measured: peaks near 130 MB,
// settled near 25 MB within a second or two). What does not fit the budget
// goes through spool files; none are left.
func TestMemoryBounded(t *testing.T) {
	t.Parallel()
	const (
		budget   = 64 << 20
		peakMax  = budget + 100<<20
		settled  = 48 << 20
		clients  = 50
		sizeOver = 12 << 20
		sizeOK   = 9 << 20
	)
	p := harness.Start(t, rejectUnauth+"message_size_limit = 10240000\n"+
		"postgate_memory_limit = "+strconv.Itoa(budget)+"\n", "")
	pid := p.Pid()
	t.Logf("resident at start: %d MB", harness.RSS(pid)>>20)

	over := filler(sizeOver, false)
	peak := burst(t, p.Addr, pid, clients, func(i int) error {
		code, text, err := sendRaw(p.Addr, "a@src.test", fmt.Sprintf("Message-ID: <over-%d@src.test>\r\n\r\n", i), over, false)
		if err == nil && (code != 552 || !strings.HasPrefix(text, "5.3.4 ")) {
			err = fmt.Errorf("client %d: a message over the limit got %d %s, want 552 5.3.4", i, code, text)
		}
		return err
	})
	t.Logf("messages over the limit: resident peak %d MB", peak>>20)
	if peak > peakMax {
		t.Errorf("resident memory peaked at %d MB during the burst of refused messages, want under %d MB", peak>>20, peakMax>>20)
	}
	waitSettled(t, pid, settled)

	body := filler(sizeOK, true)
	var mu sync.Mutex
	ids := map[int]string{}
	peak = burst(t, p.Addr, pid, clients, func(i int) error {
		bdat := i%2 == 1
		code, text, err := sendRaw(p.Addr, "a@src.test", msgHead(i), body, bdat)
		if err != nil {
			return err
		}
		m := queuedRe.FindStringSubmatch(text)
		if code != 250 || m == nil {
			return fmt.Errorf("client %d: got %d %s, want 250 queued", i, code, text)
		}
		if want := fmt.Sprintf("Ok: %d bytes", len(stored(i, body))); bdat && !strings.HasPrefix(text, "2.0.0 "+want) {
			return fmt.Errorf("client %d: BDAT reply %q, want %q", i, text, want)
		}
		mu.Lock()
		ids[i] = m[1]
		mu.Unlock()
		return nil
	})
	t.Logf("messages under the limit: resident peak %d MB", peak>>20)
	if peak > peakMax {
		t.Errorf("resident memory peaked at %d MB during the burst of queued messages, want under %d MB", peak>>20, peakMax>>20)
	}
	waitSettled(t, pid, settled)

	// Every message is listed with its size; a sample of both kinds (DATA,
	// BDAT) is read back whole (each read scans the whole queue log).
	log := p.Log(fmt.Sprintf("%s: message-id=<in-%d@src.test>", ids[clients-1], clients-1))
	msgs := queueJSON(t, p)
	for i, id := range ids {
		want := stored(i, body)
		if m, ok := msgs[id]; !ok || m.Size < int64(len(want)) || m.Size > int64(len(want))+512 {
			t.Errorf("client %d: %s is not queued with its %d bytes: %+v", i, id, len(want), m)
		}
		if want := fmt.Sprintf("%s: message-id=<in-%d@src.test>", id, i); !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q", want)
		}
		if i >= 4 {
			continue
		}
		if got := stripReceived(t, showRaw(t, p, id)); !bytes.Equal(got, want) {
			t.Errorf("client %d: %s stored %d bytes, not the %d sent (bare LFs made CRLF)", i, id, len(got), len(want))
		}
	}
	if ents, _ := os.ReadDir(p.Queue + "/spool"); len(ents) != 0 {
		t.Errorf("spool files left behind: %v", ents)
	}
}

// TestSpooledHoldDiscard: a message that went to a spool file (over a
// 1 MB postgate_memory_limit) still takes the access HOLD and DISCARD
// paths: held intact, or accepted and dropped. Spool files a crash left
// behind are removed at start.
func TestSpooledHoldDiscard(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"postgate_memory_limit = 1048576\n"+
		"smtpd_sender_restrictions = check_sender_access inline:{ hold@src.test=HOLD, discard@src.test=DISCARD }\n", "")
	body := filler(3<<20, true)
	for _, bdat := range []bool{false, true} {
		code, text, err := sendRaw(p.Addr, "hold@src.test", msgHead(1), body, bdat)
		if err != nil {
			t.Fatal(err)
		}
		m := queuedRe.FindStringSubmatch(text)
		if code != 250 || m == nil {
			t.Fatalf("HOLD (BDAT %v): %d %s", bdat, code, text)
		}
		if q := queueJSON(t, p)[m[1]]; q.QueueName != "hold" {
			t.Errorf("HOLD (BDAT %v): %s is in queue %q, want hold", bdat, m[1], q.QueueName)
		}
		if got := stripReceived(t, showRaw(t, p, m[1])); !bytes.Equal(got, stored(1, body)) {
			t.Errorf("HOLD (BDAT %v): stored %d bytes, want %d", bdat, len(got), len(stored(1, body)))
		}
		before := len(queueJSON(t, p))
		code, text, err = sendRaw(p.Addr, "discard@src.test", msgHead(2), body, bdat)
		if err != nil || code != 250 {
			t.Fatalf("DISCARD (BDAT %v): %d %s %v", bdat, code, text, err)
		}
		if n := len(queueJSON(t, p)); n != before {
			t.Errorf("DISCARD (BDAT %v): the queue went from %d to %d messages", bdat, before, n)
		}
	}

	p.Kill()
	leftover := filepath.Join(p.Queue, "spool", "spool-123")
	if err := os.WriteFile(leftover, []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Restart()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("a spool file left by a crash is still there after a restart: %v", err)
	}
}

// msgHead is client i's header.
func msgHead(i int) string {
	return fmt.Sprintf("Message-ID: <in-%d@src.test>\r\nSubject: big %d\r\n\r\n", i, i)
}

// stored is client i's message as it must be stored: bare LFs made CRLF.
func stored(i int, body []byte) []byte {
	b := append([]byte(msgHead(i)), body...)
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// filler is n bytes of 78-character lines; with bareLF every 7th ends in a
// bare LF.
func filler(n int, bareLF bool) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), 78))
		if bareLF && i%7 == 3 {
			b.WriteString("\n")
		} else {
			b.WriteString("\r\n")
		}
	}
	return b.Bytes()
}

// burst runs send for n concurrent clients and returns the daemon's peak
// resident memory meanwhile, sampled every 20 ms.
func burst(t *testing.T, addr string, pid, n int, send func(i int) error) (peak int64) {
	t.Helper()
	var max atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := harness.RSS(pid); r > max.Load() {
				max.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- send(i)
		}()
	}
	// A client from mynetworks is served while the burst goes on.
	time.Sleep(100 * time.Millisecond)
	if id, err := trySendFrom("127.0.0.1", addr, "a@gateway.test", "u@relay.test", []byte("Subject: during the burst\r\n\r\nx\r\n")); err != nil {
		t.Errorf("mynetworks client during the burst: %v", err)
	} else if id == "" {
		t.Error("mynetworks client during the burst: no queue ID")
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	return max.Load()
}

// waitSettled waits up to 15 s for the daemon's resident memory to fall
// under bound: memory goes back after a burst, no plateau.
func waitSettled(t *testing.T, pid int, bound int64) {
	t.Helper()
	start := time.Now()
	for {
		r := harness.RSS(pid)
		if r < bound {
			t.Logf("resident %d MB after %v", r>>20, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > 15*time.Second {
			t.Errorf("resident memory still %d MB 15 s after the burst, want under %d MB", r>>20, bound>>20)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendRaw sends one message from an outside client and sender from: head, then body
// (lines never start with a dot), with DATA or with two BDAT chunks, and
// returns the final reply.
func sendRaw(addr, from, head string, body []byte, bdat bool) (int, string, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(outside)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(50 * time.Second))
	r := bufio.NewReader(nc)
	reply := func() (int, string, error) {
		var text []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return 0, "", fmt.Errorf("reading reply: %v", err)
			}
			line = strings.TrimRight(line, "\r\n")
			if len(line) < 4 {
				return 0, "", fmt.Errorf("short reply line %q", line)
			}
			text = append(text, line[4:])
			if line[3] == ' ' {
				code, _ := strconv.Atoi(line[:3])
				return code, strings.Join(text, "\n"), nil
			}
		}
	}
	step := func(cmd string, want int) error {
		if cmd != "" {
			if _, err := nc.Write([]byte(cmd + "\r\n")); err != nil {
				return err
			}
		}
		code, text, err := reply()
		if err == nil && code != want {
			err = fmt.Errorf("%q: %d %s, want %d", cmd, code, text, want)
		}
		return err
	}
	for _, s := range []struct {
		cmd  string
		want int
	}{{"", 220}, {"EHLO client.src.test", 250}, {"MAIL FROM:<" + from + ">", 250}, {"RCPT TO:<u@relay.test>", 250}} {
		if err := step(s.cmd, s.want); err != nil {
			return 0, "", err
		}
	}
	msg := append([]byte(head), body...)
	if !bdat {
		if err := step("DATA", 354); err != nil {
			return 0, "", err
		}
		if _, err := nc.Write(append(msg, ".\r\n"...)); err != nil {
			return 0, "", err
		}
		return reply()
	}
	half := len(msg) / 2
	if _, err := fmt.Fprintf(nc, "BDAT %d\r\n%s", half, msg[:half]); err != nil {
		return 0, "", err
	}
	if code, text, err := reply(); err != nil || code != 250 {
		return code, text, err
	}
	if _, err := fmt.Fprintf(nc, "BDAT %d LAST\r\n%s", len(msg)-half, msg[half:]); err != nil {
		return 0, "", err
	}
	return reply()
}
