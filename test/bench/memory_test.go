package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postgate/test/harness"
)

// BenchmarkMemoryBigMessages: 50 concurrent clients each send a 12 MB
// message over message_size_limit (10 MB; each refused with 552), with
// postgate_memory_limit at its default and at 64 MB. Reports the daemon's
// memory (PSS) idle, at its peak during the burst (sampled every 250 ms)
// and 5 s after. Fixed workload: run with -benchtime 1x.
func BenchmarkMemoryBigMessages(b *testing.B) {
	const clients = 50
	body := bytes.Repeat([]byte(strings.Repeat("x", 78)+"\r\n"), 12<<20/80)
	for _, limit := range []struct{ name, main string }{
		{"default", ""},
		{"64MB", "postgate_memory_limit = 67108864\n"},
	} {
		p := harness.Start(b, "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"+
			"message_size_limit = 10240000\n"+limit.main, "")
		pid := p.Pid()
		idle := treePSS(pid)
		peak := samplePSS(pid, 250*time.Millisecond)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- sendTooBig(p.Addr, body)
			}()
		}
		wg.Wait()
		top := peak()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(5 * time.Second)
		b.ReportMetric(idle, limit.name+"-idle-pss-MB")
		b.ReportMetric(top, limit.name+"-peak-pss-MB")
		b.ReportMetric(treePSS(pid), limit.name+"-settled-pss-MB")
		p.Kill()
	}
}

// sendTooBig sends a message that must be refused as too big.
func sendTooBig(addr string, body []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = time.Minute, time.Minute
	if err := c.Hello("client.src.test"); err != nil {
		return err
	}
	if err := c.Mail("a@src.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("u@relay.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	w.Write(body)
	var se *smtp.SMTPError
	if err := w.Close(); !errors.As(err, &se) || se.Code != 552 {
		return fmt.Errorf("a message over message_size_limit: %v, want 552", err)
	}
	return nil
}

// BenchmarkMemoryIdleConnections: 1,000 connections that said EHLO and
// wait (smtpd's maxproc raised to allow them). Reports the daemon's
// memory (PSS) growth per connection.
func BenchmarkMemoryIdleConnections(b *testing.B) {
	const conns = 1000
	p := harness.Start(b, "", "127.0.0.1:PORT inet n - n - 1100 smtpd\n")
	pid := p.Pid()
	before := treePSS(pid)
	for i := range conns {
		nc, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(time.Minute))
		r := bufio.NewReader(nc)
		if err := expect(r, "220 "); err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		fmt.Fprintf(nc, "EHLO client%d.src.test\r\n", i)
		if err := expect(r, "250 "); err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
	}
	time.Sleep(time.Second)
	after := treePSS(pid)
	b.ReportMetric(before, "idle-pss-MB")
	b.ReportMetric(after, "with-1000-pss-MB")
	b.ReportMetric((after-before)*1024/conns, "pss-KB/conn")
}

// expect reads reply lines up to the last one, which must start with want.
func expect(r *bufio.Reader, want string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if len(line) >= 4 && line[3] == ' ' {
			if !strings.HasPrefix(line, want) {
				return fmt.Errorf("got %q, want %q", line, want)
			}
			return nil
		}
	}
}
