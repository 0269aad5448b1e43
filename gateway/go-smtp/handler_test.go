package smtp_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// echoHandler answers every command with what go-smtp gave it, so the tests
// see the transport alone.
type echoHandler struct {
	mu     sync.Mutex
	events []string
	done   chan struct{}
	tls    *tls.Config // for STARTTLS
}

func (h *echoHandler) NewHandlerSession(c *smtp.Conn) smtp.HandlerSession {
	return &echoSession{h: h, c: c}
}

func (h *echoHandler) log(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

type echoSession struct {
	h *echoHandler
	c *smtp.Conn
}

func (s *echoSession) Greet() { s.c.Reply(220, smtp.NoEnhancedCode, "hello") }

func (s *echoSession) Command(l smtp.CommandLine) {
	verb, arg, _ := strings.Cut(l.Text, " ")
	switch verb {
	case "DATA":
		s.c.Reply(354, smtp.NoEnhancedCode, "go ahead")
		b, err := io.ReadAll(s.c.DataReader())
		s.h.log(fmt.Sprintf("data %q %v", b, err))
		if err == nil {
			s.c.Reply(250, smtp.EnhancedCode{2, 0, 0}, fmt.Sprintf("%d bytes", len(b)))
		}
	case "BDAT":
		n, _ := strconv.ParseInt(arg, 10, 64)
		b, err := io.ReadAll(s.c.ChunkReader(n))
		s.h.log(fmt.Sprintf("chunk %q %v", b, err))
		if err == nil {
			s.c.Reply(250, smtp.EnhancedCode{2, 0, 0}, fmt.Sprintf("%d bytes", len(b)))
		}
	case "PENDING":
		s.c.Reply(250, smtp.NoEnhancedCode, fmt.Sprintf("pending %q", s.c.Pending()))
	case "STARTTLS":
		s.c.Reply(220, smtp.EnhancedCode{2, 0, 0}, "Ready to start TLS")
		if err := s.c.StartTLS(context.Background(), s.h.tls); err != nil {
			s.h.log("handshake " + err.Error())
			s.c.Close()
		}
	case "TLS":
		st, ok := s.c.TLSConnectionState()
		s.c.Reply(250, smtp.NoEnhancedCode, fmt.Sprintf("tls=%v version=%x", ok, st.Version))
	case "PANIC":
		panic("on purpose")
	case "QUIT":
		s.c.Reply(221, smtp.EnhancedCode{2, 0, 0}, "bye")
		s.c.Close()
	default:
		s.c.Reply(250, smtp.NoEnhancedCode, fmt.Sprintf("%q bareLF=%v truncated=%v", l.Text, l.BareLF, l.Truncated), "second line")
	}
}

func (s *echoSession) ReadError(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.c.Reply(421, smtp.EnhancedCode{4, 4, 2}, "timeout")
	}
	s.h.log("read error " + err.Error())
}

func (s *echoSession) Close() {
	s.h.log("close")
	close(s.h.done)
}

func handlerServer(t *testing.T, configure func(*smtp.Server)) (*echoHandler, net.Conn, *bufio.Reader) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &echoHandler{done: make(chan struct{})}
	s := smtp.NewServer(nil)
	s.Handler, s.MaxLineLength, s.ErrorLog = h, 20, discardLog{}
	if configure != nil {
		configure(s)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if line, _ := r.ReadString('\n'); line != "220 hello\r\n" {
		t.Fatalf("greeting %q", line)
	}
	return h, c, r
}

type discardLog struct{}

func (discardLog) Printf(string, ...interface{}) {}
func (discardLog) Println(...interface{})        {}

// readReplies reads n replies, multi-line replies whole.
func readReplies(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	var b strings.Builder
	for n > 0 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", b.String(), err)
		}
		b.WriteString(line)
		if len(line) > 3 && line[3] == ' ' {
			n--
		}
	}
	return b.String()
}

func TestHandlerCommandLines(t *testing.T) {
	_, c, r := handlerServer(t, nil)
	io.WriteString(c, "NOOP\r\nbare\nxxxxxxxxxxxxxxxxxxx\r\nyyyyyyyyyyyyyyyyyyyy\r\nzzzzzzzzzzzzzzzzzzzzzzzzzz\r\nafter\r\n")
	got := readReplies(t, r, 5)
	want := "250-\"NOOP\" bareLF=false truncated=false\r\n250 second line\r\n" +
		"250-\"bare\" bareLF=true truncated=false\r\n250 second line\r\n" +
		// 19 bytes fit a limit of 20; 20 do not (Postfix counts the line end).
		"250-\"xxxxxxxxxxxxxxxxxxx\" bareLF=false truncated=false\r\n250 second line\r\n" +
		"250-\"yyyyyyyyyyyyyyyyyyyy\" bareLF=false truncated=true\r\n250 second line\r\n" +
		"250-\"zzzzzzzzzzzzzzzzzzzz\" bareLF=false truncated=true\r\n250 second line\r\n"
	if got != want {
		t.Errorf("replies:\n%s\nwant:\n%s", got, want)
	}
	// The rest of the over-long line was skipped: the next command is whole.
	if got := readReplies(t, r, 1); !strings.HasPrefix(got, "250-\"after\"") {
		t.Errorf("after a truncated line: %q", got)
	}
}

