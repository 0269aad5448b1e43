package gateway

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a mail log the fuzz target can read while the gateway
// writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FuzzSMTPSession drives whole sessions through the real listener with
// random command and content bytes: the client sends its bytes, closes its
// side, and reads until the server hangs up. The server must neither panic
// (go-smtp would turn a panic into a 421 and a log line, which this target
// looks for) nor hang. Errors cost no sleep and the timeout is short, so
// each input ends quickly.
func FuzzSMTPSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@relay.test>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.test> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<u@relay.test> NOTIFY=SUCCESS ORCPT=rfc822;u+40relay.test\r\nBDAT 5\r\nabcdeBDAT 0 LAST\r\n",
		"HELO x\r\nMAIL FROM:<\"a\\\" b\"@[1.2.3.4]>\r\nRCPT TO:<@r1,@r2:u@relay.test>\r\nRSET\r\nVRFY u\r\nETRN relay.test\r\nHELP\r\nNOOP\r\n",
		"MAIL FROM:<a\x00b@x>\r\nRCPT TO:<u@relay.test\r\nXCLIENT ADDR=1.2.3.4\r\nXFORWARD NAME=x\r\nGET / HTTP/1.0\r\n",
		"EHLO x\nMAIL FROM:<a@b>\nBDAT 100 LAST\r\nshort",
		"\xff\xfe\r\n\r\n<<<<>>>>\r\nMAIL FROM:(((\r\nDATA\r\n.\r\n",
	} {
		f.Add([]byte(seed))
	}
	log := &lockedBuffer{}
	addr := startGateway(f, "smtpd_error_sleep_time = 0\nsmtpd_timeout = 2s\nsmtpd_forbid_unauth_pipelining = no\n"+
		"smtpd_authorized_xclient_hosts = 127.0.0.1\nsmtpd_authorized_xforward_hosts = 127.0.0.1\n"+
		"smtpd_end_of_data_restrictions = reject_unauth_pipelining\nmessage_size_limit = 100000\n",
		Options{LogOutput: log})
	f.Fuzz(func(t *testing.T, input []byte) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(input); err == nil {
			c.(*net.TCPConn).CloseWrite()
		}
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Fatalf("server did not end the session within 10 s")
		}
		if s := log.String(); strings.Contains(s, "panic serving") {
			t.Fatalf("server panicked:\n%s", s)
		}
	})
}
