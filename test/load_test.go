package test

import (
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// Per-client limits, reserved slots, stress and per-request deadlines: a
// hostile client gets Postfix's answers and never locks out mynetworks.

const tooMany = "4.7.0 mx.gateway.test Error: too many connections from 127.0.0.5"

func TestConnectionCountLimit(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_client_connection_count_limit = 3\n", "")
	var held []*harness.Client
	for range 3 {
		held = append(held, harness.Dial(t, p.Addr, outside))
	}
	c := harness.DialRaw(t, p.Addr, outside)
	if code, text := c.Reply(); code != 421 || text != tooMany {
		t.Errorf("fourth connection: %d %s, want 421 %s", code, text, tooMany)
	}
	if !c.Closed() {
		t.Error("the refused connection was left open")
	}
	if log := p.Log("Connection concurrency limit exceeded"); !strings.Contains(log, "warning: Connection concurrency limit exceeded: 4 from unknown[127.0.0.5] for service 127.0.0.1:") {
		t.Errorf("no concurrency warning in the log:\n%s", log)
	}
	// mynetworks (smtpd_client_event_limit_exceptions) is never counted.
	for range 5 {
		harness.Dial(t, p.Addr, "127.0.0.1").Expect(250, "EHLO inside.test")
	}
	// A closed connection frees its count.
	held[0].Expect(221, "QUIT")
	dialWhenFree(t, p.Addr, outside).Expect(250, "EHLO client.src.test")
}

func TestConnectionRateLimit(t *testing.T) {
	t.Parallel()
	// The unit is long enough for three connections to fall in one window
	// even under make test's load, short enough to wait out below.
	p := harness.Start(t, rejectUnauth+"smtpd_client_connection_rate_limit = 2\nanvil_rate_time_unit = 10s\n", "")
	for range 2 {
		harness.Dial(t, p.Addr, outside).Expect(221, "QUIT")
	}
	c := harness.DialRaw(t, p.Addr, outside)
	if code, text := c.Reply(); code != 421 || text != tooMany {
		t.Errorf("third connection in a minute: %d %s, want 421 %s", code, text, tooMany)
	}
	if log := p.Log("Connection rate limit exceeded"); !strings.Contains(log, "warning: Connection rate limit exceeded: 3 from unknown[127.0.0.5]") {
		t.Errorf("no rate warning in the log:\n%s", log)
	}
	// Another address has its own count; mynetworks none.
	harness.Dial(t, p.Addr, "127.0.0.6").Expect(221, "QUIT")
	harness.Dial(t, p.Addr, "127.0.0.1").Expect(221, "QUIT")
	// The count starts again once anvil_rate_time_unit has passed.
	time.Sleep(10100 * time.Millisecond)
	harness.Dial(t, p.Addr, outside).Expect(221, "QUIT")

	// An explicit exception list replaces $mynetworks.
	q := harness.Start(t, rejectUnauth+"smtpd_client_connection_rate_limit = 1\nsmtpd_client_event_limit_exceptions = 127.0.0.5\n", "")
	for range 3 {
		harness.Dial(t, q.Addr, outside).Expect(221, "QUIT")
	}
	// 127.0.0.1 is counted now (the harness's readiness probe was its
	// first connection).
	c = harness.DialRaw(t, q.Addr, "127.0.0.1")
	if code, text := c.Reply(); code != 421 || text != "4.7.0 mx.gateway.test Error: too many connections from 127.0.0.1" {
		t.Errorf("127.0.0.1 outside the exceptions, second connection: %d %s, want 421", code, text)
	}
}

// TestOutsideFloodKeepsMynetworksServed: hundreds of idle connections
// from outside addresses fill what they may of the default 100 session
// slots; a client from mynetworks is still served, from the reserved
// ones.
func TestOutsideFloodKeepsMynetworksServed(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	accepted, refused := map[string]int{}, map[string]int{}
	for _, from := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.7"} {
		for range 150 {
			c := harness.DialRaw(t, p.Addr, from)
			code, text := c.Reply()
			switch {
			case code == 220:
				accepted[from]++
			case code == 421:
				refused[text]++
				c.Conn.Close()
			default:
				t.Fatalf("from %s: %d %s", from, code, text)
			}
		}
	}
	// 50 a client (smtpd_client_connection_count_limit), 90 in all (100
	// less the 10 reserved).
	if accepted["127.0.0.5"] != 50 || accepted["127.0.0.6"] != 40 || accepted["127.0.0.7"] != 0 {
		t.Errorf("sessions taken per outside client: %v, want 50, 40, 0", accepted)
	}
	if refused["4.3.2 All server ports are busy"] == 0 || refused["4.7.0 mx.gateway.test Error: too many connections from 127.0.0.5"] == 0 {
		t.Errorf("refusals: %v", refused)
	}
	c := harness.Dial(t, p.Addr, "127.0.0.1")
	c.Expect(250, "EHLO inside.test")
	c.Expect(250, "MAIL FROM:<a@gateway.test>")
	c.Expect(250, "RCPT TO:<u@relay.test>")
	c.Expect(354, "DATA")
	c.Send("Subject: served\r\n\r\nx\r\n.\r\n")
	if code, text := c.Reply(); code != 250 {
		t.Errorf("mynetworks client during the flood: %d %s", code, text)
	}
}

