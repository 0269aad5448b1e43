package test

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"postgate/test/dnstest"
	"postgate/test/harness"
)

var (
	protocolUpdate = flag.Bool("update", false,
		"TestProtocol: run the protocol scripts against the real Postfix and rewrite the goldens")
	protocolAgainstPostfix = flag.Bool("protocol-against-postfix", false,
		"TestProtocol: run the protocol scripts against the real Postfix and compare with the goldens")
)

// protocolHead is the main.cf settings of both servers, before the
// script's @main lines. Where Debian's Postfix 3.7 defaults differ from
// current Postfix (which postgate follows), the value is explicit. The relay
// restrictions are the default (defer_unauth_destination: "454 4.7.1 ...
// Relay access denied" for a foreign recipient).
const protocolHead = `# protocol test head (test/protocol_test.go)
myhostname = mx.gateway.test
mydomain = gateway.test
smtpd_banner = $myhostname ESMTP
mynetworks = 127.0.0.1/32
relay_domains = relay.test
relay_transport = discard
inet_protocols = ipv4
smtputf8_enable = yes
compatibility_level = 3.6
# defaults of Postfix >= 3.9, explicit for Postfix 3.7
smtpd_forbid_bare_newline = normalize
smtpd_forbid_unauth_pipelining = yes
`

const protocolDir = "testdata/protocol"

// protocolPostfixSlots bounds the real Postfix instances running at once.
const protocolPostfixSlots = 4

var protocolQueueID = regexp.MustCompile(`(queued as )[0-9A-Za-z]+`)

func protocolNormalize(line string) string {
	return protocolQueueID.ReplaceAllString(line, "${1}QUEUEID")
}

type protocolDifference struct{ script, command, reason string }

