package test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
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
// A scripted one (startScriptedMilter) answers events from replies and
// sends eom's modifications before its end-of-message reply.
type fakeMilter struct {
	addr    string
	hangAt  byte
	replies map[byte]string // event code: reply packet (code, then data)
	eom     []string        // modification packets at end of message
	symlist string          // macro lists asked for in negotiation
	mu      sync.Mutex
	headers []string // "Name: value" of the L packets
	// seen has each connection's packets: "C", "DC", ...: the command
	// code and, for macros, the stage's code.
	seen   [][]string
	macros []map[string]string // each connection's macros: "C j": value
}

func startFakeMilter(t *testing.T, hangAt byte) *fakeMilter {
	t.Helper()
	return startScriptedMilter(t, &fakeMilter{hangAt: hangAt})
}

// startScriptedMilter serves f on a loopback port.
func startScriptedMilter(t *testing.T, f *fakeMilter) *fakeMilter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
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
	f.macros = append(f.macros, map[string]string{})
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
				f.macros[k][string(data[0])+" "+kv[i]] = kv[i+1]
			}
		} else {
			f.seen[k] = append(f.seen[k], string(code))
		}
		if code == 'L' {
			name, value, _ := strings.Cut(strings.TrimSuffix(string(data), "\x00"), "\x00")
			f.headers = append(f.headers, name+": "+value)
		}
		f.mu.Unlock()
		if code == f.hangAt {
			<-stop
			return
		}
		var replies []string
		switch code {
		case 'O':
			neg := binary.BigEndian.AppendUint32([]byte{'O'}, 6)
			neg = binary.BigEndian.AppendUint32(neg, 0x1ff&^0x80) // every action but ADDRCPT_PAR
			neg = binary.BigEndian.AppendUint32(neg, 0)           // every event, every reply
			replies = []string{string(neg) + f.symlist}
		case 'D', 'A':
			continue // no reply
		case 'Q':
			return
		default:
			f.mu.Lock()
			if code == 'E' {
				replies = append(replies, f.eom...)
			}
			if r, ok := f.replies[code]; ok {
				replies = append(replies, r)
			} else {
				replies = append(replies, "c")
			}
			f.mu.Unlock()
		}
		for _, r := range replies {
			out := binary.BigEndian.AppendUint32(nil, uint32(len(r)))
			if _, err := c.Write(append(out, r...)); err != nil {
				return
			}
		}
	}
}

