package test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/test/harness"
)

// Milters (smtpd_milters): fault injection with a fake milter written
// packet by packet, and the real milters admins run next to Postfix
// (milter_peers_test.go).

// fakeMilter is a milter on a loopback port that negotiates protocol 6,
// answers every event with continue, except that from the event whose
// command code is hangAt on it stops answering (and keeps the connection
// open). hangAt 'O' hangs in negotiation. It records the packets it got.
type fakeMilter struct {
	addr   string
	hangAt byte
	mu     sync.Mutex
	// seen has each connection's packets: "C", "DC", ...: the command
	// code and, for macros, the stage's code.
	seen   [][]string
	macros map[string]string
}

func startFakeMilter(t *testing.T, hangAt byte) *fakeMilter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMilter{addr: ln.Addr().String(), hangAt: hangAt, macros: map[string]string{}}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				go func() { <-stop; c.Close() }()
				f.serve(c, stop)
			}()
		}
	}()
	return f
}

func (f *fakeMilter) serve(c net.Conn, stop chan struct{}) {
	defer c.Close()
	f.mu.Lock()
	k := len(f.seen)
	f.seen = append(f.seen, nil)
	f.mu.Unlock()
	for {
		var n uint32
		if err := binary.Read(c, binary.BigEndian, &n); err != nil || n == 0 || n > 1<<20 {
			return
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		code, data := pkt[0], pkt[1:]
		f.mu.Lock()
		if code == 'D' && len(data) > 0 {
			f.seen[k] = append(f.seen[k], "D"+string(data[0]))
			kv := strings.Split(strings.TrimSuffix(string(data[1:]), "\x00"), "\x00")
			for i := 0; i+1 < len(kv); i += 2 {
				f.macros[string(data[0])+" "+kv[i]] = kv[i+1]
			}
		} else {
			f.seen[k] = append(f.seen[k], string(code))
		}
		f.mu.Unlock()
		if code == f.hangAt {
			<-stop
			return
		}
		var reply []byte
		switch code {
		case 'O':
			reply = binary.BigEndian.AppendUint32([]byte{'O'}, 6)
			reply = binary.BigEndian.AppendUint32(reply, 1) // add header
			reply = binary.BigEndian.AppendUint32(reply, 0) // every event, every reply
		case 'D', 'A':
			continue // no reply
		case 'Q':
			return
		default:
			reply = []byte{'c'}
		}
		out := binary.BigEndian.AppendUint32(nil, uint32(len(reply)))
		if _, err := c.Write(append(out, reply...)); err != nil {
			return
		}
	}
}

// events are the packets of the longest milter session (the harness's
// readiness probe makes a short one besides the test's).
func (f *fakeMilter) events() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var longest []string
	for _, s := range f.seen {
		if len(s) > len(longest) {
			longest = s
		}
	}
	return strings.Join(longest, " ")
}

// milterConfig relays relay.test to the sink through the given milters.
func milterConfig(sink *harness.Sink, milters string) string {
	return rejectUnauth + routes("relay.test", sink) + "smtpd_milters = " + milters + "\n"
}