// TestStressCutsIdleSessions: when a service nears its process limit it
// comes under stress, logs it once, and the ${stress?...} settings apply,
// to sessions already idling too.
func TestStressCutsIdleSessions(t *testing.T) {
	t.Parallel()
	// maxproc 10: 1 slot reserved, stress at 7 sessions.
	p := harness.Start(t, rejectUnauth+"smtpd_timeout = ${stress?{2}:{300}}s\n", "127.0.0.1:PORT inet n - n - 10 smtpd\n")
	var idle []*harness.Client
	for range 6 {
		idle = append(idle, dialWhenFree(t, p.Addr, outside))
	}
	if log := p.Log(""); strings.Contains(log, "stress-dependent settings apply") {
		t.Fatalf("stress before the threshold:\n%s", log)
	}
	idle = append(idle, dialWhenFree(t, p.Addr, outside))
	log := p.Log("stress-dependent settings apply")
	if n := strings.Count(log, "stress-dependent settings apply"); n != 1 {
		t.Errorf("stress logged %d times, want once:\n%s", n, log)
	}
	for i, c := range idle {
		if code, text := c.Reply(); code != 421 || text != "4.4.2 mx.gateway.test Error: timeout exceeded" {
			t.Errorf("idle session %d under stress: %d %s, want 421 4.4.2 timeout", i, code, text)
		}
	}
	if log := p.Log("timeout after CONNECT"); strings.Count(log, "timeout after CONNECT from unknown[127.0.0.5]") != len(idle) {
		t.Errorf("want %d timeout lines:\n%s", len(idle), log)
	}
}

// TestPerRequestDeadline: with smtpd_per_request_deadline, smtpd_timeout
// bounds the whole content, which earns a second per smtpd_min_data_rate
// bytes (TestTimeouts shows the per-read default: a trickle lives on).
func TestPerRequestDeadline(t *testing.T) {
	t.Parallel()
	const base = "smtpd_timeout = 2s\n"
	cases := []struct {
		name, main string
		chunk      int           // bytes per write
		every      time.Duration // between writes
		cut        bool
	}{
		{"trickle, deadline", "smtpd_per_request_deadline = yes\n", 1, 250 * time.Millisecond, true},
		{"steady, deadline", "smtpd_per_request_deadline = yes\n", 1000, 100 * time.Millisecond, false},
		{"steady, deadline, high min rate", "smtpd_per_request_deadline = yes\nsmtpd_min_data_rate = 1000000\n", 1000, 100 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := harness.Start(t, rejectUnauth+base+tc.main, "")
			c := harness.Dial(t, p.Addr, outside)
			c.Expect(250, "EHLO client.src.test")
			c.Expect(250, "MAIL FROM:<a@src.test>")
			c.Expect(250, "RCPT TO:<u@relay.test>")
			c.Expect(354, "DATA")
			c.Send("Subject: slow\r\n\r\n")
			// 4 s of content: twice smtpd_timeout.
			chunk := strings.Repeat("x", tc.chunk-1) + "\n"
			if tc.chunk == 1 {
				chunk = "x"
			}
			cutAt := time.Duration(0)
			start := time.Now()
			for time.Since(start) < 4*time.Second {
				if _, err := c.Conn.Write([]byte(chunk)); err != nil {
					cutAt = time.Since(start)
					break
				}
				time.Sleep(tc.every)
			}
			if cutAt == 0 {
				c.Conn.Write([]byte("\r\n.\r\n"))
			}
			code, text := c.Reply()
			if tc.cut {
				if code != 421 || text != "4.4.2 mx.gateway.test Error: timeout exceeded" {
					t.Errorf("got %d %s, want 421 4.4.2 timeout", code, text)
				}
				if log := p.Log("timeout after DATA"); !strings.Contains(log, "timeout after DATA (") {
					t.Errorf("no timeout line in the log:\n%s", log)
				}
			} else if code != 250 {
				t.Errorf("got %d %s, want 250 (written for %v)", code, text, cutAt)
			}
		})
	}
}

func TestClientPortLogging(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth+"smtpd_client_port_logging = yes\n", "")
	c := harness.Dial(t, p.Addr, outside)
	c.Expect(221, "QUIT")
	local := c.Conn.LocalAddr().String() // 127.0.0.5:PORT
	client := "unknown[" + strings.Replace(local, ":", "]:", 1)
	// The disconnect line comes last: wait for it.
	if log := p.Log("disconnect from " + client); !strings.Contains(log, "connect from "+client+"\n") || !strings.Contains(log, "disconnect from "+client+" quit=1") {
		t.Errorf("no client port in the log, want %q:\n%s", client, log)
	}
}
