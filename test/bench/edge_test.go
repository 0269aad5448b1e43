package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postgate/test/harness"
)

// BenchmarkRelayEdgeProfile is BenchmarkRelayVsPostfix with both servers
// running the same edge profile, as a site fronting an internal server
// would: check_recipient_access over a 10,000-line hash table,
// relay_recipient_maps with 10,000 addresses, 200 header_checks rules
// (half regexp, half pcre) and 50 body_checks rules. No rule matches the
// benchmark's mail, so every message goes through all of them. Postfix
// gets its hash tables from postmap; postgate reads the same source files.
// Run with -benchtime 1x.
func BenchmarkRelayEdgeProfile(b *testing.B) {
	dir, err := os.MkdirTemp("", "postgate-edge-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Postfix reads the tables as user postfix
		b.Fatal(err)
	}
	write := func(name string, lines func(i int) string, n int) string {
		var sb strings.Builder
		for i := range n {
			sb.WriteString(lines(i))
			sb.WriteByte('\n')
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		return p
	}
	// The benchmark's recipient (u@relay.test) is listed in both tables, at
	// the end; the access table's entry for it says DUNNO.
	access := write("recipient_access", func(i int) string {
		if i == 9999 {
			return "u@relay.test DUNNO"
		}
		return fmt.Sprintf("user%d@relay.test REJECT mailbox %d closed", i, i)
	}, 10000)
	rcpts := write("relay_recipients", func(i int) string {
		if i == 9999 {
			return "u@relay.test x"
		}
		return fmt.Sprintf("person%d@relay.test x", i)
	}, 10000)
	hdrRegexp := write("header_checks.regexp", func(i int) string {
		return fmt.Sprintf("/^Subject:.*(casino|lottery)-offer-%d[^0-9]/ REJECT offer %d", i, i)
	}, 100)
	hdrPCRE := write("header_checks.pcre", func(i int) string {
		return fmt.Sprintf("/^X-Campaign-%d:\\s*(?!internal)\\S+/i REJECT campaign %d", i, i)
	}, 100)
	body := write("body_checks", func(i int) string {
		return fmt.Sprintf("/pharmacy-deal-%d[0-9]+/ DISCARD deal %d", i, i)
	}, 50)
	conf := filepath.Join(dir, "postmap-conf")
	os.Mkdir(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644)
	postmap := harness.Need(b, "postmap", "postfix")
	for _, t := range []string{access, rcpts} {
		if out, err := exec.Command(postmap, "-c", conf, "hash:"+t).CombinedOutput(); err != nil {
			b.Fatalf("postmap %s: %v\n%s", t, err, out)
		}
	}
	relayVsPostfix(b, startServersWith(b, fmt.Sprintf(`smtpd_recipient_restrictions = check_recipient_access hash:%s
relay_recipient_maps = hash:%s
header_checks = regexp:%s, pcre:%s
body_checks = regexp:%s
`, access, rcpts, hdrRegexp, hdrPCRE, body)))
}