// TestProtocol plays the SMTP dialogs in testdata/protocol/*.script and
// compares what the server answers with testdata/protocol/*.golden, which
// are recorded from the real Postfix (Debian's 3.7): Postfix is the oracle
// for how postgate answers.
//
//	go test ./test -run TestProtocol                             # postgate vs goldens
//	go test ./test -run TestProtocol -update                     # re-record from Postfix
//	go test ./test -run TestProtocol -protocol-against-postfix   # Postfix vs goldens
//
// The last one shows that a recording is deterministic. Every script runs
// against its own server (postgate per script in parallel; at most
// protocolPostfixSlots Postfix instances at once) with the same settings:
// protocolHead, then the script's @main lines, each parameter once (the
// last value wins). Postgate gets them after the harness's default main.cf;
// in the real Postfix they replace the harness head's definitions (see
// startProtocolPostfix: a parameter defined twice can hang Postfix here).
//
// # Script format
//
// One item a line. Empty lines and lines starting with "#" are comments;
// comment every case. A plain line is an SMTP command line: it is sent with
// CRLF, then one reply is read (a multi-line reply whole) and recorded.
// Command lines, @raw text and @postgate lines may hold the escapes \r, \n,
// \t, \\ and \xHH (a line that must start with "#" or "@" starts with \x23
// or \x40; trailing spaces are kept, but write them as \x20 to show them).
// Directives start with "@":
//
//	@main NAME = VALUE a main.cf setting for this script, taken verbatim
//	                   (no escapes: main.cf has its own, e.g. \n in
//	                   smtpd_reject_footer); only before the first @connect;
//	                   @files@ in it is the directory of the @file blocks
//	@file NAME ...     write the lines up to @endfile, verbatim, to
//	@endfile           @files@/NAME (a lookup table) before the server
//	                   starts; only before the first @connect
//	@dns RECORD        a DNS record (a master-file line, as test/dnstest
//	                   reads: absolute names, or after an @dns $ORIGIN;
//	                   the TTL may be left out)
//	                   that both servers' resolvers find; only before the
//	                   first @connect. Postgate asks a dnstest server
//	                   through postgate_dns_servers; the real Postfix (the
//	                   C library's resolver, port 53 only) one on port 53
//	                   of a 127.53.x.y address of its own, named in its
//	                   private /etc/resolv.conf. A name the records do not
//	                   hold is NXDOMAIN. Without @dns, both get no answer
//	                   (Postfix asks 127.0.0.1:53, where nothing listens).
//	                   Client addresses (@connect SRC) are looked up too:
//	                   give PTR records for the names they should have.
//	@dns-servfail NAME the DNS server answers SERVFAIL for NAME (any
//	                   type): a temporary DNS failure; needs @dns
//	@sink-rcpt ADDR [+MS] REPLY
//	                   the script gets an SMTP server of its own
//	                   (harness.RcptSink; the next hop of address
//	                   verification probes), which answers RCPT TO:<ADDR>
//	                   with REPLY after MS milliseconds, other addresses
//	                   with "250 2.1.5 Ok"; @sink@ in @main lines is its
//	                   next hop, [127.0.0.1]:PORT; only before the first
//	                   @connect
//	@sink-log          record the RCPT and DATA commands the sink got
//	                   since the last @sink-log, each with its MAIL, in
//	                   sorted order ("-- sink: MAIL FROM:<a> RCPT
//	                   TO:<b>", parameters cut off); starts a sink too
//	@connect [SRC]     close the connection, open a new one from SRC (in
//	                   127.0.0.0/8; default 127.0.0.5, outside mynetworks)
//	                   and record the greeting
//	@pipeline ... @end send the command lines between in ONE write, then read
//	                   one reply per line (until the server closes)
//	@raw TEXT          send TEXT as it is (no CRLF added) and read nothing
//	@read              read one reply
//	@content TEXT      when the last reply was 354: send TEXT as it is and
//	                   read one reply; else nothing
//	@shutwr            half-close the connection (CloseWrite)
//	@expect-close      record whether the server closes within 2 s
//	                   ("-- closed" or "-- open"; a reply that comes first is
//	                   recorded too)
//	@sleep MS          wait MS milliseconds
//	@differs REASON    the NEXT reply is a deliberate difference: postgate
//	@postgate LINE     answers with these lines (one @postgate per reply
//	...                line, or "-- closed" / "-- open") instead of what
//	                   Postfix answered. Postgate is checked against them,
//	                   and every difference is listed in the test log.
//
// # Transcript format (.golden)
//
// After a "# " header: "-- connect SRC" for each connection, "C: LINE" for a
// command line sent (CRLF not shown), "C: [raw] TEXT" for raw bytes
// ("C: [content] TEXT" for @content),
// "-- pipeline: N lines in one write" before the C: lines of a pipeline,
// "S: LINE" for each reply line (CRLF removed), "-- half-close",
// "-- closed" (the server closed instead of replying, or within the
// @expect-close wait) and "-- open", "-- sink: LINE" for @sink-log, and
// "-- differs: REASON" before a reply that postgate answers differently. Bytes are shown as the escapes above
// (other non-printable bytes as \xHH, a space at the end of a line as
// \x20); a client line over 100 bytes is shortened to "<first 60
// bytes>...(N bytes)", a server line over 1000 bytes to "<first 60
// bytes>...(N bytes)...<last 60 bytes>". The only normalization: the queue
// ID after "queued as " becomes QUEUEID.
func TestProtocol(t *testing.T) {
	if *protocolUpdate && *protocolAgainstPostfix {
		t.Fatal("-update and -protocol-against-postfix exclude each other")
	}
	paths, err := filepath.Glob(filepath.Join(protocolDir, "*.script"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no scripts in %s", protocolDir)
	}
	scripts := map[string]bool{}
	for _, p := range paths {
		scripts[strings.TrimSuffix(filepath.Base(p), ".script")] = true
	}
	goldens, _ := filepath.Glob(filepath.Join(protocolDir, "*.golden"))
	for _, g := range goldens {
		if name := strings.TrimSuffix(filepath.Base(g), ".golden"); !scripts[name] {
			t.Errorf("%s has no script %s.script: remove it", g, name)
		}
	}

	var (
		mu    sync.Mutex
		diffs []protocolDifference
	)
	t.Cleanup(func() { // after all parallel subtests
		if len(diffs) == 0 {
			return
		}
		sort.Slice(diffs, func(i, j int) bool { return diffs[i].script < diffs[j].script })
		var b strings.Builder
		fmt.Fprintf(&b, "%d deliberate differences from Postfix (@differs):\n", len(diffs))
		for _, d := range diffs {
			fmt.Fprintf(&b, "  %s: %s: %s\n", d.script, d.command, d.reason)
		}
		t.Log(b.String())
	})
	slots := make(chan struct{}, protocolPostfixSlots)
	version := ""
	if *protocolUpdate || *protocolAgainstPostfix {
		version = postfixVersion(t)
	}

	for _, path := range paths {
		s, err := harness.ParseScriptFile(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			goldenPath := filepath.Join(protocolDir, s.Name+".golden")
			var sink *harness.RcptSink
			if s.UsesSink {
				sink = harness.StartRcptSink(t, s.Sink)
			}
			settings, err := protocolSettings(s, protocolFiles(t, s), sink)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var (
				addr string
				pf   *harness.Postfix
			)
			if *protocolUpdate || *protocolAgainstPostfix {
				slots <- struct{}{}
				t.Cleanup(func() { <-slots }) // after Postfix has stopped
				nameserver := "127.0.0.1"     // nothing answers there
				if len(s.DNS) > 0 {
					srv := harness.DNSAt(t, protocolZone(s))
					protocolServfail(srv, s)
					nameserver, _, _ = net.SplitHostPort(srv.Addr())
				}
				pf = harness.StartPostfixDNS(t, mainText(settings), nameserver)
				addr = pf.Addr
			} else {
				main := mainText(settings)
				if len(s.DNS) > 0 {
					srv := dnstest.Start(t, protocolZone(s))
					protocolServfail(srv, s)
					main += "postgate_dns_servers = " + srv.Addr() + "\n"
				}
				addr = harness.Start(t, main, "").Addr
			}
			got, runErr := harness.RunScript(addr, s, protocolNormalize, sink)
			if pf != nil {
				checkPostfixLog(t, pf)
			}

			if *protocolUpdate {
				if runErr != nil {
					t.Fatalf("Postfix: %v\ntranscript so far:\n%s", runErr, strings.Join(got, "\n"))
				}
				if t.Failed() {
					t.Fatalf("%s not written", goldenPath)
				}
				noteDifferences(&mu, &diffs, s, got)
				header := fmt.Sprintf("# Transcript of %s.script, recorded from the real Postfix (mail_version = %s)\n"+
					"# by `go test ./test -run TestProtocol -update`. Do not edit: re-record.\n", s.Name, version)
				if err := os.WriteFile(goldenPath, []byte(header+strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}

			golden, err := readGolden(goldenPath)
			if err != nil {
				t.Fatalf("%v (record it with -update)", err)
			}
			want := golden
			who := "Postfix"
			if !*protocolAgainstPostfix {
				who = "postgate"
				if want, err = applyDifferences(golden, s.Differences()); err != nil {
					t.Fatalf("%s: %v (re-record with -update)", goldenPath, err)
				}
			}
			noteDifferences(&mu, &diffs, s, golden)
			if runErr != nil {
				t.Errorf("%s: %v", who, runErr)
			}
			if d := lineDiff(want, got); d != "" {
				t.Errorf("%s answers differently from %s (- want, + got):\n%s", who, goldenPath, d)
			}
		})
	}
}

// protocolZone is the zone of a script's @dns lines, with a default TTL.
func protocolZone(s *harness.Script) string { return "$TTL 60\n" + strings.Join(s.DNS, "\n") + "\n" }

// protocolServfail makes srv fail the script's @dns-servfail names.
func protocolServfail(srv *dnstest.Server, s *harness.Script) {
	for _, name := range s.Servfail {
		srv.SetServfail(name)
	}
}

// postfixVersion is Postfix's mail_version, for the goldens' header.
func postfixVersion(t *testing.T) string {
	out, err := exec.Command(harness.Need(t, "postconf", "postfix"), "-d", "-h", "mail_version").Output()
	if err != nil {
		t.Fatalf("postconf: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// readGolden returns a golden's transcript lines, without its header.
func readGolden(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// applyDifferences replaces, in a transcript recorded from Postfix, each
// reply after a "-- differs:" marker with what the script says postgate
// answers instead.
func applyDifferences(golden []string, ds []*harness.Difference) ([]string, error) {
	var out []string
	k := 0
	for i := 0; i < len(golden); i++ {
		out = append(out, golden[i])
		if !strings.HasPrefix(golden[i], harness.DiffersMarker) {
			continue
		}
		if k >= len(ds) {
			return nil, fmt.Errorf("more @differs markers than the script declares")
		}
		if reason := strings.TrimPrefix(golden[i], harness.DiffersMarker); reason != ds[k].Reason {
			return nil, fmt.Errorf("marker %q, but the script's @differs (line %d) says %q", reason, ds[k].Line, ds[k].Reason)
		}
		end := harness.ReplyEnd(golden, i+1)
		out = append(out, ds[k].Postgate...)
		i = end - 1
		k++
	}
	if k != len(ds) {
		return nil, fmt.Errorf("the script declares %d @differs, the golden has %d", len(ds), k)
	}
	return out, nil
}

// noteDifferences adds a script's @differs to the list for the test log,
// with the command each one answers (from a transcript).
func noteDifferences(mu *sync.Mutex, diffs *[]protocolDifference, s *harness.Script, transcript []string) {
	ds := s.Differences()
	if len(ds) == 0 {
		return
	}
	k := 0
	mu.Lock()
	defer mu.Unlock()
	for i, l := range transcript {
		if strings.HasPrefix(l, harness.DiffersMarker) && k < len(ds) {
			*diffs = append(*diffs, protocolDifference{s.Name, harness.LastCommand(transcript, i), ds[k].Reason})
			k++
		}
	}
	for ; k < len(ds); k++ {
		*diffs = append(*diffs, protocolDifference{s.Name, fmt.Sprintf("(script line %d)", ds[k].Line), ds[k].Reason})
	}
}

// lineDiff returns a unified-style diff of two transcripts (3 lines of
// context; "" when equal).
func lineDiff(want, got []string) string {
	n, m := len(want), len(got)
	// lcs[i][j]: length of the longest common subsequence of want[i:], got[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			ops = append(ops, op{' ', want[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', want[i]})
			i++
		default:
			ops = append(ops, op{'+', got[j]})
			j++
		}
	}
	const context = 3
	show := make([]bool, len(ops))
	changed := false
	for k, o := range ops {
		if o.kind != ' ' {
			changed = true
			for c := max(0, k-context); c <= min(len(ops)-1, k+context); c++ {
				show[c] = true
			}
		}
	}
	if !changed {
		return ""
	}
	var b strings.Builder
	for k, o := range ops {
		if !show[k] {
			if k > 0 && show[k-1] {
				b.WriteString("  ...\n")
			}
			continue
		}
		fmt.Fprintf(&b, "%c %s\n", o.kind, o.text)
	}
	return b.String()
}

// mainSetting is one main.cf parameter: its name and its "name = value" line.
type mainSetting struct{ name, line string }

// mainText is the settings as main.cf lines.
func mainText(settings []mainSetting) string {
	var b strings.Builder
	for _, st := range settings {
		b.WriteString(st.line + "\n")
	}
	return b.String()
}

// protocolFiles writes a script's @file blocks to a directory both servers
// can read (Postfix's smtpd runs as its mail owner) and returns it.
func protocolFiles(t *testing.T, s *harness.Script) string {
	if len(s.Files) == 0 {
		return ""
	}
	dir, err := os.MkdirTemp("", "postgate-protocol-files-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// protocolSettings is protocolHead plus the script's @main lines, each
// parameter once (the last value wins, at the place of the first), with
// @files@ replaced by files, the directory of the script's @file blocks,
// and @sink@ by the next hop of its RCPT sink ("[127.0.0.1]:port").
func protocolSettings(s *harness.Script, files string, sink *harness.RcptSink) ([]mainSetting, error) {
	var out []mainSetting
	seen := map[string]int{}
	nexthop := ""
	if sink != nil {
		nexthop = sink.Nexthop
	}
	for _, l := range append(strings.Split(protocolHead, "\n"), s.Main...) {
		l = strings.TrimSpace(strings.NewReplacer("@files@", files, "@sink@", nexthop).Replace(l))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, _, ok := strings.Cut(l, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("@main %q is not \"name = value\"", l)
		}
		if i, ok := seen[name]; ok {
			out[i].line = l
			continue
		}
		seen[name] = len(out)
		out = append(out, mainSetting{name, l})
	}
	return out, nil
}

// checkPostfixLog fails the test when Postfix logged a fatal error, a panic
// or a doubly defined parameter: a recording made so is not the truth.
func checkPostfixLog(t *testing.T, p *harness.Postfix) {
	t.Helper()
	for _, l := range strings.Split(p.Log(), "\n") {
		if strings.Contains(l, " fatal: ") || strings.Contains(l, " panic: ") || strings.Contains(l, "overriding earlier entry") {
			t.Errorf("Postfix logged: %s", l)
		}
	}
}

// TestProtocolRunner checks the script runner itself against a small fake
// server: replies, pipelines, closes, and @differs.
func TestProtocolRunner(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 fake ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch strings.TrimRight(line, "\r\n") {
					case "MULTI":
						fmt.Fprint(c, "250-first\r\n250 last \r\n")
					case "DIFF":
						fmt.Fprint(c, "250 postfix says this\r\n")
					case "BYE":
						fmt.Fprint(c, "221 bye\r\n")
						return
					default:
						fmt.Fprintf(c, "250 ok %q\r\n", strings.TrimRight(line, "\r\n"))
					}
				}
			}(c)
		}
	}()
	s, err := harness.ParseScript("runner", `# comment
@main smtpd_banner = fake
@connect
NOOP a\x00b\tc
MULTI
@differs postgate words it differently
@postgate 250 postgate says this
DIFF
@pipeline
ONE
TWO
@end
@raw THREE\r\n
@read
@expect-close
BYE
@expect-close
NOOP
@connect 127.0.0.6
@differs postgate hangs up instead
@postgate -- closed
BYE
`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := harness.RunScript(l.Addr().String(), s, protocolNormalize, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(got, "\n"))
	}
	want := []string{
		"-- connect 127.0.0.5",
		"S: 220 fake ESMTP",
		`C: NOOP a\x00b\tc`,
		`S: 250 ok "NOOP a\\x00b\\tc"`, // the fake's %q, backslashes escaped
		"C: MULTI",
		"S: 250-first",
		`S: 250 last\x20`,
		"C: DIFF",
		"-- differs: postgate words it differently",
		"S: 250 postfix says this",
		"-- pipeline: 2 lines in one write",
		"C: ONE",
		"C: TWO",
		`S: 250 ok "ONE"`,
		`S: 250 ok "TWO"`,
		`C: [raw] THREE\r\n`,
		`S: 250 ok "THREE"`,
		"-- open",
		"C: BYE",
		"S: 221 bye",
		"-- closed",
		"C: NOOP",
		"-- closed",
		"-- connect 127.0.0.6",
		"S: 220 fake ESMTP",
		"C: BYE",
		"-- differs: postgate hangs up instead",
		"S: 221 bye",
	}
	if d := lineDiff(want, got); d != "" {
		t.Errorf("transcript (- want, + got):\n%s", d)
	}
	postgate, err := applyDifferences(want, s.Differences())
	if err != nil {
		t.Fatal(err)
	}
	if d := lineDiff(want, postgate); !strings.Contains(d, "- S: 250 postfix says this\n+ S: 250 postgate says this\n") ||
		!strings.Contains(d, "- S: 221 bye\n+ -- closed\n") {
		t.Errorf("applyDifferences (- Postfix, + postgate):\n%s", d)
	}
	if got := harness.LastCommand(want, 8); got != "DIFF" {
		t.Errorf("LastCommand = %q", got)
	}

	for _, bad := range []string{
		"NOOP\n",                                           // before @connect
		"@connect\n@main a = b\n",                          // @main too late
		"@connect 192.0.2.1\n",                             // not loopback
		"@connect\n@pipeline\nNOOP\n",                      // no @end
		"@connect\n@differs x\nNOOP\n",                     // no @postgate
		"@connect\n@postgate 250 ok\n",                     // no @differs
		"@connect\n@differs x\n@postgate 250 ok\n@raw x\n", // no reply after it
		"@connect\nNOOP \\q\n",                             // unknown escape
		"@connect\nNOOP \\x4\n",                            // short escape
		"@connect\n@bogus\n",                               // unknown directive
		"@connect\n@dns a.test. A 192.0.2.1\n",             // @dns too late
		"@dns\n@connect\n",                                 // @dns without a record
		"@dns-servfail a.test\n@connect\n",                 // nothing to fail
	} {
		if _, err := harness.ParseScript("bad", bad); err == nil {
			t.Errorf("ParseScript(%q) accepted it", bad)
		}
	}
}
