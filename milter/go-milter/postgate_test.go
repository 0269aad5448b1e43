package milter

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"reflect"
	"testing"
	"time"
)

// The tests of postgate's changes (POSTGATE.md) drive the client against a
// milter written packet by packet, so that what goes over the wire is
// what is checked.

// pipeDialer hands the client one end of a pipe.
type pipeDialer struct{ conn net.Conn }

func (d pipeDialer) Dial(network, addr string) (net.Conn, error) { return d.conn, nil }

// rawMilter answers option negotiation with its version, masks and extra
// bytes (the macro lists of protocol 6), then runs script.
func rawMilter(t *testing.T, opts ClientOptions, negExtra []byte, protoMask OptProtocol, script func(conn net.Conn)) *ClientSession {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		msg, err := readPacket(server, time.Second)
		if err != nil || Code(msg.Code) != CodeOptNeg {
			t.Errorf("optneg: %v %v", msg, err)
			return
		}
		data := make([]byte, 12)
		binary.BigEndian.PutUint32(data, 6)
		binary.BigEndian.PutUint32(data[4:], uint32(OptAddHeader|OptSetSymList))
		binary.BigEndian.PutUint32(data[8:], uint32(protoMask))
		if err := writePacket(server, &Message{Code: byte(CodeOptNeg), Data: append(data, negExtra...)}, time.Second); err != nil {
			t.Errorf("optneg reply: %v", err)
			return
		}
		script(server)
	}()
	opts.Dialer = pipeDialer{client}
	s, err := NewClientWithOptions("tcp", "pipe", opts).Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-done })
	return s
}

// expect reads one packet and checks its code and data.
func expect(t *testing.T, conn net.Conn, code Code, data string) {
	t.Helper()
	msg, err := readPacket(conn, time.Second)
	if err != nil {
		t.Errorf("read %c: %v", code, err)
		return
	}
	if Code(msg.Code) != code || string(msg.Data) != data {
		t.Errorf("got %c %q, want %c %q", msg.Code, msg.Data, code, data)
	}
}

func answer(t *testing.T, conn net.Conn, msg *Message) {
	t.Helper()
	if err := writePacket(conn, msg, time.Second); err != nil {
		t.Error(err)
	}
}

func TestClientSession_DataAndUnknown(t *testing.T) {
	s := rawMilter(t, ClientOptions{}, nil, 0, func(conn net.Conn) {
		expect(t, conn, CodeMacro, "Ti\x00ABC123\x00")
		expect(t, conn, CodeData, "")
		answer(t, conn, &Message{Code: byte(ActReplyCode), Data: []byte("451 4.7.1 not now\x00")})
		expect(t, conn, CodeUnknown, "XFOO bar\x00")
		answer(t, conn, &Message{Code: byte(ActReject)})
	})
	if err := s.Macros(CodeData, "i", "ABC123"); err != nil {
		t.Fatal(err)
	}
	act, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	if act.Code != ActReplyCode || act.SMTPCode != 451 || act.SMTPText != "4.7.1 not now" {
		t.Errorf("Data: %+v", act)
	}
	act, err = s.Unknown("XFOO bar")
	if err != nil {
		t.Fatal(err)
	}
	if act.Code != ActReject {
		t.Errorf("Unknown: %+v", act)
	}
}

func TestClientSession_DataAndUnknownSkipped(t *testing.T) {
	// A milter that asked for neither event gets no packet: the next one
	// it reads is the HELO.
	s := rawMilter(t, ClientOptions{}, nil, OptNoData|OptNoUnknown, func(conn net.Conn) {
		expect(t, conn, CodeHelo, "mx.example\x00")
		answer(t, conn, &Message{Code: byte(ActContinue)})
	})
	for _, f := range []func() (*Action, error){s.Data, func() (*Action, error) { return s.Unknown("XFOO") }, func() (*Action, error) { return s.Helo("mx.example") }} {
		act, err := f()
		if err != nil || act.Code != ActContinue {
			t.Errorf("got %+v, %v", act, err)
		}
	}
}

func TestClientSession_SetReadTimeout(t *testing.T) {
	// Negotiation has a second; the content stage gets 50 ms, and a
	// milter that does not answer runs into it.
	stop := make(chan struct{})
	s := rawMilter(t, ClientOptions{ReadTimeout: time.Second}, nil, 0, func(conn net.Conn) {
		expect(t, conn, CodeEOH, "")
		<-stop
	})
	defer close(stop)
	s.SetReadTimeout(50 * time.Millisecond)
	start := time.Now()
	_, err := s.HeaderEnd()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("HeaderEnd: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the timeout came after %v", d)
	}
}

func TestClientSession_RequestedMacros(t *testing.T) {
	var extra []byte
	for _, l := range []struct {
		stage Stage
		names string
	}{{StageConnect, "j {daemon_name}"}, {StageEOM, "i {auth_authen}  {mail_addr}"}, {StageData, ""}} {
		extra = binary.BigEndian.AppendUint32(extra, uint32(l.stage))
		extra = append(append(extra, l.names...), 0)
	}
	s := rawMilter(t, ClientOptions{ActionMask: OptAddHeader | OptSetSymList}, extra, 0, func(net.Conn) {})
	for _, c := range []struct {
		stage Stage
		names []string
		ok    bool
	}{
		{StageConnect, []string{"j", "{daemon_name}"}, true},
		{StageEOM, []string{"i", "{auth_authen}", "{mail_addr}"}, true},
		{StageData, []string{}, true},
		{StageHelo, nil, false},
	} {
		names, ok := s.RequestedMacros(c.stage)
		if ok != c.ok || !reflect.DeepEqual(names, c.names) {
			t.Errorf("stage %d: got %q %v, want %q %v", c.stage, names, ok, c.names, c.ok)
		}
	}
}

func TestParseMacroLists_Malformed(t *testing.T) {
	for _, data := range []string{"\x00\x00", "\x00\x00\x00\x01i j"} {
		if _, err := parseMacroLists([]byte(data)); err == nil {
			t.Errorf("%q: no error", data)
		}
	}
}