// events are the packets of the last milter session that got a HELO (the
// harness's readiness probe makes short ones besides the test's).
func (f *fakeMilter) events() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.seen) - 1; i >= 0; i-- {
		if slices.Contains(f.seen[i], "H") {
			return strings.Join(f.seen[i], " ")
		}
	}
	return ""
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
			if log := p.Log("warning: milter inet:" + f.addr); !strings.Contains(log, "warning: milter inet:"+f.addr+": can't read SMFIC_HEADER reply packet header: Connection timed out") {
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

// script sets the scripted milter's replies and end-of-message
// modifications for the sessions that follow.
func (f *fakeMilter) script(replies map[byte]string, eom ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies, f.eom, f.headers = replies, eom, nil
}

var (
	hostnames = regexp.MustCompile(`postfix\.bench\.test|mx\.gateway\.test`)
	queueIDs  = regexp.MustCompile(`queued as [0-9A-Za-z]+`)
)

// milterDialogue runs one SMTP session (EHLO, MAIL, RCPT, an unknown
// command, DATA and a message) from outside and returns the replies,
// with host names and queue IDs made alike; EHLO's keywords and the
// banner after 220 are left out, they differ between the servers.
func milterDialogue(t *testing.T, addr string) []string {
	t.Helper()
	c := harness.DialRaw(t, addr, outside)
	var out []string
	add := func(cmd string, code int, text string) bool {
		switch {
		case code == 220:
			text = ""
		case cmd == "EHLO" && code == 250:
			// The keywords differ between the servers: only whether
			// they are all there is compared.
			text = fmt.Sprint(strings.Count(text, "\n") > 1)
		}
		text = queueIDs.ReplaceAllString(hostnames.ReplaceAllString(text, "HOST"), "queued as ID")
		out = append(out, fmt.Sprintf("%s: %d %s", cmd, code, text))
		return code != 421 && code != 0
	}
	code, text := c.Reply()
	if !add("greeting", code, text) {
		return out
	}
	for _, cmd := range []string{"EHLO client.test", "MAIL FROM:<a@src.test>", "RCPT TO:<u@relay.test>", "XFOO bar", "DATA"} {
		code, text := c.Cmd("%s", cmd)
		if !add(strings.Fields(cmd)[0], code, text) {
			return out
		}
		if code == 354 {
			c.Send("From: a@src.test\r\nSubject: script\r\nX-Drop: me\r\n\r\nbody\r\n.\r\n")
			code, text = c.Reply()
			if !add("end of DATA", code, text) {
				return out
			}
		}
	}
	c.Cmd("QUIT")
	return out
}

// postfixWithMilter starts a real Postfix with smtpd_milters, relaying
// relay.test for the test's clients to sink (nil: discarding it).
func postfixWithMilter(t *testing.T, milters string, sink *harness.Sink) *harness.Postfix {
	t.Helper()
	transport := "transport_maps = inline:{ relay.test=discard: }\n"
	if sink != nil {
		transport = routes("relay.test", sink)
	}
	return harness.StartPostfix(t, "smtpd_milters = "+milters+"\nmynetworks = 127.0.0.0/8\nrelay_domains = relay.test\n"+transport)
}

// sideBySide starts a scripted milter, and postgate and Postfix using it,
// both relaying relay.test to sink (Postfix: discarding it when nil).
func sideBySide(t *testing.T, sink *harness.Sink) (*fakeMilter, *harness.Postgate, *harness.Postfix) {
	t.Helper()
	f := startScriptedMilter(t, &fakeMilter{})
	pgSink := sink
	if pgSink == nil {
		pgSink = harness.StartSink(t)
	}
	return f, harness.Start(t, milterConfig(pgSink, "inet:"+f.addr), ""), postfixWithMilter(t, "inet:"+f.addr, sink)
}

// TestMilterRepliesAsPostfix: a scripted milter's decisions at each
// stage, through postgate and through a real Postfix 3.7 with the same
// milter: the client gets the same replies from both.
func TestMilterRepliesAsPostfix(t *testing.T) {
	f, p, pf := sideBySide(t, nil)
	for _, c := range []struct {
		name    string
		replies map[byte]string
	}{
		{"connect reject", map[byte]string{'C': "r"}},
		{"connect tempfail", map[byte]string{'C': "t"}},
		{"connect 5xx reply", map[byte]string{'C': "y550 5.7.1 not you\x00"}},
		{"connect 421", map[byte]string{'C': "y421 4.7.0 go away\x00"}},
		{"connect accept", map[byte]string{'C': "a", 'E': "r"}},
		{"helo 5xx", map[byte]string{'H': "y550 5.7.1 bad helo\x00"}},
		{"helo 421", map[byte]string{'H': "y421 4.7.0 bad helo\x00"}},
		{"mail reply", map[byte]string{'M': "y553 5.1.8 sender blocked\x00"}},
		{"mail discard", map[byte]string{'M': "d"}},
		{"rcpt reject", map[byte]string{'R': "r"}},
		{"rcpt tempfail", map[byte]string{'R': "t"}},
		{"data tempfail", map[byte]string{'T': "t"}},
		{"data reply", map[byte]string{'T': "y554 5.7.0 no data\x00"}},
		{"unknown command", map[byte]string{'U': "y502 5.5.1 no such thing\x00"}},
		{"header reject", map[byte]string{'L': "r"}},
		{"end of header tempfail", map[byte]string{'N': "t"}},
		{"body reply", map[byte]string{'B': "y552 5.3.4 too fat\x00"}},
		{"end of message multi-line", map[byte]string{'E': "y550-5.7.1 first line\r\n550 5.7.1 second line\x00"}},
		{"end of message percent", map[byte]string{'E': "y554 5.7.1 100%% spam, 50% sure\x00"}},
		{"end of message discard", map[byte]string{'E': "d"}},
		{"end of message accept", map[byte]string{'E': "a"}},
		{"malformed reply", map[byte]string{'M': "y250 2.0.0 fine\x00"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.script(c.replies)
			want := milterDialogue(t, pf.Addr)
			f.script(c.replies)
			got := milterDialogue(t, p.Addr)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("postgate:\n%s\nPostfix:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// modPacket is a modification packet: its code, then NUL-terminated
// strings, an index first where the request has one.
func modPacket(code byte, index int, strs ...string) string {
	b := []byte{code}
	if index >= 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(index))
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	return string(b)
}

// TestMilterModifications: the changes a milter asks for at the end of the
// message (headers added, inserted, changed and deleted, the body
// replaced, the sender changed, recipients added and deleted), as the
// message and envelope that reach the next hop show them; the same
// milter through a real Postfix 3.7 gives the same message. A second
// milter sees the first one's changes.
func TestMilterModifications(t *testing.T) {
	f := startScriptedMilter(t, &fakeMilter{})
	second := startScriptedMilter(t, &fakeMilter{})
	f.script(map[byte]string{'E': "a"},
		modPacket('h', -1, "X-Added", "yes"),
		modPacket('i', 1, "X-Inserted", "at 1"),
		modPacket('m', 1, "Subject", "changed\n\tand folded"),
		modPacket('m', 1, "X-Drop", ""),
		modPacket('b', -1, "new body\r\nline two\r\n")[:len("new body\r\nline two\r\n")+1],
		modPacket('e', -1, "<new@src.test>"),
		modPacket('+', -1, "<v@relay.test>"),
		modPacket('-', -1, "<u@relay.test>"),
	)
	sink, pfSink := harness.StartSink(t), harness.StartSink(t)
	p := harness.Start(t, milterConfig(sink, "inet:"+f.addr+", inet:"+second.addr), "")
	pf := postfixWithMilter(t, "inet:"+f.addr, pfSink)

	got := milterDialogue(t, p.Addr)
	if last := got[len(got)-1]; last != "end of DATA: 250 2.0.0 Ok: queued as ID" {
		t.Fatalf("postgate: %q", got)
	}
	if !slices.Contains(second.headersSeen(), "X-Added: yes") || slices.Contains(second.headersSeen(), "X-Drop: me") {
		t.Errorf("the second milter saw %q", second.headersSeen())
	}
	if pgot := milterDialogue(t, pf.Addr); pgot[len(pgot)-1] != got[len(got)-1] {
		t.Fatalf("Postfix: %q", pgot)
	}
	msgs, pfMsgs := sink.WaitMessages(1, 20*time.Second), pfSink.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 || len(pfMsgs) != 1 {
		t.Fatalf("delivered: postgate %d, Postfix %d", len(msgs), len(pfMsgs))
	}
	env, msg := harness.SinkBody(msgs[0])
	pfEnv, pfMsg := harness.SinkBody(pfMsgs[0])
	for _, want := range []string{"X-Mail-Args: <new@src.test>", "X-Rcpt-Args: <v@relay.test>"} {
		if !strings.Contains(env, want) || !strings.Contains(pfEnv, want) {
			t.Errorf("envelope lacks %q:\npostgate:\n%s\nPostfix:\n%s", want, env, pfEnv)
		}
	}
	if strings.Contains(env, "u@relay.test") {
		t.Errorf("deleted recipient still there:\n%s", env)
	}
	if !strings.Contains(msg, "\tfor <u@relay.test>;") {
		t.Errorf("our Received: does not name the recipient as received:\n%s", msg)
	}
	if a, b := withoutReceived(msg), withoutReceived(pfMsg); a != b {
		t.Errorf("postgate delivered:\n%s\nPostfix delivered:\n%s", a, b)
	}
}

func (f *fakeMilter) headersSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.headers)
}

// withoutReceived drops the Received: headers (the servers' own differ)
// from a message with LF line ends.
func withoutReceived(msg string) string {
	var out []string
	inReceived := false
	for _, l := range strings.SplitAfter(msg, "\n") {
		if l == "\n" || l == "" {
			inReceived = false
		} else if strings.HasPrefix(l, "Received:") {
			inReceived = true
			continue
		} else if inReceived && (l[0] == ' ' || l[0] == '\t') {
			continue
		}
		inReceived = false
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// macrosSeen returns the macros of the milter's longest session (the
// harness's probe makes short ones): "C j" (the event's code, the macro's
// name) to the value; and forgets all.
func (f *fakeMilter) macrosSeen() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]string
	for _, s := range f.macros {
		if len(s) > len(m) {
			m = s
		}
	}
	for i := range f.macros {
		f.macros[i] = map[string]string{}
	}
	return m
}

// TestMilterMacros: the macros each stage sends by default (Postfix 3.7's
// milter_*_macros) and their values, as Postfix sends them to the same
// milter; the values that name the server itself differ only in its name.
// A milter that asks for its own lists in negotiation gets those.
func TestMilterMacros(t *testing.T) {
	sink := harness.StartSink(t)
	f := startScriptedMilter(t, &fakeMilter{})
	// A default for a macro neither server has a value for.
	defaults := "milter_macro_defaults = {auth_type}=none\n"
	p := harness.Start(t, milterConfig(sink, "inet:"+f.addr)+defaults, "")
	pf := harness.StartPostfix(t, "smtpd_milters = inet:"+f.addr+"\nmynetworks = 127.0.0.0/8\nrelay_domains = relay.test\n"+
		routes("relay.test", sink)+defaults)
	f.script(nil)
	milterDialogue(t, pf.Addr)
	want := f.macrosSeen()
	milterDialogue(t, p.Addr)
	got := f.macrosSeen()
	server := map[string]bool{"j": true, "{daemon_name}": true, "v": true, "i": true}
	for k, v := range want {
		g, ok := got[k]
		_, name, _ := strings.Cut(k, " ")
		switch {
		case !ok:
			t.Errorf("postgate does not send %s (Postfix: %q)", k, v)
		case server[name] && (g == "") != (v == ""):
			t.Errorf("%s: postgate %q, Postfix %q", k, g, v)
		case !server[name] && g != v:
			t.Errorf("%s: postgate %q, Postfix %q", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("postgate sends %s = %q, Postfix does not", k, v)
		}
	}
	for k, v := range map[string]string{"C j": "mx.gateway.test", "C {daemon_name}": "mx.gateway.test", "M {mail_addr}": "a@src.test",
		"R {rcpt_addr}": "u@relay.test", "M {auth_type}": "none"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(got["C v"], "postgate ") || got["E i"] == "" || got["T i"] != got["E i"] {
		t.Errorf("v %q, i at DATA %q and at the end %q", got["C v"], got["T i"], got["E i"])
	}

	// A milter asking for {client_addr} at connect and {mail_addr} i at the
	// end of the message gets exactly those.
	asker := startScriptedMilter(t, &fakeMilter{symlist: "\x00\x00\x00\x00{client_addr}\x00\x00\x00\x00\x05{mail_addr} i\x00"})
	p2 := harness.Start(t, milterConfig(sink, "inet:"+asker.addr), "")
	milterDialogue(t, p2.Addr)
	seen := asker.macrosSeen()
	if seen["C {client_addr}"] != "127.0.0.5" || seen["E {mail_addr}"] != "a@src.test" || seen["E i"] == "" || seen["C j"] != "" {
		t.Errorf("a milter asking for its macros got %q", seen)
	}
}

// TestMilterQuarantineAndDiscard: a quarantine request at the end of the
// message sends it to the hold queue, its reason in the log; a discard,
// at MAIL or at the end, accepts the message and delivers nothing.
func TestMilterQuarantineAndDiscard(t *testing.T) {
	f := startScriptedMilter(t, &fakeMilter{})
	sink := harness.StartSink(t)
	p := harness.Start(t, milterConfig(sink, "inet:"+f.addr)+fastRetry, "")
	queued := func(dialogue []string) {
		t.Helper()
		if last := dialogue[len(dialogue)-1]; !strings.HasPrefix(last, "end of DATA: 250 2.0.0 Ok: queued as ") {
			t.Fatalf("not accepted: %q", dialogue)
		}
	}

	f.script(map[byte]string{'E': "c"}, modPacket('q', -1, "looks odd"))
	queued(milterDialogue(t, p.Addr))
	log := p.Log("milter-hold: END-OF-MESSAGE")
	held := regexp.MustCompile(`([0-9A-Z]+): milter-hold: END-OF-MESSAGE from unknown\[127\.0\.0\.5\]: milter triggers HOLD action \(quarantine: looks odd\); from=<a@src\.test> to=<u@relay\.test> proto=ESMTP helo=<client\.test>`).FindStringSubmatch(log)
	if held == nil {
		t.Fatalf("no milter-hold line:\n%s", log)
	}
	if q := queueJSON(t, p)[held[1]].QueueName; q != "hold" {
		t.Errorf("%s is in the %q queue, want hold", held[1], q)
	}

	f.script(map[byte]string{'M': "d"})
	queued(milterDialogue(t, p.Addr))
	want := "NOQUEUE: milter-discard: MAIL from unknown[127.0.0.5]: milter triggers DISCARD action; from=<a@src.test> proto=ESMTP helo=<client.test>"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if ev := f.events(); strings.Contains(ev, "R") || strings.Contains(ev, "E") {
		t.Errorf("the milter got events after its discard: %q", ev)
	}

	f.script(map[byte]string{'E': "d"})
	queued(milterDialogue(t, p.Addr))
	want = ": milter-discard: END-OF-MESSAGE from unknown[127.0.0.5]: milter triggers DISCARD action; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>"
	if log := p.Log(want); !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	time.Sleep(2 * time.Second) // a queue run
	if msgs := sink.Messages(); len(msgs) != 0 {
		t.Errorf("delivered: %q", msgs)
	}
	if n := len(queueJSON(t, p)); n != 1 {
		t.Errorf("%d messages in the queue, want the held one", n)
	}
}

// TestMilterHeaderChecks: milter_header_checks inspects the headers
// milters add or change, with header_checks' actions: IGNORE drops one,
// REJECT refuses the message, as Postfix does with the same table; the
// client's own headers are not looked at.
func TestMilterHeaderChecks(t *testing.T) {
	dir, err := os.MkdirTemp("", "postgate-mhc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // Postfix reads the table as user postfix
	table := writeFile(t, dir, "milter_header_checks", "/^X-Verdict: drop-me/ IGNORE\n/^X-Spam-Flag: YES/ REJECT 5.7.1 Spam, says the milter\n")
	f := startScriptedMilter(t, &fakeMilter{})
	sink, pfSink := harness.StartSink(t), harness.StartSink(t)
	p := harness.Start(t, milterConfig(sink, "inet:"+f.addr)+"milter_header_checks = regexp:"+table+"\n", "")
	pf := harness.StartPostfix(t, "smtpd_milters = inet:"+f.addr+"\nmynetworks = 127.0.0.0/8\nrelay_domains = relay.test\n"+
		routes("relay.test", pfSink)+"milter_header_checks = regexp:"+table+"\n")

	// The client's X-Drop: me would match a rule on it: it stays.
	f.script(nil, modPacket('h', -1, "X-Verdict", "drop-me"), modPacket('h', -1, "X-Keep", "yes"))
	got, want := milterDialogue(t, p.Addr), milterDialogue(t, pf.Addr)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("postgate:\n%s\nPostfix:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	msgs, pfMsgs := sink.WaitMessages(1, 20*time.Second), pfSink.WaitMessages(1, 20*time.Second)
	if len(msgs) != 1 || len(pfMsgs) != 1 {
		t.Fatalf("delivered: postgate %d, Postfix %d", len(msgs), len(pfMsgs))
	}
	_, msg := harness.SinkBody(msgs[0])
	_, pfMsg := harness.SinkBody(pfMsgs[0])
	if a, b := withoutReceived(msg), withoutReceived(pfMsg); a != b || strings.Contains(a, "X-Verdict") || !strings.Contains(a, "X-Keep: yes") {
		t.Errorf("postgate delivered:\n%s\nPostfix delivered:\n%s", a, b)
	}

	f.script(nil, modPacket('h', -1, "X-Spam-Flag", "YES"))
	got, want = milterDialogue(t, p.Addr), milterDialogue(t, pf.Addr)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !strings.HasSuffix(got[len(got)-1], "550 5.7.1 Spam, says the milter") {
		t.Errorf("postgate:\n%s\nPostfix:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantLog := ": reject: header X-Spam-Flag: YES from unknown[127.0.0.5]; from=<a@src.test> to=<u@relay.test> proto=ESMTP helo=<client.test>: 5.7.1 Spam, says the milter"
	if log := p.Log(wantLog); !strings.Contains(log, wantLog) {
		t.Errorf("log lacks %q:\n%s", wantLog, log)
	}
}

// TestMilterMaps: smtpd_milter_maps gives a client its own milter list, or
// none (DISABLE), in place of smtpd_milters.
func TestMilterMaps(t *testing.T) {
	refusing := startScriptedMilter(t, &fakeMilter{replies: map[byte]string{'M': "y550 5.7.1 refused by the default milter\x00"}})
	other := startScriptedMilter(t, &fakeMilter{replies: map[byte]string{'M': "y450 4.7.1 refused by the mapped milter\x00"}})
	sink := harness.StartSink(t)
	for _, c := range []struct {
		maps, mail string
	}{
		{"", "MAIL: 550 5.7.1 refused by the default milter"},
		{"inline:{ 127.0.0.9=DISABLE }", "MAIL: 550 5.7.1 refused by the default milter"},
		{"inline:{ 127.0.0.5=DISABLE }", "MAIL: 250 2.1.0 Ok"},
		{"inline:{ {127.0.0.5 = inet:" + other.addr + "} }", "MAIL: 450 4.7.1 refused by the mapped milter"},
	} {
		p := harness.Start(t, milterConfig(sink, "inet:"+refusing.addr)+"smtpd_milter_maps = "+c.maps+"\n", "")
		if got := milterDialogue(t, p.Addr); got[2] != c.mail {
			t.Errorf("smtpd_milter_maps = %s: %q, want %q", c.maps, got[2], c.mail)
		}
	}
}
