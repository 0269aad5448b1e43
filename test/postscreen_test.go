package test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

// debianPostscreen is Debian's master.cf with its commented postscreen
// example turned on (the smtp line swapped for postscreen, the smtpd pass,
// dnsblog and tlsproxy lines uncommented), on a loopback port.
const debianPostscreen = `# ==========================================================================
# service type  private unpriv  chroot  wakeup  maxproc command + args
#               (yes)   (yes)   (no)    (never) (100)
# ==========================================================================
127.0.0.1:PORT      inet  n       -       y       -       1       postscreen
smtpd     pass  -       -       y       -       -       smtpd
dnsblog   unix  -       -       y       -       0       dnsblog
tlsproxy  unix  -       -       y       -       0       tlsproxy
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
smtp      unix  -       -       y       -       -       smtp
`

// psConn is a client that reads the server's lines one at a time, to see
// postscreen's "220-" teaser apart from smtpd's "220 " greeting.
type psConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func psDial(t *testing.T, addr, from string) *psConn {
	t.Helper()
	c := harness.DialRaw(t, addr, from)
	return &psConn{t: t, nc: c.Conn, r: bufio.NewReader(c.Conn)}
}

// line reads one line; "" at EOF.
func (c *psConn) line() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil && l == "" {
		return ""
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *psConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends a command and returns the last line of its reply.
func (c *psConn) cmd(s string) string {
	c.t.Helper()
	c.send(s + "\r\n")
	for {
		l := c.line()
		if len(l) < 4 || l[3] == ' ' {
			return l
		}
	}
}

// port is the client port of the connection, as postscreen logs it.
func (c *psConn) port() int { return c.nc.LocalAddr().(*net.TCPAddr).Port }

// TestPostscreenMasterCf: Debian's postscreen master.cf loads as one
// listener on the postscreen line's address, with no word about dnsblog
// and tlsproxy; a client that talks before the greeting ends is dropped
// with Postfix's reply and log line; an allowlisted client is not tested
// (no teaser, no wait); a client that passed is "PASS NEW", then skips the
// tests as "PASS OLD".
func TestPostscreenMasterCf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	acl := filepath.Join(dir, "postscreen_access.cidr")
	os.WriteFile(acl, []byte("127.0.0.7/32 permit\n127.0.0.9/32 reject\n"), 0o644)
	p := harness.Start(t, fmt.Sprintf(`smtpd_peername_lookup = no
postscreen_access_list = permit_mynetworks, cidr:%s
postscreen_greet_action = drop
postscreen_blacklist_action = drop
postscreen_greet_wait = 2s
postscreen_greet_ttl = 4s
`, acl), debianPostscreen)

	// check loads it and says only what it skips that postgate does not
	// run at all (pickup, cleanup, qmgr, smtp), not dnsblog or tlsproxy.
	out, err := exec.Command(harness.Binary(t), "check", "-c", p.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, bad := range []string{"no inet service", "dnsblog", "tlsproxy", "not implemented", "error"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("check says %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(string(out), "skipped 4 Postfix internal services (unix)") {
		t.Errorf("check does not count the skipped services:\n%s", out)
	}

	// The pregreet client: EHLO before the final 220 line.
	c := psDial(t, p.Addr, "127.0.0.5")
	if l := c.line(); l != "220-mx.gateway.test ESMTP postgate" {
		t.Fatalf("teaser: %q", l)
	}
	c.send("EHLO client.src.test\r\n")
	if l := c.line(); l != "521 5.5.1 Protocol error" {
		t.Errorf("pregreet client: %q, want 521 5.5.1 Protocol error", l)
	}
	if l := c.line(); l != "" {
		t.Errorf("pregreet client not disconnected: %q", l)
	}
	pre := c.port()

	// A denylisted client.
	c = psDial(t, p.Addr, "127.0.0.9")
	if l := c.line(); l != "521 5.3.2 Service currently unavailable" {
		t.Errorf("denylisted client: %q", l)
	}
	deny := c.port()

	// The allowlisted client: smtpd's greeting at once.
	start := time.Now()
	c = psDial(t, p.Addr, "127.0.0.7")
	if l := c.line(); l != "220 mx.gateway.test ESMTP postgate" {
		t.Errorf("allowlisted client: %q", l)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("allowlisted client waited %v", d)
	}
	if l := c.cmd("EHLO client.src.test"); !strings.HasPrefix(l, "250 ") {
		t.Errorf("allowlisted EHLO: %q", l)
	}
	allow := c.port()

	// A good client waits the greet wait, then gets smtpd's greeting
	// after the teaser; the next time it skips the tests.
	start = time.Now()
	c = psDial(t, p.Addr, "127.0.0.8")
	if l := c.line(); l != "220-mx.gateway.test ESMTP postgate" {
		t.Fatalf("teaser: %q", l)
	}
	if l := c.line(); l != "220 mx.gateway.test ESMTP postgate" {
		t.Errorf("greeting after the teaser: %q", l)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("greeting after %v, before postscreen_greet_wait", d)
	}
	if l := c.cmd("EHLO client.src.test"); !strings.HasPrefix(l, "250 ") {
		t.Errorf("EHLO after the tests: %q", l)
	}
	c.cmd("QUIT")
	newPort := c.port()
	start = time.Now()
	c = psDial(t, p.Addr, "127.0.0.8")
	if l := c.line(); l != "220 mx.gateway.test ESMTP postgate" {
		t.Errorf("returning client: %q", l)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returning client waited %v", d)
	}
	oldPort := c.port()
	// Past postscreen_greet_ttl it is tested again.
	time.Sleep(time.Until(start.Add(4100 * time.Millisecond)))
	c = psDial(t, p.Addr, "127.0.0.8")
	if l := c.line(); l != "220-mx.gateway.test ESMTP postgate" {
		t.Errorf("returning client past postscreen_greet_ttl: %q", l)
	}
	c.line()
	againPort := c.port()

	log := p.Log(fmt.Sprintf("PASS OLD [127.0.0.8]:%d", againPort))
	for _, want := range []string{
		fmt.Sprintf(`postgate/postscreen\[\d+\]: CONNECT from \[127.0.0.5\]:%d to \[127.0.0.1\]:%d`, pre, p.Port),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: PREGREET 22 after [0-9.]+ from \[127.0.0.5\]:%d: EHLO client.src.test\\r\\n`, pre),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: DISCONNECT \[127.0.0.5\]:%d`, pre),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: DENYLISTED \[127.0.0.9\]:%d`, deny),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: ALLOWLISTED \[127.0.0.7\]:%d`, allow),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: PASS NEW \[127.0.0.8\]:%d`, newPort),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: PASS OLD \[127.0.0.8\]:%d`, oldPort),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: PASS OLD \[127.0.0.8\]:%d`, againPort),
		`postgate/smtpd\[\d+\]: connect from unknown\[127.0.0.8\]`,
	} {
		if !regexp.MustCompile(want).MatchString(log) {
			t.Errorf("mail log lacks %s", want)
		}
	}
	// smtpd never saw the dropped clients.
	if strings.Contains(log, "connect from unknown[127.0.0.5]") || strings.Contains(log, "connect from unknown[127.0.0.9]") {
		t.Errorf("smtpd ran for a dropped client")
	}
	if t.Failed() {
		t.Log(log)
	}
}

// TestPostscreenDNSBL: postscreen_dnsbl_sites with weights against a real
// rbldnsd. Two postscreen lines share one smtpd pass: on the first a
// client whose score reaches the threshold is enforced (its session goes
// on, every RCPT gets postscreen's 550), on the second dropped with 521;
// a client below the threshold passes; the allowlist weight lets a listed
// client through. postscreen_dnsbl_reply_map names the list in replies.
func TestPostscreenDNSBL(t *testing.T) {
	t.Parallel()
	rbl := startRbldnsd(t, rblZones, rblZoneSpecs...)
	drop := harness.FreePort(t)
	master := fmt.Sprintf(`127.0.0.1:PORT inet n - y - 1 postscreen
  -o postscreen_dnsbl_action=enforce
  -o postscreen_greet_action=enforce
127.0.0.1:%d inet n - y - 1 postscreen
  -o postscreen_dnsbl_action=drop
smtpd-in pass - - y - - smtpd
dnsblog unix - - y - 0 dnsblog
tlsproxy unix - - y - 0 tlsproxy
`, drop)
	p := harness.Start(t, fmt.Sprintf(`postgate_dns_servers = %s
smtpd_peername_lookup = no
postscreen_greet_wait = 2s
postscreen_greet_banner = $myhostname screening
smtpd_service_name = smtpd-in
postscreen_dnsbl_sites = zen.test=127.0.0.2*2 zen.test=127.0.0.12 wl.test*-5
postscreen_dnsbl_threshold = 2
postscreen_dnsbl_whitelist_threshold = -1
postscreen_dnsbl_reply_map = inline:{ wl.test=allowlist, zen.test=private.example }
`, rbl), master)
	dropAddr := fmt.Sprintf("127.0.0.1:%d", drop)

	// 127.0.0.3 scores 2: enforced.
	c := psDial(t, p.Addr, "127.0.0.3")
	if l := c.line(); l != "220-mx.gateway.test screening" {
		t.Fatalf("teaser: %q", l)
	}
	if l := c.line(); l != "220 mx.gateway.test ESMTP postgate" {
		t.Fatalf("greeting: %q", l)
	}
	c.cmd("EHLO client.src.test")
	if l := c.cmd("MAIL FROM:<a@src.test>"); !strings.HasPrefix(l, "250") {
		t.Errorf("MAIL of an enforced client: %q", l)
	}
	want := "550 5.7.1 Service unavailable; client [127.0.0.3] blocked using private.example"
	if l := c.cmd("RCPT TO:<u@relay.test>"); l != want {
		t.Errorf("RCPT of an enforced client: %q, want %q", l, want)
	}
	enforced := c.port()

	// The same on the drop service: 521 after the teaser, and the end.
	c = psDial(t, dropAddr, "127.0.0.3")
	c.line()
	want = "521 5.7.1 Service unavailable; client [127.0.0.3] blocked using private.example"
	if l := c.line(); l != want {
		t.Errorf("dropped client: %q, want %q", l, want)
	}
	if l := c.line(); l != "" {
		t.Errorf("dropped client not disconnected: %q", l)
	}
	dropped := c.port()

	// 127.0.0.12 scores 1, below the threshold: passes, and the next
	// time skips the tests.
	for i, want := range []string{"220-mx.gateway.test screening", "220 mx.gateway.test ESMTP postgate"} {
		c = psDial(t, dropAddr, "127.0.0.12")
		if l := c.line(); l != want {
			t.Errorf("client below the threshold, connection %d: %q, want %q", i+1, l, want)
		}
		if i == 0 {
			c.line()
		}
		c.cmd("EHLO client.src.test")
		c.cmd("MAIL FROM:<a@src.test>")
		if l := c.cmd("RCPT TO:<u@relay.test>"); !strings.HasPrefix(l, "250") {
			t.Errorf("RCPT of a passed client: %q", l)
		}
	}
	// A pregreet client on the enforcing service: its EHLO waits for
	// smtpd's greeting, and every RCPT is refused.
	c = psDial(t, p.Addr, "127.0.0.20")
	c.line()
	c.send("EHLO client.src.test\r\n")
	if l := c.line(); l != "220 mx.gateway.test ESMTP postgate" {
		t.Errorf("pregreet client: %q", l)
	}
	for l := c.line(); strings.HasPrefix(l, "250-"); l = c.line() {
	}
	c.cmd("MAIL FROM:<a@src.test>")
	if l := c.cmd("RCPT TO:<u@relay.test>"); l != "550 5.5.1 Protocol error" {
		t.Errorf("RCPT of an enforced pregreet client: %q", l)
	}
	pregreet := c.port()
	// 127.0.0.6 is on zen.test (2) and on wl.test (-5): allowlisted, so
	// the pregreet wait ends with the lists' answer.
	start := time.Now()
	c = psDial(t, dropAddr, "127.0.0.6")
	c.line()
	if l := c.line(); l != "220 mx.gateway.test ESMTP postgate" {
		t.Errorf("allowlisted client: %q", l)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("client allowlisted by the lists waited %v", d)
	}

	log := p.Log("PASS NEW [127.0.0.6]")
	for _, w := range []string{
		fmt.Sprintf(`postgate/postscreen\[\d+\]: DNSBL rank 2 for \[127.0.0.3\]:%d`, enforced),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: NOQUEUE: reject: RCPT from \[127.0.0.3\]:%d: 550 5.7.1 Service unavailable; client \[127.0.0.3\] blocked using private.example; from=<a@src.test>, to=<u@relay.test>, proto=ESMTP, helo=<client.src.test>`, enforced),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: DNSBL rank 2 for \[127.0.0.3\]:%d`, dropped),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: DISCONNECT \[127.0.0.3\]:%d`, dropped),
		`postgate/postscreen\[\d+\]: PASS NEW \[127.0.0.12\]:\d+`,
		`postgate/postscreen\[\d+\]: PASS OLD \[127.0.0.12\]:\d+`,
		fmt.Sprintf(`postgate/postscreen\[\d+\]: PREGREET 22 after [0-9.]+ from \[127.0.0.20\]:%d: EHLO client.src.test\\r\\n`, pregreet),
		fmt.Sprintf(`postgate/postscreen\[\d+\]: NOQUEUE: reject: RCPT from \[127.0.0.20\]:%d: 550 5.5.1 Protocol error; from=<a@src.test>, to=<u@relay.test>, proto=ESMTP, helo=<client.src.test>`, pregreet),
		`postgate/postscreen\[\d+\]: PASS NEW \[127.0.0.6\]:\d+`,
	} {
		if !regexp.MustCompile(w).MatchString(log) {
			t.Errorf("mail log lacks %s", w)
		}
	}
	if strings.Contains(log, "PASS NEW [127.0.0.3]") {
		t.Errorf("a blocked client passed")
	}
	if t.Failed() {
		t.Log(log)
	}
}

