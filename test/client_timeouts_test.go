package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postgate/test/harness"
)

// stallServer is an SMTP/LMTP server that answers until stage, then
// stops: it says nothing more (greeting, helo, mail, rcpt, data, dot) or
// reads nothing more of the message (body). It offers no PIPELINING, so
// each command waits for its own reply.
func stallServer(t *testing.T, stage string) int {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		// A small receive buffer, so a sender that is not read from
		// blocks soon.
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				stall := func() { <-done }
				if stage == "greeting" {
					stall()
					return
				}
				io.WriteString(c, "220 stall.test ESMTP\r\n")
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					verb := strings.ToLower(strings.SplitN(strings.TrimSpace(line), " ", 2)[0])
					switch {
					case verb == "ehlo" || verb == "lhlo":
						verb = "helo"
					case strings.HasPrefix(verb, "mail"):
						verb = "mail"
					case strings.HasPrefix(verb, "rcpt"):
						verb = "rcpt"
					}
					if verb == stage {
						stall()
						return
					}
					switch verb {
					case "helo":
						io.WriteString(c, "250-stall.test\r\n250 8BITMIME\r\n")
					case "data":
						io.WriteString(c, "354 go on\r\n")
						if stage == "body" {
							stall()
							return
						}
						for {
							l, err := br.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
						}
						if stage == "dot" {
							stall()
							return
						}
						io.WriteString(c, "250 2.0.0 Ok\r\n")
					case "quit":
						io.WriteString(c, "221 2.0.0 Bye\r\n")
						return
					default:
						io.WriteString(c, "250 2.0.0 Ok\r\n")
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// unansweredPort is a loopback port where a connect hangs: a listener
// with a backlog of 0 that never accepts, its queue filled, so the
// kernel drops further SYNs.
func unansweredPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 300*time.Millisecond)
		if err != nil {
			return port // the queue is full: connects now hang
		}
		t.Cleanup(func() { c.Close() })
		if i == 10 {
			t.Fatal("the listener's queue does not fill")
		}
	}
}

// The SMTP client's time limits (smtp_*_timeout) and the LMTP client's
// (lmtp_*_timeout, lmtp_lhlo_timeout) are each the limit of their own
// stage, with Postfix's words for the deferral. Each limit has its own
// value and each protocol another order of them, and the transport time
// of each deferral (delays' c+d) is at least its limit: a parameter read
// into the wrong stage, or the lmtp transport reading smtp_ values, would
// show a stage giving up too soon, or not at all.
func TestClientTimeouts(t *testing.T) {
	t.Parallel()
	type stage struct {
		name, where   string
		smtp, lmtp    int // the limits, in seconds
		param, lparam string
	}
	stages := []stage{
		{"connect", "", 1, 8, "smtp_connect_timeout", "lmtp_connect_timeout"},
		{"greeting", "receiving the initial server greeting", 2, 7, "smtp_helo_timeout", "lmtp_lhlo_timeout"},
		{"helo", "performing the %s handshake", 2, 7, "", ""},
		{"mail", "sending MAIL FROM", 3, 6, "smtp_mail_timeout", "lmtp_mail_timeout"},
		{"rcpt", "sending RCPT TO", 4, 5, "smtp_rcpt_timeout", "lmtp_rcpt_timeout"},
		{"data", "sending DATA command", 5, 3, "smtp_data_init_timeout", "lmtp_data_init_timeout"},
		{"body", "sending message body", 6, 2, "smtp_data_xfer_timeout", "lmtp_data_xfer_timeout"},
		{"dot", "sending end of data -- message may be sent more than once", 7, 1, "smtp_data_done_timeout", "lmtp_data_done_timeout"},
	}
	var main, routes strings.Builder
	ports := map[string]int{}
	for _, s := range stages {
		for _, proto := range []string{"smtp", "lmtp"} {
			port := 0
			if s.name == "connect" {
				port = unansweredPort(t)
			} else {
				port = stallServer(t, s.name)
			}
			ports[s.name+"."+proto] = port
			hop := fmt.Sprintf("smtp:[127.0.0.1]:%d", port)
			if proto == "lmtp" {
				hop = fmt.Sprintf("lmtp:inet:127.0.0.1:%d", port)
			}
			fmt.Fprintf(&routes, " %s.%s.test=%s,", s.name, proto, hop)
		}
		if s.param != "" {
			fmt.Fprintf(&main, "%s = %ds\n%s = %ds\n", s.param, s.smtp, s.lparam, s.lmtp)
		}
	}
	p := harness.Start(t, main.String()+"transport_maps = inline:{"+strings.TrimSuffix(routes.String(), ",")+" }\nmessage_size_limit = 20000000\n", "")

	// The body stage needs a message larger than the socket buffers.
	big := []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 12000))
	small := []byte("Subject: small\r\n\r\nx\r\n")
	ids := map[string]string{}
	for _, s := range stages {
		for _, proto := range []string{"smtp", "lmtp"} {
			body := small
			if s.name == "body" {
				body = big
			}
			id, err := trySendFrom("127.0.0.1", p.Addr, "a@src.test", fmt.Sprintf("u@%s.%s.test", s.name, proto), body)
			if err != nil {
				t.Fatal(err)
			}
			ids[s.name+"."+proto] = id
		}
	}
	delays := regexp.MustCompile(`delays=[0-9.]+/[0-9.]+/([0-9.]+)/([0-9.]+), dsn=4\.4\.[12], status=deferred \((.*)\)$`)
	for _, s := range stages {
		for _, proto := range []string{"smtp", "lmtp"} {
			key := s.name + "." + proto
			want := fmt.Sprintf("%s: to=<u@%s.test>,", ids[key], key)
			line := logLine(p.Log(want), want)
			m := delays.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: no deferral: %q", key, line)
				continue
			}
			why := fmt.Sprintf("conversation with 127.0.0.1[127.0.0.1] timed out while %s", s.where)
			switch s.name {
			case "connect":
				why = fmt.Sprintf("connect to 127.0.0.1[127.0.0.1]:%d: Connection timed out", ports[key])
			case "helo":
				why = fmt.Sprintf(why, map[string]string{"smtp": "EHLO", "lmtp": "LHLO"}[proto])
			}
			if m[3] != why {
				t.Errorf("%s: deferred (%s), want (%s)", key, m[3], why)
			}
			c, _ := strconv.ParseFloat(m[1], 64)
			d, _ := strconv.ParseFloat(m[2], 64)
			limit := map[string]int{"smtp": s.smtp, "lmtp": s.lmtp}[proto]
			if c+d < float64(limit) {
				t.Errorf("%s: gave up after %.2fs, before its limit of %ds: %s", key, c+d, limit, line)
			}
		}
	}
}
