// End-to-end tests of durable receive: the built binary on loopback ports,
// driven by swaks, go-smtp's client and a raw client.
package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"postgate/test/harness"
)

// outside is a client address outside mynetworks. (127.0.0.2 is the
// standard "listed" address of DNS lists, so it is not used.)
const outside = "127.0.0.5"

// rejectUnauth lists reject_unauth_destination where it decides: the relay
// list runs before the recipient list, so Postfix's default relay list
// (defer_unauth_destination) would answer 454 first.
const rejectUnauth = "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"

// testBody builds a message with the lines that break naive relays: a
// leading dot, 8-bit text, a 998-character line, a 10 KiB line, and more
// than 64 KiB in all. Lines end in CRLF.
func testBody(msgid string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <a@src.test>\r\nTo: <u@relay.test>\r\nSubject: e2e\r\nMessage-ID: <%s>\r\n\r\n", msgid)
	b.WriteString(".leading dot line\r\n")
	b.WriteString("..two leading dots\r\n")
	b.WriteString(".\tdot and tab\r\n")
	b.WriteString("8-bit: caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac\r\n")
	b.WriteString(strings.Repeat("x", 998) + "\r\n")
	b.WriteString(strings.Repeat("0123456789", 1024) + "\r\n")
	for i := 0; b.Len() < 70<<10; i++ {
		fmt.Fprintf(&b, "filler line %05d abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", i)
	}
	b.WriteString("last line\r\n")
	return b.Bytes()
}

var queuedRe = regexp.MustCompile(`Ok: (?:[0-9]+ bytes )?queued as ([0-9A-Za-z]+)`)

// stripReceived removes postgate's Received: header (the first header,
// with its continuation lines) from stored content.
func stripReceived(t *testing.T, stored []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(stored, []byte("Received: from ")) {
		t.Fatalf("stored message does not start with postgate's Received: header: %q", head(stored))
	}
	rest := stored
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		rest = rest[i+2:]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
			return rest
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}