// TestPostscreenLikePostfix runs the same clients against postgate and a
// real Postfix running postscreen (the Debian example's lines, unchrooted)
// and compares what they see and postscreen's log lines: a pregreet
// client dropped, an allowlisted one greeted at once, a new one passed
// after the greet wait, then PASS OLD, and a denylisted one enforced
// (Postfix's dummy engine refuses every RCPT). Banners and ports are left out of
// the comparison (the two hosts' names differ).
func TestPostscreenLikePostfix(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "postgate-postscreen-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	acl := filepath.Join(dir, "postscreen_access.cidr")
	os.WriteFile(acl, []byte("127.0.0.7/32 permit\n127.0.0.9/32 reject\n"), 0o644)
	settings := fmt.Sprintf(`postscreen_access_list = permit_mynetworks, cidr:%s
postscreen_greet_action = drop
postscreen_denylist_action = enforce
postscreen_greet_wait = 2s
smtpd_peername_lookup = no
`, acl)
	front := `PORT inet n - n - 1 postscreen
smtpd pass - - n - - smtpd
dnsblog unix - - n - 0 dnsblog
tlsproxy unix - - n - 0 tlsproxy
`
	pf := harness.StartPostfixWith(t, settings, front)
	pg := harness.Start(t, settings, strings.ReplaceAll(front, "PORT", "127.0.0.1:PORT"))

	want, got := psSeen(t, pf.Addr), psSeen(t, pg.Addr)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("postgate's clients saw\n%s\nPostfix's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantLog := psLogLines(waitLog(pf.Log, "DISCONNECT [127.0.0.9]"))
	gotLog := psLogLines(pg.Log("DISCONNECT [127.0.0.9]"))
	for _, w := range []string{"PREGREET 22 after T from [127.0.0.5]:P: EHLO client.src.test\\r\\n", "ALLOWLISTED [127.0.0.7]:P", "PASS NEW [127.0.0.8]:P", "PASS OLD [127.0.0.8]:P",
		"NOQUEUE: reject: RCPT from [127.0.0.9]:P: 550 5.3.2 Service currently unavailable; from=<a@src.test>, to=<u@relay.test>, proto=ESMTP, helo=<client.src.test>"} {
		if !strings.Contains(strings.Join(wantLog, "\n"), w) {
			t.Errorf("Postfix's log lacks %q:\n%s", w, pf.Log())
		}
	}
	t.Logf("postscreen's lines (both):\n%s", strings.Join(wantLog, "\n"))
	if strings.Join(gotLog, "\n") != strings.Join(wantLog, "\n") {
		t.Errorf("postgate's postscreen log\n%s\nPostfix's\n%s", strings.Join(gotLog, "\n"), strings.Join(wantLog, "\n"))
	}
}

// psSeen runs the clients against addr and returns what each saw: reply
// lines, banners cut to their "220-" or "220 ".
func psSeen(t *testing.T, addr string) []string {
	t.Helper()
	short := func(l string) string {
		if strings.HasPrefix(l, "220") && len(l) > 4 {
			return l[:4]
		}
		return l
	}
	var out []string
	c := psDial(t, addr, "127.0.0.5")
	out = append(out, "pregreet: "+short(c.line()))
	c.send("EHLO client.src.test\r\n")
	out = append(out, "pregreet: "+c.line(), "pregreet: "+c.line())
	c = psDial(t, addr, "127.0.0.7")
	out = append(out, "allowlisted: "+short(c.line()), "allowlisted: "+c.cmd("QUIT")[:3])
	for _, who := range []string{"new", "old"} {
		c = psDial(t, addr, "127.0.0.8")
		l := short(c.line())
		if l == "220-" {
			out = append(out, who+": "+l)
			l = short(c.line())
		}
		out = append(out, who+": "+l, who+": "+c.cmd("QUIT")[:3])
	}
	c = psDial(t, addr, "127.0.0.9")
	out = append(out, "denylisted: "+short(c.line()), "denylisted: "+short(c.line()))
	c.cmd("EHLO client.src.test")
	out = append(out, "denylisted: "+c.cmd("MAIL FROM:<a@src.test>"), "denylisted: "+c.cmd("RCPT TO:<u@relay.test>"),
		"denylisted: "+c.cmd("QUIT")[:3])
	return out
}

// waitLog waits up to 10 s for a line containing want in a log.
func waitLog(read func() string, want string) string {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s := read(); strings.Contains(s, want) {
			return s
		}
	}
	return read()
}

