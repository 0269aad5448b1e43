package addrheader

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// headerCase is one address header sent through the real Postfix: its
// field name and value (folded lines joined by "\n" and white space).
type headerCase struct {
	name, field, value string
}

var long = strings.Repeat("x", 260)

var headerCases = []headerCase{
	{"plain", "From", " joe@old.test"},
	{"angle", "From", " <joe@old.test>"},
	{"phrase", "From", " Joe Bloggs <joe@old.test>"},
	{"quoted_phrase", "From", ` "Bloggs, Joe" <joe@old.test>`},
	{"dotted_phrase", "From", " Johnny B. Goode <johnny@old.test>"},
	{"comment", "From", " joe@old.test (Joe Bloggs)"},
	{"nested_comment", "From", " joe@old.test (Joe (the (real) one))"},
	{"comment_in_angle", "From", " Joe <joe(c)@old.test (x)>"},
	{"uppercase", "From", " JOE@OLD.TEST"},
	{"eight_bit_phrase", "From", " J\xc3\xb6e <joe@old.test>"},
	{"list", "To", " a@old.test, b@other.test, C <c@old.test>"},
	{"long_list", "To", " alice.long.name@old.test, bob.long.name@old.test, carol.long.name@old.test, dave.long.name@other.test, Eve Long Name <eve.long.name@old.test>, frank@old.test, g@old.test"},
	{"folded_input", "To", " a@old.test,\n\tb@old.test,\n c@other.test"},
	{"folded_unchanged", "To", " a@other.test,\n\tJoe <b@other.test>"},
	{"group", "Cc", " team: a@old.test, b@other.test;"},
	{"empty_group", "Cc", " undisclosed-recipients:;, x@old.test"},
	{"group_phrases", "Cc", ` Friends: Joe <joe@old.test>, "Ann Other" <ann@other.test>;`},
	{"route", "To", " <@relay1.test,@relay2.test:joe@old.test>"},
	{"route_other", "To", " Joe <@relay.test:joe@other.test>"},
	{"quoted_local", "From", ` "joe smith"@old.test`},
	{"quoted_dot_atom", "From", ` "joe"@old.test`},
	{"quoted_comma", "To", ` "a,b"@old.test`},
	{"quoted_dots", "To", ` ".joe"@old.test, "a..b"@old.test`},
	{"quoted_adjacent", "To", ` "a""b"@other.test, c@old.test`},
	{"quoted_adjacent_angle", "To", ` <"a""b"@other.test>`},
	{"quoted_piece_unqualified", "To", ` "a".b`},
	{"quoted_unqualified", "To", ` "joe", "a b"`},
	{"quoted_piece_route", "To", ` <@r.test:"a".b@other.test>`},
	{"quoted_piece_trailing_dot", "To", ` "a".b@other.test.`},
	{"quoted_piece_mapped", "To", ` "a".b@old.test`},
	{"escaped_atom", "To", ` a\ b@old.test`},
	{"unqualified", "To", " user"},
	{"unqualified_phrase", "To", " Some User <user>"},
	{"unqualified_mixed", "Cc", " user, x@other.test"},
	{"trailing_dot", "To", " joe@other.test."},
	{"trailing_dot_old", "To", " joe@old.test."},
	{"null", "From", " <>"},
	{"null_and_other", "To", " <>, a@old.test"},
	{"empty_quoted", "To", ` <"">, a@old.test`},
	{"unbalanced_lt", "To", " Joe <joe@old.test"},
	{"unbalanced_gt", "To", " joe@old.test>"},
	{"unbalanced_quote", "From", ` "Joe <joe@old.test>`},
	{"missing_comma", "To", " a@old.test b@old.test"},
	{"words_no_angle", "To", " Joe Bloggs joe@old.test"},
	{"colon_no_group", "To", " a:b@old.test"},
	{"multi_at", "To", " a@b@old.test"},
	{"domain_literal", "To", " joe@[127.0.0.1], j@old.test"},
	{"bang_path", "To", " old.test!user"},
	{"percent_hack", "To", " user%old.test"},
	{"long_phrase", "From", ` "` + long + `" <joe@old.test>`},
	{"long_comment_other", "To", " (" + long + ") a@other.test, b@old.test"},
	{"long_null", "To", " (" + long + ") <>, b@old.test"},
	{"reply_to", "Reply-To", " Joe <joe@old.test>"},
	{"sender", "Sender", " joe@old.test"},
	{"resent_from", "Resent-From", " joe@old.test"},
	{"resent_sender", "Resent-Sender", " joe@old.test"},
	{"resent_to", "Resent-To", " a@old.test, b@old.test"},
	{"resent_cc", "Resent-Cc", " a@old.test"},
	{"resent_reply_to", "Resent-Reply-To", " a@old.test"},
	{"errors_to", "Errors-To", " a@old.test"},
	{"mail_followup_to", "Mail-Followup-To", " list@old.test"},
	{"disposition_notification_to", "Disposition-Notification-To", " a@old.test"},
	{"apparently_to", "Apparently-To", " a@old.test"},
	{"lower_case_name", "from", " joe@old.test"},
	{"no_space", "To", "a@old.test"},
	{"blank_before_colon", "Reply-To ", " joe@old.test"},
	{"tab_and_crlf_fold", "To", "\ta@old.test,\n\tb@old.test (x\n y)"},
	// "To: aaaa@new.test, " and the next address end at byte 69 or 70.
	{"fold_under_70", "To", " aaaa@old.test, " + strings.Repeat("b", 41) + "@old.test"},
	{"fold_at_70", "To", " aaaa@old.test, " + strings.Repeat("b", 42) + "@old.test"},
	{"one_long_address", "To", " a@old.test, " + strings.Repeat("l", 80) + "@old.test, b@old.test"},
}

