package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// canonicalCase is one message of the side-by-side canonical test: its
// envelope and header; the servers' outputs are compared, not written here.
type canonicalCase struct {
	name, from string
	to         []string
	header     string // without the Subject, which names the case
}

var canonicalCases = []canonicalCase{
	{name: "sender_map", from: "joe@inside.test", to: []string{"alice@corp.test"},
		header: "From: Joe <joe@inside.test>\r\nTo: alice@corp.test\r\n"},
	{name: "domain_map", from: "anyone@old.test", to: []string{"someone@old.test"},
		header: "From: anyone@old.test\r\nTo: \"Some One\" <someone@old.test>, other@old.test\r\nCc: user, (a comment) first@corp.test\r\n"},
	{name: "extension_propagated", from: "x@partner.test", to: []string{"bob+tag@corp.test"},
		header: "From: x@partner.test\r\nTo: bob+tag@corp.test\r\nReply-To: <bob@corp.test>\r\n"},
	{name: "chain_recipient_then_common", from: "x@partner.test", to: []string{"first@corp.test"},
		header: "From: x@partner.test\r\nTo: first@corp.test\r\nResent-To: first@corp.test\r\nResent-From: joe@inside.test\r\n"},
	{name: "maps_to_itself", from: "self@corp.test", to: []string{"self@corp.test"}},
	{name: "regexp_map", from: "x@partner.test", to: []string{"mary@legacy.test"},
		header: "From: x@partner.test\r\nTo: Mary <mary@legacy.test> (legacy),\r\n\tgroup: a@legacy.test, b@legacy.test;\r\n"},
	{name: "canonical_then_virtual", from: "x@partner.test", to: []string{"team@corp.test"}},
	{name: "sender_table_not_for_recipients", from: "x@partner.test", to: []string{"joe@inside.test"},
		header: "From: x@partner.test\r\nTo: joe@inside.test\r\nSender: joe@inside.test\r\n"},
	{name: "null_sender", from: "", to: []string{"alice@corp.test"}},
	{name: "unmatched", from: "plain@partner.test", to: []string{"carol@corp.test", "dave@corp.test"}},
}

// canonicalConfig is the main.cf both servers run, with DIR the table
// directory and SINK the internal server's port.
const canonicalConfig = `myorigin = corp.test
mydestination =
relay_domains = corp.test, old.test, new.test, legacy.test, inside.test
recipient_delimiter = +
transport_maps = inline:{ corp.test=smtp:[127.0.0.1]:SINK, old.test=smtp:[127.0.0.1]:SINK, new.test=smtp:[127.0.0.1]:SINK, legacy.test=smtp:[127.0.0.1]:SINK, inside.test=smtp:[127.0.0.1]:SINK }
sender_canonical_maps = texthash:DIR/sender_canonical
recipient_canonical_maps = texthash:DIR/recipient_canonical
canonical_maps = texthash:DIR/canonical, regexp:DIR/canonical.regexp
virtual_alias_maps = texthash:DIR/virtual
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
`

var canonicalTables = map[string]string{
	"sender_canonical":    "joe@inside.test joe.public@corp.test\n",
	"recipient_canonical": "first@corp.test second@corp.test\nold-team@corp.test team@corp.test\n",
	"canonical":           "@old.test @new.test\nbob@corp.test robert@corp.test\nsecond@corp.test third@corp.test\nself@corp.test self@corp.test\nteam@corp.test crew@corp.test\n",
	"canonical.regexp":    "/^(.*)@legacy\\.test$/ ${1}@corp.test\n",
	"virtual":             "crew@corp.test alice@corp.test, bob@corp.test\n",
	"local_clients":       "192.0.2.0/24 local\n",
}

var sinkArgRe = regexp.MustCompile(`(?m)^X-(Mail|Rcpt)-Args: <([^>]*)>`)
var subjectRe = regexp.MustCompile(`(?m)^Subject: (\S+)`)

