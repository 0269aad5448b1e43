package test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/test/harness"
)

// captureServer is a minimal SMTP server that records the raw bytes of
// every DATA it receives: the test needs the exact wire bytes postgate
// sends, which no real sink exposes.
type captureServer struct {
	ln   net.Listener
	mu   sync.Mutex
	data [][]byte // raw DATA bytes up to and including the end-of-data line
}

func startCapture(t *testing.T) *captureServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &captureServer{ln: ln}
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *captureServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *captureServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *captureServer) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "220 capture.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"):
			fmt.Fprintf(c, "250-capture.test\r\n250 8BITMIME\r\n")
		case cmd == "DATA":
			fmt.Fprintf(c, "354 go ahead\r\n")
			var raw bytes.Buffer
			for {
				l, err := r.ReadBytes('\n')
				raw.Write(l)
				if err != nil {
					return
				}
				if bytes.Equal(l, []byte(".\r\n")) {
					break
				}
			}
			s.mu.Lock()
			s.data = append(s.data, raw.Bytes())
			s.mu.Unlock()
			fmt.Fprintf(c, "250 2.0.0 captured\r\n")
		case cmd == "QUIT":
			fmt.Fprintf(c, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(c, "250 ok\r\n")
		}
	}
}

func (s *captureServer) messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.data...)
}

// TestSmugglingOnTheWire: every smuggling variant accepted from an outside
// client leaves postgate with CRLF line ends only, correct dot-stuffing and
// exactly one message per message received.
func TestSmugglingOnTheWire(t *testing.T) {
	t.Parallel()
	capture := startCapture(t)
	p := harness.Start(t, rejectUnauth+fmt.Sprintf("transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:%d }\n", capture.port()), "")
	sent := 0
	for _, sm := range smuggling {
		for _, bdat := range []bool{false, true} {
			c := outsideTxn(t, p.Addr)
			payload := "Subject: " + sm.name + "\r\n\r\n.leading dot\r\nbefore" + sm.seq + smuggled
			if !bdat {
				payload = strings.ReplaceAll(payload, "\r\n.", "\r\n..")
			}
			sendContent(c, payload, bdat)
			if code, text := c.Reply(); code != 250 {
				t.Fatalf("%s (bdat=%v): %d %s", sm.name, bdat, code, text)
			}
			sent++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && len(capture.messages()) < sent {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	msgs := capture.messages()
	if len(msgs) != sent {
		t.Fatalf("capture got %d messages, want exactly %d", len(msgs), sent)
	}
	for i, raw := range msgs {
		body := raw[:len(raw)-3] // without the end-of-data line
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
			t.Errorf("message %d: bare CR or LF on the wire: %q", i, raw)
		}
		if bytes.Contains(body, []byte("\r\n.\r\n")) {
			t.Errorf("message %d: an end-of-data line inside the content: %q", i, raw)
		}
		for _, line := range strings.Split(string(body), "\r\n") {
			if strings.HasPrefix(line, ".") && !strings.HasPrefix(line, "..") {
				t.Errorf("message %d: line %q is not dot-stuffed", i, line)
			}
		}
		if !bytes.Contains(raw, []byte("\r\n..leading dot\r\n")) {
			t.Errorf("message %d: the leading-dot line is not stuffed as \"..leading dot\": %q", i, raw)
		}
	}
}