// addrheaderConfig is Postfix's main.cf: header rewriting for every
// client, canonical_maps a regexp table in DIR, relay to the sink.
const addrheaderConfig = `myorigin = corp.test
mydestination =
relay_domains = dest.test
local_header_rewrite_clients = static:all
canonical_maps = regexp:DIR/canonical
transport_maps = inline:{ dest.test=smtp:[127.0.0.1]:SINK }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
`

// oldToNew is the canonical table's rule, case-insensitive as regexp
// tables are by default.
var oldToNew = regexp.MustCompile(`(?i)^(.*)@old\.test$`)

// localRewrite is trivial-rewrite's local context (Qualify) with
// myorigin = corp.test, then canonical_maps.
func localRewrite(addr, external string) string {
	return oldToNew.ReplaceAllString(Qualify(addr, external, "corp.test"), "${1}@new.test")
}

// TestRewriteAgainstPostfix sends each header of the corpus through the
// real Postfix (cleanup with canonical_maps in the local rewriting
// context) to smtp-sink, and compares the header that arrived with what
// Rewrite makes of it; the warnings must be in Postfix's mail log.
func TestRewriteAgainstPostfix(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real Postfix")
	}
	t.Parallel()
	dir, err := os.MkdirTemp("", "postgate-addrheader-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Postfix's cleanup reads the table as user postfix
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "canonical"), []byte("/^(.*)@old\\.test$/ ${1}@new.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sink := harness.StartSink(t)
	pf := harness.StartPostfix(t, strings.NewReplacer("DIR", dir, "SINK", fmt.Sprint(sink.Port)).Replace(addrheaderConfig))

	c := harness.Dial(t, pf.Addr, "127.0.0.1")
	c.Expect(250, "EHLO client.partner.test")
	for _, h := range headerCases {
		c.Expect(250, "MAIL FROM:<sender@partner.test>")
		c.Expect(250, "RCPT TO:<rcpt@dest.test>")
		c.Expect(354, "DATA")
		var msg strings.Builder
		fmt.Fprintf(&msg, "Subject: %s\r\nMessage-ID: <%s@partner.test>\r\nDate: Fri, 4 Dec 2026 12:00:00 +0000\r\n", h.name, h.name)
		if !strings.EqualFold(strings.TrimSpace(h.field), "From") {
			msg.WriteString("From: sender@partner.test\r\n")
		}
		fmt.Fprintf(&msg, "%s:%s\r\n\r\nbody\r\n.\r\n", h.field, strings.ReplaceAll(h.value, "\n", "\r\n"))
		c.Send(msg.String())
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("%s: %d %s", h.name, code, text)
		}
	}
	c.Expect(221, "QUIT")

	// Wait for every case by name: a dump counted early may be one still
	// being written.
	subject := regexp.MustCompile(`(?m)^Subject: (\S+)\n`)
	got := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); len(got) < len(headerCases) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		for _, dump := range sink.Messages() {
			_, msg := harness.SinkBody(dump)
			if m := subject.FindStringSubmatch(msg); m != nil && strings.Contains(msg, "\n\nbody") {
				got[m[1]] = msg
			}
		}
	}
	var warnings []string
	for _, h := range headerCases {
		msg, ok := got[h.name]
		if !ok {
			t.Errorf("%s: did not reach the sink\n%s", h.name, pf.Log())
			continue
		}
		name, value, _ := SplitHeader(h.field + ":" + h.value)
		want := headerField(msg, name)
		line, changed, warns := Rewrite(name, value, DefaultTokenLimit, localRewrite)
		if !changed {
			line = name + ":" + value
		}
		if line != want {
			t.Errorf("%s:\n Postfix: %q\n ours:    %q", h.name, want, line)
		}
		warnings = append(warnings, warns...)
	}
	if len(warnings) == 0 {
		t.Error("no case made a warning")
	}
	log := pf.Log()
	for _, w := range warnings {
		if !strings.Contains(log, "warning: "+w) {
			t.Errorf("Postfix did not log %q\n%s", w, log)
		}
	}
}

// headerField returns the header field name of msg with its continuation
// lines, joined by "\n".
func headerField(msg, name string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if l == "" {
			break
		}
		if n, _, ok := SplitHeader(l); !ok || n != name {
			continue
		}
		j := i + 1
		for j < len(lines) && lines[j] != "" && (lines[j][0] == ' ' || lines[j][0] == '\t') {
			j++
		}
		return strings.Join(lines[i:j], "\n")
	}
	return ""
}