type jsonMsg struct {
	QueueName  string `json:"queue_name"`
	QueueID    string `json:"queue_id"`
	Size       int64  `json:"message_size"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Address string `json:"address"`
	} `json:"recipients"`
}

func queueJSON(t *testing.T, p *harness.Postgate) map[string]jsonMsg {
	t.Helper()
	out, err := p.Run("queue", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[string]jsonMsg{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m jsonMsg
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("queue list --json: %v in %q", err, line)
		}
		msgs[m.QueueID] = m
	}
	return msgs
}

func showRaw(t *testing.T, p *harness.Postgate, id string) []byte {
	t.Helper()
	out, err := p.Run("queue", "show", "--raw", id)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// sendGoSMTP sends with go-smtp's client from an outside address and
// returns the queue ID from the final reply.
func sendGoSMTP(t *testing.T, addr, from, to string, body []byte) string {
	t.Helper()
	id, err := trySend(addr, from, to, body)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// trySend is sendGoSMTP for goroutines, which may not call t.Fatal.
func trySend(addr, from, to string, body []byte) (string, error) {
	return trySendFrom(outside, addr, from, to, body)
}

// trySendFrom is trySend from local address src.
func trySendFrom(src, addr, from, to string, body []byte) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	c := smtp.NewClient(nc)
	defer c.Close()
	if err := c.Hello("client.src.test"); err != nil {
		return "", err
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(body); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	m := queuedRe.FindStringSubmatch(resp.StatusText)
	if m == nil {
		return "", fmt.Errorf("final reply %q has no queue ID", resp.StatusText)
	}
	c.Quit()
	return m[1], nil
}

// outsideTxn opens a session from an outside client with one accepted
// recipient in the relay domain: where most tests start.
func outsideTxn(t *testing.T, addr string) *harness.Client {
	t.Helper()
	c := harness.Dial(t, addr, outside)
	c.Expect(250, "EHLO client.src.test")
	c.Expect(250, "MAIL FROM:<a@src.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	return c
}

// sendContent sends payload with BDAT, or with DATA and the end-of-data
// line (payload already dot-stuffed as the test wants it).
func sendContent(c *harness.Client, payload string, bdat bool) {
	if bdat {
		c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(payload), payload))
		return
	}
	c.Expect(354, "DATA")
	c.Send(payload + ".\r\n")
}

func TestRelayDomainStoredIntact(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	body := testBody("gosmtp-1@src.test")
	id := sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", body)

	msgs := queueJSON(t, p)
	m, ok := msgs[id]
	if !ok {
		t.Fatalf("queue list --json does not list %s: %v", id, msgs)
	}
	if m.Sender != "a@src.test" || len(m.Recipients) != 1 || m.Recipients[0].Address != "u@relay.test" {
		t.Errorf("queue list --json: sender %q recipients %+v", m.Sender, m.Recipients)
	}
	stored := showRaw(t, p, id)
	if m.Size != int64(len(stored)) {
		t.Errorf("message_size %d, stored %d bytes", m.Size, len(stored))
	}
	if got := stripReceived(t, stored); !bytes.Equal(got, body) {
		t.Errorf("stored content differs from the sent message (%d vs %d bytes)", len(got), len(body))
	}
	rcv := string(stored[:bytes.Index(stored, []byte("\r\n\tfor"))])
	if want := fmt.Sprintf("Received: from client.src.test (unknown [%s])\r\n\tby mx.gateway.test (postgate) with ESMTP id %s", outside, id); rcv != want {
		t.Errorf("Received header:\n got %q\nwant %q", rcv, want)
	}

	log := p.Log("nrcpt=1 (queue active)")
	for _, want := range []string{
		"postgate/smtpd[", "connect from unknown[" + outside + "]",
		id + ": client=unknown[" + outside + "]",
		"postgate/cleanup[", id + ": message-id=<gosmtp-1@src.test>",
		"postgate/qmgr[", fmt.Sprintf("%s: from=<a@src.test>, size=%d, nrcpt=1 (queue active)", id, len(stored)),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
	log = p.Log("disconnect from")
	if !strings.Contains(log, "disconnect from unknown["+outside+"] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5") {
		t.Errorf("maillog lacks the disconnect statistics:\n%s", log)
	}
}

func TestSwaksStoredIntact(t *testing.T) {
	t.Parallel()
	swaks := harness.Need(t, "swaks", "swaks")
	p := harness.Start(t, rejectUnauth, "")
	body := testBody("swaks-1@src.test")
	// swaks sends --data as given with --no-data-fixup: dot-stuff it and add
	// the end-of-data line ourselves.
	stuffed := bytes.ReplaceAll(body, []byte("\r\n."), []byte("\r\n.."))
	file := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(file, append(stuffed, ".\r\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(swaks, "--server", p.Addr, "--local-interface", outside,
		"--from", "a@src.test", "--to", "u@relay.test", "--helo", "swaks.src.test",
		"--data", "@"+file, "--no-data-fixup").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	m := queuedRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("swaks got no queue ID:\n%s", out)
	}
	if got := stripReceived(t, showRaw(t, p, m[1])); !bytes.Equal(got, body) {
		i := 0
		for i < len(got) && i < len(body) && got[i] == body[i] {
			i++
		}
		t.Errorf("stored content differs from the sent message at byte %d (%d vs %d bytes)", i, len(got), len(body))
	}
}

func TestBareLFStoredAsCRLF(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	c := outsideTxn(t, p.Addr)
	c.Expect(354, "DATA")
	c.Send("Subject: bare\n\nline one\nline two\r\nline three\n\r\n.\r\n")
	code, text := c.Reply()
	if code != 250 {
		t.Fatalf("DATA with bare LF: %d %s", code, text)
	}
	id := queuedRe.FindStringSubmatch(text)[1]
	stored := showRaw(t, p, id)
	if bytes.Contains(bytes.ReplaceAll(stored, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("stored copy has a bare LF: %q", stored)
	}
	if got, want := stripReceived(t, stored), "Subject: bare\r\n\r\nline one\r\nline two\r\nline three\r\n\r\n"; string(got) != want {
		t.Errorf("stored %q, want %q", got, want)
	}
}

func TestRelayAccessDenied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, main, want string
	}{
		{"reject_unauth_destination", rejectUnauth, "554 5.7.1 <user@foreign.test>: Relay access denied"},
		{"postfix default lists", "", "454 4.7.1 <user@foreign.test>: Relay access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := harness.Start(t, tc.main, "")
			c := harness.Dial(t, p.Addr, outside)
			c.Expect(250, "EHLO client.src.test")
			c.Expect(250, "MAIL FROM:<a@src.test>")
			code, text := c.Cmd("RCPT TO:<user@foreign.test>")
			if got := fmt.Sprintf("%d %s", code, text); got != tc.want {
				t.Errorf("foreign recipient: %q, want %q", got, tc.want)
			}
			c.Expect(250, "RCPT TO:<u@relay.test>")
			c.Expect(221, "QUIT")
			log := p.Log("disconnect from")
			want := "NOQUEUE: reject: RCPT from unknown[" + outside + "]: " + tc.want + "; from=<a@src.test> to=<user@foreign.test> proto=ESMTP helo=<client.src.test>"
			if !strings.Contains(log, want) {
				t.Errorf("maillog lacks %q:\n%s", want, log)
			}
			if !strings.Contains(log, "ehlo=1 mail=1 rcpt=1/2 quit=1 commands=4/5") {
				t.Errorf("maillog lacks the disconnect statistics:\n%s", log)
			}
			// A client in mynetworks may relay.
			in := harness.Dial(t, p.Addr, "127.0.0.1")
			in.Expect(250, "EHLO inside.test")
			in.Expect(250, "MAIL FROM:<a@inside.test>")
			in.Expect(250, "RCPT TO:<user@foreign.test>")
		})
	}
}

func TestOpenRelayConfigRefused(t *testing.T) {
	t.Parallel()
	dir, _ := harness.Config(t, "smtpd_relay_restrictions = permit\nsmtpd_recipient_restrictions = permit_mynetworks\n", "")
	out, err := exec.Command(harness.Binary(t), "serve", "-c", dir).CombinedOutput()
	if err == nil {
		t.Fatalf("postgate started with a config that cannot refuse relaying:\n%s", out)
	}
	if want := "specify at least one working instance of: reject_unauth_destination"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
