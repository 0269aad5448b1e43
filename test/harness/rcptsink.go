package harness

import (
	"bufio"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// RcptSink is a small SMTP server that answers RCPT per address, as a
// mail store that knows its users does (smtp-sink cannot choose per
// user), and records the recipients and DATA commands it gets, each with
// its transaction's sender: the next hop of address verification probes. It accepts DATA too, and records it, so a
// test sees a probe that sent content.
type RcptSink struct {
	Addr    string // 127.0.0.1:port
	Nexthop string // [127.0.0.1]:port
	l       net.Listener
	rcpt    map[string]SinkRcpt // by lowercased address

	mu     sync.Mutex
	log    []string // "MAIL FROM:<a> RCPT TO:<b>", "MAIL FROM:<a> DATA"
	logged int      // entries Since already returned
	conns  sync.WaitGroup
}

// SinkRcpt is how the sink answers RCPT TO for one address: after Delay,
// with Reply ("550 5.1.1 <a>: Recipient address rejected: User unknown").
// Addresses it has none for get "250 2.1.5 Ok".
type SinkRcpt struct {
	Addr  string
	Delay time.Duration
	Reply string
}

// StartRcptSink starts a sink on a free loopback port; it stops when the
// test ends.
func StartRcptSink(t testing.TB, rcpts []SinkRcpt) *RcptSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &RcptSink{Addr: l.Addr().String(), l: l, rcpt: map[string]SinkRcpt{}}
	s.Nexthop = fmt.Sprintf("[127.0.0.1]:%d", l.Addr().(*net.TCPAddr).Port)
	for _, r := range rcpts {
		s.rcpt[strings.ToLower(r.Addr)] = r
	}
	go s.serve()
	t.Cleanup(s.stop)
	return s
}

func (s *RcptSink) stop() {
	s.l.Close()
	s.conns.Wait()
}

func (s *RcptSink) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer c.Close()
			s.session(c)
		}()
	}
}

// session answers one client; every read and write is bounded, so a
// stuck client cannot hold the test's end.
func (s *RcptSink) session(c net.Conn) {
	rd := bufio.NewReader(c)
	mail := "MAIL FROM:<?>" // the transaction's sender, as MAIL gave it
	say := func(reply string) bool {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write([]byte(reply + "\r\n"))
		return err == nil
	}
	if !say("220 sink.test ESMTP") {
		return
	}
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		var reply string
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply = "250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME"
		case "HELO":
			reply = "250 sink.test"
		case "MAIL":
			mail = "MAIL FROM:<" + envelopeAddr(arg) + ">"
			reply = "250 2.1.0 Ok"
		case "RCPT":
			s.record(mail + " RCPT TO:<" + envelopeAddr(arg) + ">")
			reply = "250 2.1.5 Ok"
			if r, ok := s.rcpt[strings.ToLower(envelopeAddr(arg))]; ok {
				time.Sleep(r.Delay)
				reply = r.Reply
			}
		case "DATA":
			s.record(mail + " DATA")
			if !say("354 End data with <CR><LF>.<CR><LF>") {
				return
			}
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
			}
			reply = "250 2.0.0 Ok: queued"
		case "RSET", "NOOP":
			reply = "250 2.0.0 Ok"
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			reply = "502 5.5.2 Error: command not recognized"
		}
		if !say(reply) {
			return
		}
	}
}

// envelopeAddr is the address of "TO:<a> NOTIFY=..." or "FROM:<a> SIZE=...".
func envelopeAddr(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}

// record notes one recipient or DATA of a transaction, with the sender
// and without parameters, which differ between clients.
func (s *RcptSink) record(entry string) {
	s.mu.Lock()
	s.log = append(s.log, entry)
	s.mu.Unlock()
}

// Log returns every command recorded so far.
func (s *RcptSink) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// Since returns the entries recorded since the last call, sorted:
// probes sent at the same time reach the sink in any order.
func (s *RcptSink) Since() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.log[s.logged:]...)
	s.logged = len(s.log)
	sort.Strings(out)
	return out
}
