package relay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpSink is Postfix's test server. A missing binary is a failure, not a
// skip: `make test` installs package postfix.
const smtpSink = "/usr/sbin/smtp-sink"

// syncBuffer is a bytes.Buffer that smtp-sink's output goroutine and the
// test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startSink(t *testing.T) (port uint16, output *syncBuffer) {
	t.Helper()
	return startSinkB(t)
}

func startSinkB(t testing.TB) (port uint16, output *syncBuffer) {
	t.Helper()
	if _, err := os.Stat(smtpSink); err != nil {
		t.Fatalf("%s is missing (%v): `make test` installs package postfix", smtpSink, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = portOf(l)
	l.Close()
	args := []string{"-c", fmt.Sprintf("127.0.0.1:%d", port), "100"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...) // smtp-sink refuses to run as root
	}
	cmd := exec.Command(smtpSink, args...)
	output = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", smtpSink, err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return port, output
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink does not listen on port %d: %v; output: %s", port, err, output)
		}
	}
}

func TestSMTPSink(t *testing.T) {
	port, output := startSink(t)
	tr := newTransport(t, Options{ConnectionReuse: true})
	nexthop := fmt.Sprintf("[127.0.0.1]:%d", port)
	relay := fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", port)
	for i, use := range []int{1, 2} {
		m := message(nexthop, simpleContent+".dot line\r\nbare\nlf\r\n", "a@example.com", "b@example.com")
		m.RET, m.EnvID = "HDRS", "envid-1" // smtp-sink offers DSN
		m.Recipients[0].Notify, m.Recipients[0].ORCPT = "SUCCESS,FAILURE", "rfc822;a@example.com"
		res := tr.Deliver(context.Background(), m)
		for _, r := range res {
			if r.Status != Sent || !strings.HasPrefix(r.Reply, "250 ") || r.DSN != "2.0.0" || r.Relay != relay || r.ConnUse != use {
				t.Errorf("message %d: %+v, want sent with smtp-sink's 250 via %s, conn_use=%d", i, r, relay, use)
			}
		}
	}
	// smtp-sink's running counter (-c) shows both messages arrived.
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(output.String(), "mesg=2"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink counted no second message: %q", output.String())
		}
	}
}

// BenchmarkSMTPSink delivers 2 KiB messages to smtp-sink over reused,
// pipelined sessions from 20 goroutines.
func BenchmarkSMTPSink(b *testing.B) {
	port, _ := startSinkB(b)
	tr := NewSMTP(Options{HeloName: testHelo, ConnectionReuse: true})
	defer tr.Close()
	nexthop := fmt.Sprintf("[127.0.0.1]:%d", port)
	content := strings.Repeat(strings.Repeat("x", 62)+"\r\n", 32)
	b.SetParallelism(10) // 20 on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res := tr.Deliver(context.Background(), message(nexthop, content, "a@example.com"))
			if res[0].Status != Sent {
				b.Errorf("%+v", res[0])
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