// TestCanonicalAgainstPostfix runs the same messages through the real
// Postfix and through postgate, each relaying to its own smtp-sink, with
// sender_canonical_maps, recipient_canonical_maps, canonical_maps (a hash
// and a regexp table) and virtual_alias_maps, with the default classes and
// with *_canonical_classes set, and compares the envelopes that reach the
// sinks: the sender and the set of recipients of each message, and each
// message's address headers, which are rewritten only for a client in
// local_header_rewrite_clients (by default permit_inet_interfaces: the
// test connects from 127.0.0.1, an address of both servers) or with
// remote_header_rewrite_domain.
func TestCanonicalAgainstPostfix(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "postgate-canonical-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Postfix's cleanup reads the tables as user postfix
		t.Fatal(err)
	}
	for name, text := range canonicalTables {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []struct{ name, extra string }{
		{"default_classes", ""},
		// sender_canonical_maps for headers only; canonical_maps for
		// envelope recipients only.
		{"classes", "sender_canonical_classes = header_sender\ncanonical_classes = envelope_recipient\n"},
		// Not a local client: headers as they came, or qualified with the
		// remote domain.
		{"remote_client", "local_header_rewrite_clients =\n"},
		{"remote_domain", "local_header_rewrite_clients = check_address_map cidr:DIR/local_clients\nremote_header_rewrite_domain = remote.test\n"},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			config := func(sink *harness.Sink) string {
				return strings.NewReplacer("DIR", dir, "SINK", fmt.Sprint(sink.Port)).Replace(canonicalConfig + v.extra)
			}
			postfixSink, postgateSink := harness.StartSink(t), harness.StartSink(t)
			pf := harness.StartPostfix(t, config(postfixSink))
			pg := harness.Start(t, config(postgateSink), "")
			want := canonicalEnvelopes(t, pf.Addr, postfixSink)
			got := canonicalEnvelopes(t, pg.Addr, postgateSink)
			for _, c := range canonicalCases {
				if got[c.name] != want[c.name] {
					t.Errorf("%s: postgate relayed %s, Postfix %s", c.name, got[c.name], want[c.name])
				}
			}
			// The delivery lines name each rewritten recipient's original
			// address (orig_to=), as the address the client gave.
			// (The logs may trail the sinks by a moment.)
			g, w := origTo(pg.Log("orig_to=")), origTo(pf.Log())
			for deadline := time.Now().Add(10 * time.Second); !slices.Equal(g, w) && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				g, w = origTo(pg.Log("orig_to=")), origTo(pf.Log())
			}
			if len(w) == 0 || !slices.Equal(g, w) {
				t.Errorf("orig_to in postgate's log:\n%s\nin Postfix's:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
		})
	}
}

// canonicalEnvelopes sends the cases to addr and returns, by case, the
// envelope that reached the sink: "from -> sorted recipients".
func canonicalEnvelopes(t *testing.T, addr string, sink *harness.Sink) map[string]string {
	t.Helper()
	c := harness.Dial(t, addr, "127.0.0.1")
	c.Expect(250, "EHLO client.partner.test")
	for _, m := range canonicalCases {
		c.Expect(250, "MAIL FROM:<%s>", m.from)
		for _, r := range m.to {
			c.Expect(250, "RCPT TO:<%s>", r)
		}
		c.Expect(354, "DATA")
		header := m.header
		if header == "" {
			header = "From: x@partner.test\r\nTo: somebody@corp.test\r\n"
		}
		c.Send(fmt.Sprintf("Subject: %s\r\nMessage-ID: <%s@partner.test>\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\n%s\r\nbody\r\n.\r\n", m.name, m.name, header))
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s at %s: %d %s", m.name, addr, code, text)
		}
	}
	c.Expect(221, "QUIT")
	// One case delivers to two sink transactions at most; wait for all of
	// them by case name.
	out := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < len(canonicalCases) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out = map[string]string{}
		for _, dump := range sink.Messages() {
			env, msg := harness.SinkBody(dump)
			name := ""
			if m := subjectRe.FindStringSubmatch(msg); m != nil {
				name = m[1]
			}
			var from string
			if m := sinkArgRe.FindStringSubmatch(env); m != nil && m[1] == "Mail" {
				from = m[2]
			}
			rcpts := sinkRcpts(env)
			if prev, ok := out[name]; ok { // split over transactions
				_, r, _ := strings.Cut(prev, " -> ")
				r, _, _ = strings.Cut(r, "\n")
				rcpts = append(rcpts, strings.Split(r, " ")...)
			}
			sort.Strings(rcpts)
			out[name] = "<" + from + "> -> " + strings.Join(rcpts, " ") + addressHeaders(msg)
		}
	}
	return out
}

// sinkRcpts returns the recipients of a sink dump's envelope, sorted.
func sinkRcpts(env string) []string {
	var rcpts []string
	for _, a := range sinkArgRe.FindAllStringSubmatch(env, -1) {
		if a[1] == "Rcpt" {
			rcpts = append(rcpts, a[2])
		}
	}
	sort.Strings(rcpts)
	return rcpts
}

var origToRe = regexp.MustCompile(`: to=<([^>]*)>, orig_to=<([^>]*)>, relay=\S+, .*status=sent`)

// origTo returns a mail log's "to orig_to" pairs of sent deliveries, sorted.
func origTo(log string) []string {
	var out []string
	for _, m := range origToRe.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1]+" "+m[2])
	}
	slices.Sort(out)
	return out
}

var addressHeaderRe = regexp.MustCompile(`(?m)^(From|To|Cc|Reply-To|Sender|Resent-To|Resent-From):.*(\n[ \t].*)*`)

// addressHeaders returns a message's address headers, each after a
// newline, as they came.
func addressHeaders(msg string) string {
	var sb strings.Builder
	for _, h := range addressHeaderRe.FindAllString(msg, -1) {
		sb.WriteString("\n")
		sb.WriteString(h)
	}
	return sb.String()
}