// Replies to a pipelined group go out together, once the server has to
// read again; Pending shows what the client sent ahead.
func TestHandlerPipelining(t *testing.T) {
	_, c, r := handlerServer(t, nil)
	io.WriteString(c, "PENDING\r\nNOOP\r\n")
	if got := readReplies(t, r, 2); !strings.HasPrefix(got, "250 pending \"NOOP\\r\\n\"\r\n250-\"NOOP\"") {
		t.Errorf("replies: %q", got)
	}
	if r.Buffered() != 0 {
		t.Errorf("unexpected extra output buffered: %d bytes", r.Buffered())
	}
}

func TestHandlerData(t *testing.T) {
	h, c, r := handlerServer(t, nil)
	io.WriteString(c, "DATA\r\nline 1\r\n..dot\r\n.\r\nBDAT 5\r\nabcdeNOOP\r\n")
	got := readReplies(t, r, 4)
	if want := "354 go ahead\r\n250 2.0.0 14 bytes\r\n250 2.0.0 5 bytes\r\n250-\"NOOP\""; !strings.HasPrefix(got, want) {
		t.Errorf("replies %q, want prefix %q", got, want)
	}
	// Content cut short by the end of the connection is an error.
	io.WriteString(c, "BDAT 100\r\nonly this")
	c.(*net.TCPConn).CloseWrite()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	want := []string{`data "line 1\r\n.dot\r\n" <nil>`, `chunk "abcde" <nil>`, `chunk "only this" unexpected EOF`, "read error EOF", "close"}
	if strings.Join(h.events, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", h.events, want)
	}
}

func TestHandlerDataCutShort(t *testing.T) {
	h, c, _ := handlerServer(t, nil)
	io.WriteString(c, "DATA\r\nline 1\r\n")
	c.(*net.TCPConn).CloseWrite()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := `data "line 1\r\n" unexpected EOF`; len(h.events) == 0 || h.events[0] != want {
		t.Errorf("events %q, want first %q", h.events, want)
	}
}

func TestHandlerEndings(t *testing.T) {
	t.Run("quit", func(t *testing.T) {
		h, c, r := handlerServer(t, nil)
		io.WriteString(c, "QUIT\r\n")
		if got := readReplies(t, r, 1); got != "221 2.0.0 bye\r\n" {
			t.Errorf("QUIT: %q", got)
		}
		<-h.done
		if _, err := r.ReadByte(); err != io.EOF {
			t.Errorf("after QUIT: %v, want EOF", err)
		}
	})
	t.Run("panic", func(t *testing.T) {
		h, c, r := handlerServer(t, nil)
		io.WriteString(c, "PANIC\r\n")
		if got := readReplies(t, r, 1); got != "421 4.0.0 Internal server error\r\n" {
			t.Errorf("panic: %q", got)
		}
		<-h.done
	})
	t.Run("timeout", func(t *testing.T) {
		h, _, r := handlerServer(t, func(s *smtp.Server) { s.ReadTimeout = 50 * time.Millisecond })
		if got := readReplies(t, r, 1); got != "421 4.4.2 timeout\r\n" {
			t.Errorf("timeout: %q", got)
		}
		<-h.done
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.events) != 2 || !strings.HasPrefix(h.events[0], "read error") {
			t.Errorf("events %q", h.events)
		}
	})
	t.Run("eof", func(t *testing.T) {
		h, c, _ := handlerServer(t, nil)
		io.WriteString(c, "NOOP")
		c.Close()
		<-h.done
		h.mu.Lock()
		defer h.mu.Unlock()
		if want := "read error EOF|close"; strings.Join(h.events, "|") != want {
			t.Errorf("events %q, want %q", h.events, want)
		}
	})
}

// testCert is a self-signed certificate for 127.0.0.1, made for the test.
func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// After STARTTLS the dialogue goes on inside TLS; what the client sent in
// clear text after STARTTLS is dropped, not taken for commands.
func TestHandlerStartTLS(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	h, c, r := handlerServer(t, nil)
	h.tls = cfg
	io.WriteString(c, "STARTTLS\r\nINJECTED\r\n")
	if got := readReplies(t, r, 1); got != "220 2.0.0 Ready to start TLS\r\n" {
		t.Fatalf("STARTTLS reply %q", got)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tr := bufio.NewReader(tc)
	io.WriteString(tc, "TLS\r\n")
	if got := readReplies(t, tr, 1); got != "250 tls=true version=304\r\n" {
		t.Errorf("inside TLS: %q (the injected line must not be answered)", got)
	}
}
