package bench

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postgate/greylist/redistest"
	"postgate/test/harness"
)

var cmdstatRe = regexp.MustCompile(`(?m)^cmdstat_([a-z|]+):calls=(\d+)`)

// greylistScript are the commands the greylist script runs; postgate
// never sends them itself (greylist/redis.go), so the other commands
// Redis counts are what postgate sent: its round trips.
var greylistScript = map[string]bool{"get": true, "set": true, "incr": true, "pexpire": true}

// redisCalls counts the commands Redis has run (INFO aside): those
// postgate sent (not in inScript), and all of them, the scripts' included.
func redisCalls(b *testing.B, r *redistest.Server, inScript map[string]bool) (sent, all int) {
	out, err := r.CLI("info", "commandstats")
	if err != nil {
		b.Fatalf("INFO commandstats: %v %s", err, out)
	}
	for _, m := range cmdstatRe.FindAllStringSubmatch(out, -1) {
		if m[1] == "info" {
			continue
		}
		c, _ := strconv.Atoi(m[2])
		all += c
		if !inScript[m[1]] {
			sent += c
		}
	}
	return sent, all
}

// BenchmarkGreylistSessions: 50 concurrent SMTP sessions each repeat
// MAIL, RCPT (a new triplet: check_greylist answers 450) and RSET against
// postgate with its state in a local redis-server. Reports greylist
// checks (RCPTs) per second, the commands postgate sent to Redis per
// check (its round trips) and all the commands Redis ran per check (the
// script's own included), counted by Redis itself.
//
//	go test -run '^$' -bench GreylistSessions -benchtime 1x ./test/bench
func BenchmarkGreylistSessions(b *testing.B) {
	r := redistest.Start(b)
	p := harness.Start(b, fmt.Sprintf(`smtpd_recipient_restrictions = reject_unauth_destination, check_greylist
postgate_state_store = redis://%s
smtpd_client_connection_count_limit = 0
smtpd_soft_error_limit = 1000000
smtpd_hard_error_limit = 1000000
smtpd_error_sleep_time = 0
`, r.Addr), "")
	for i := 0; i < b.N; i++ {
		sessionChecks(b, p, r, greylistScript, func(s int) string { return "127.0.0.5" }, 1,
			func(c *harness.Client, s, j int) bool {
				c.Expect(250, "MAIL FROM:<s%d@src.test>", s)
				if code, text := c.Cmd("RCPT TO:<u%d.%d.%d@relay.test>", i, s, j); code != 450 {
					b.Errorf("RCPT: %d %s", code, text)
					return false
				}
				c.Expect(250, "RSET")
				return true
			})
	}
}

// sessionChecks runs 50 concurrent sessions against p, from the address
// from(session), each repeating round 400 times (each round makes checks
// checks; false ends the session), and reports the checks per second,
// the commands postgate sent to Redis per check (its round trips: those
// not in inScript) and all the commands Redis ran per check.
func sessionChecks(b *testing.B, p *harness.Postgate, r *redistest.Server, inScript map[string]bool,
	from func(s int) string, checks int, round func(c *harness.Client, s, j int) bool) {
	const sessions, perSession = 50, 400
	sent0, all0 := redisCalls(b, r, inScript)
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := harness.Dial(b, p.Addr, from(s))
			defer c.Conn.Close()
			c.Expect(250, "EHLO client.test")
			for j := range perSession {
				if !round(c, s, j) {
					return
				}
				done.Add(int64(checks))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	n := done.Load()
	b.ReportMetric(float64(n)/el.Seconds(), "checks/s")
	sent, all := redisCalls(b, r, inScript)
	b.ReportMetric(float64(sent-sent0)/float64(n), "roundtrips/check")
	b.ReportMetric(float64(all-all0)/float64(n), "rediscmds/check")
}

// limitScript are the commands the limit scripts run (greylist/limit_redis.go).
var limitScript = map[string]bool{"time": true, "llen": true, "lindex": true, "lpush": true, "ltrim": true, "pexpire": true}

// BenchmarkRateSessions: 50 concurrent SMTP sessions each repeat MAIL
// (smtpd_client_message_rate_limit), RCPT (smtpd_client_recipient_rate_limit)
// and RSET against postgate with its counters in a local redis-server,
// from 50 client addresses, under limits they never reach. Reports
// rate-limit checks per second and the commands postgate sent to Redis
// per check (its round trips), counted by Redis itself.
//
//	go test -run '^$' -bench RateSessions -benchtime 1x ./test/bench
func BenchmarkRateSessions(b *testing.B) {
	r := redistest.Start(b)
	p := harness.Start(b, fmt.Sprintf(`postgate_state_store = redis://%s
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 1000000
smtpd_client_recipient_rate_limit = 1000000
smtpd_soft_error_limit = 1000000
smtpd_hard_error_limit = 1000000
smtpd_junk_command_limit = 1000000
`, r.Addr), "")
	for range b.N {
		sessionChecks(b, p, r, limitScript, func(s int) string { return fmt.Sprintf("127.0.1.%d", s+1) }, 2,
			func(c *harness.Client, s, j int) bool {
				c.Expect(250, "MAIL FROM:<s%d@src.test>", s)
				c.Expect(250, "RCPT TO:<u%d@relay.test>", j)
				c.Expect(250, "RSET")
				return true
			})
	}
}