// TestMilterDefaultActionHang: a milter that stops answering in the
// message content runs into milter_content_timeout (given per milter
// here), and the message gets what milter_default_action says, as with
// Postfix 3.11 (which knows shutdown).
func TestMilterDefaultActionHang(t *testing.T) {
	sink := harness.StartSink(t)
	for _, c := range []struct {
		action string
		code   int
		reply  string
		log    string // the mail log line, after "ID: "
	}{
		{"tempfail", 451, "4.7.1 Service unavailable - try again later", "milter-reject: END-OF-MESSAGE from unknown[127.0.0.5]: 4.7.1 Service unavailable - try again later; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>"},
		{"reject", 550, "5.5.0 Service unavailable", "milter-reject: END-OF-MESSAGE from unknown[127.0.0.5]: 5.5.0 Service unavailable; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>"},
		{"shutdown", 421, "4.7.1 Service unavailable - try again later", "milter-reject: END-OF-MESSAGE from unknown[127.0.0.5]: 4.7.1 Service unavailable - try again later;"},
		{"accept", 250, "", ""},
		{"quarantine", 250, "", "milter-hold: END-OF-MESSAGE from unknown[127.0.0.5]: milter triggers HOLD action; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>"},
	} {
		t.Run(c.action, func(t *testing.T) {
			f := startFakeMilter(t, 'L') // hangs at the first header
			p := harness.Start(t, milterConfig(sink, fmt.Sprintf("{ inet:%s, content_timeout=1s, default_action=%s }", f.addr, c.action))+fastRetry, "")
			cl := harness.Dial(t, p.Addr, outside)
			cl.Expect(250, "EHLO client.test")
			cl.Expect(250, "MAIL FROM:<a@src.test>")
			cl.Expect(250, "RCPT TO:<u@relay.test>")
			cl.Expect(354, "DATA")
			start := time.Now()
			cl.Send("Subject: " + c.action + "\r\n\r\nbody\r\n.\r\n")
			code, text := cl.Reply()
			if d := time.Since(start); d < time.Second || d > 5*time.Second {
				t.Errorf("end of DATA answered after %v, want about content_timeout (1s)", d)
			}
			if code != c.code || (c.reply != "" && text != c.reply) {
				t.Fatalf("end of DATA: %d %s, want %d %s", code, text, c.code, c.reply)
			}
			id := ""
			if code == 250 {
				id = queuedRe.FindStringSubmatch(text)[1]
			}
			if c.log != "" {
				want := c.log
				if id != "" {
					want = id + ": " + want
				}
				if log := p.Log(want); !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if log := p.Log("warning: milter inet:" + f.addr); !strings.Contains(log, "warning: milter inet:"+f.addr+": can't read reply packet header: Connection timed out") {
				t.Errorf("no timeout warning:\n%s", log)
			}
			switch c.action {
			case "shutdown":
				if !cl.Closed() {
					t.Error("connection open after 421")
				}
			case "accept":
				p.Log(id + ": to=<u@relay.test>")
				if msgs := sink.WaitMessages(1, 10*time.Second); !containsAll(msgs, "Subject: accept") {
					t.Errorf("not delivered: %q", msgs)
				}
			case "quarantine":
				if q := queueJSON(t, p)[id].QueueName; q != "hold" {
					t.Errorf("%s is in the %q queue, want hold", id, q)
				}
			}
		})
	}
}

// containsAll reports whether one of msgs contains every want.
func containsAll(msgs []string, want ...string) bool {
	for _, m := range msgs {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(m, w)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestMilterCommandTimeout: replies to SMTP events wait
// milter_command_timeout, not the content timeout; after the failure the
// milter gets no more events and each command gets the default action's
// reply (tempfail by default).
func TestMilterCommandTimeout(t *testing.T) {
	sink := harness.StartSink(t)
	f := startFakeMilter(t, 'M')
	p := harness.Start(t, milterConfig(sink, "inet:"+f.addr)+"milter_command_timeout = 1s\n", "")
	cl := harness.Dial(t, p.Addr, outside)
	cl.Expect(250, "EHLO client.test")
	start := time.Now()
	code, text := cl.Cmd("MAIL FROM:<a@src.test>")
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("MAIL answered after %v, want about milter_command_timeout (1s)", d)
	}
	if code != 451 || text != "4.7.1 Service unavailable - try again later" {
		t.Errorf("MAIL: %d %s", code, text)
	}
	want := "NOQUEUE: milter-reject: MAIL from unknown[127.0.0.5]: 451 4.7.1 Service unavailable - try again later; from=<a@src.test> proto=ESMTP helo=<client.test>"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	start = time.Now()
	if code, text := cl.Cmd("MAIL FROM:<b@src.test>"); code != 451 || time.Since(start) > 500*time.Millisecond {
		t.Errorf("second MAIL: %d %s after %v, want 451 at once", code, text, time.Since(start))
	}
	if ev := f.events(); ev != "O DC C H DM M" {
		t.Errorf("milter saw %q", ev)
	}
}

// TestMilterDownAtConnect: a milter that accepts the connection but never
// negotiates holds the greeting for milter_connect_timeout, no longer; one
// that refuses the connection does not hold it at all. Either way the
// default action answers the commands (here: accept, the mail goes
// through; tempfail: 451 at MAIL).
func TestMilterDownAtConnect(t *testing.T) {
	sink := harness.StartSink(t)
	hung := startFakeMilter(t, 'O')
	closed := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	for _, c := range []struct {
		name, milter string
		wait         time.Duration
		mail         int
	}{
		{"hung tempfail", "{ inet:" + hung.addr + ", connect_timeout=2s }", 2 * time.Second, 451},
		{"hung accept", "{ inet:" + hung.addr + ", connect_timeout=2s, default_action=accept }", 2 * time.Second, 250},
		{"refused", "inet:" + closed, 0, 451},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := harness.Start(t, milterConfig(sink, c.milter), "")
			start := time.Now()
			cl := harness.Dial(t, p.Addr, outside)
			d := time.Since(start)
			if d < c.wait || d > c.wait+2*time.Second {
				t.Errorf("greeting after %v, want about %v", d, c.wait)
			}
			cl.Expect(250, "EHLO client.test")
			if code, text := cl.Cmd("MAIL FROM:<a@src.test>"); code != c.mail {
				t.Errorf("MAIL: %d %s, want %d", code, text, c.mail)
			}
			if c.mail == 250 {
				cl.Expect(250, "RCPT TO:<u@relay.test>")
				cl.Expect(354, "DATA")
				cl.Send("Subject: through\r\n\r\nx\r\n.\r\n")
				if code, text := cl.Reply(); code != 250 {
					t.Errorf("end of DATA: %d %s", code, text)
				}
			}
			warn := "warning: milter inet:" + hung.addr + ": can't read SMFIC_OPTNEG reply packet header: Connection timed out"
			if c.name == "refused" {
				warn = "warning: connect to Milter service inet:" + closed + ": Connection refused"
			}
			if log := p.Log(warn); !strings.Contains(log, warn) {
				t.Errorf("log lacks %q:\n%s", warn, log)
			}
		})
	}
}