var (
	psLine    = regexp.MustCompile(`/postscreen\[\d+\]: (.*)`)
	psPort    = regexp.MustCompile(`\]:\d+`)
	psElapsed = regexp.MustCompile(`after [0-9.]+ `)
)

// psLogLines are postscreen's log lines about the test clients, with
// ports and times left out.
func psLogLines(log string) []string {
	var out []string
	for _, m := range psLine.FindAllStringSubmatch(log, -1) {
		l := m[1]
		if !regexp.MustCompile(`\[127\.0\.0\.[5789]\]`).MatchString(l) {
			continue
		}
		out = append(out, psElapsed.ReplaceAllString(psPort.ReplaceAllString(l, "]:P"), "after T "))
	}
	return out
}

// TestPostscreenDNSBLTimes: how long a DNS list score is kept and waited
// for, with test/dnstest as the list server (its zone changes and delays
// on demand). A client that passed keeps its pass for
// postscreen_dnsbl_min_ttl (first line), capped by postscreen_dnsbl_max_ttl
// (second line): listed meanwhile, it gets in until then and is dropped
// after. A list that does not answer within postscreen_dnsbl_timeout is
// logged as postscreen does and counts as not listing the client.
func TestPostscreenDNSBLTimes(t *testing.T) {
	t.Parallel()
	const soa = "zen.test. 1 IN SOA ns.zen.test. host.zen.test. 1 1 1 1 1\n"
	srv := dnstest.Start(t, soa)
	capped := harness.FreePort(t)
	p := harness.Start(t, fmt.Sprintf(`postgate_dns_servers = %s
smtpd_peername_lookup = no
postscreen_greet_wait = 3s
postscreen_dnsbl_sites = zen.test
postscreen_dnsbl_action = drop
postscreen_dnsbl_timeout = 1s
`, srv.Addr()), fmt.Sprintf(`127.0.0.1:PORT inet n - y - 1 postscreen
  -o postscreen_dnsbl_min_ttl=2s
127.0.0.1:%d inet n - y - 1 postscreen
  -o postscreen_dnsbl_min_ttl=30s
  -o postscreen_dnsbl_max_ttl=2s
smtpd pass - - y - - smtpd
`, capped))
	addrs := []string{p.Addr, fmt.Sprintf("127.0.0.1:%d", capped)}
	// Both at once, so that both passes start their TTLs together.
	var conns []*psConn
	for _, addr := range addrs {
		conns = append(conns, psDial(t, addr, "127.0.0.3"))
	}
	for _, c := range conns {
		c.line()
		if l := c.line(); !strings.HasPrefix(l, "220 ") {
			t.Fatalf("unlisted client: %q", l)
		}
	}
	passed := time.Now()
	if err := srv.SetZone(soa + "3.0.0.127.zen.test. 1 IN A 127.0.0.2\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the resolver's cache of the answer
	for _, addr := range addrs {
		c := psDial(t, addr, "127.0.0.3")
		if l := c.line(); !strings.HasPrefix(l, "220 ") {
			t.Errorf("%s: client listed within its TTL: %q, want smtpd's greeting", addr, l)
		}
	}
	time.Sleep(time.Until(passed.Add(2200 * time.Millisecond)))
	for _, addr := range addrs {
		c := psDial(t, addr, "127.0.0.3")
		if l := c.line(); l != "521 5.7.1 Service unavailable; client [127.0.0.3] blocked using zen.test" {
			t.Errorf("%s: client listed past its TTL: %q", addr, l)
		}
	}

	// The list stops answering: 1 s, then the client passes at the end
	// of the greet wait.
	srv.SetDelay(time.Minute)
	start := time.Now()
	c := psDial(t, p.Addr, "127.0.0.4")
	c.line()
	if l := c.line(); !strings.HasPrefix(l, "220 ") {
		t.Errorf("client of a list that does not answer: %q", l)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("greeting after %v", d)
	}
	log := p.Log("PASS NEW [127.0.0.4]")
	for _, w := range []string{
		`postgate/postscreen\[\d+\]: warning: dnsblog reply timeout 1s for zen.test`,
		`postgate/dnsblog\[\d+\]: addr 127.0.0.3 listed by domain zen.test as 127.0.0.2`,
		`PASS OLD \[127.0.0.3\]:\d+\n(.*\n)*.*PASS OLD \[127.0.0.3\]:\d+`,
		`DNSBL rank 1 for \[127.0.0.3\]:\d+\n(.*\n)*.*DNSBL rank 1 for \[127.0.0.3\]:\d+`,
	} {
		if !regexp.MustCompile(w).MatchString(log) {
			t.Errorf("mail log lacks %s", w)
		}
	}
	if t.Failed() {
		t.Log(log)
	}
}
