package rules

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// edgeProfileTexts are the header_checks and body_checks of the relay
// benchmark's edge profile (test/bench/edge_test.go): 100 regexp and 100
// pcre header rules and 50 body rules, none of which matches ordinary mail.
func edgeProfileTexts() (hdrRegexp, hdrPCRE, body string) {
	rules := func(n int, rule func(i int) string) string {
		var text strings.Builder
		for i := range n {
			text.WriteString(rule(i) + "\n")
		}
		return text.String()
	}
	hdrRegexp = rules(100, func(i int) string {
		return fmt.Sprintf("/^Subject:.*(casino|lottery)-offer-%d[^0-9]/ REJECT offer %d", i, i)
	})
	hdrPCRE = rules(100, func(i int) string {
		return fmt.Sprintf("/^X-Campaign-%d:\\s*(?!internal)\\S+/i REJECT campaign %d", i, i)
	})
	body = rules(50, func(i int) string {
		return fmt.Sprintf("/pharmacy-deal-%d[0-9]+/ DISCARD deal %d", i, i)
	})
	return hdrRegexp, hdrPCRE, body
}

// edgeProfileTables opens the edge profile's tables.
func edgeProfileTables(tb testing.TB) (headers []*regexpTable, body *regexpTable) {
	tb.Helper()
	open := func(d *patternDialect, text string) *regexpTable {
		rules, err := parsePatternTable(d, "edge", text, OpenOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		return &regexpTable{dialect: d, name: "edge", src: staticRules[regexpRule](rules)}
	}
	hdrRegexp, hdrPCRE, bodyText := edgeProfileTexts()
	return []*regexpTable{open(regexpDialect, hdrRegexp), open(pcreDialect, hdrPCRE)}, open(regexpDialect, bodyText)
}

// benchHeaders is a message's header block as smtp-source and Outlook
// send it; a folded header is one key with its newlines.
var benchHeaders = []string{
	"Received: from [192.0.2.10] (client.example.net [192.0.2.10])\n\tby mx.example.com (Postfix) with ESMTP id 4QxYz12abc\n\tfor <u@relay.test>; Fri, 4 Dec 2026 12:00:00 +0000 (UTC)",
	"From: Alice Example <alice@example.net>",
	"To: Bob Example <u@relay.test>",
	"Date: Fri, 4 Dec 2026 12:00:00 +0000",
	"Message-ID: <20261204120000.12345@client.example.net>",
	"Subject: Quarterly report and the meeting on Monday",
	"MIME-Version: 1.0",
	"Content-Type: text/plain; charset=\"us-ascii\"",
}

// benchBody is 30 body lines of 76 characters.
var benchBody = func() []string {
	const text = "The quarterly figures are attached; please review them before the meeting "
	lines := make([]string, 30)
	for i := range lines {
		lines[i] = fmt.Sprintf("%02d %s", i, text)[:76]
	}
	return lines
}()

// BenchmarkHeaderChecksProfile looks one message's headers and body lines
// up in the edge profile's tables, as header_checks and body_checks do.
// One op is one message.
func BenchmarkHeaderChecksProfile(b *testing.B) {
	headers, body := edgeProfileTables(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for _, h := range benchHeaders {
			for _, t := range headers {
				if _, ok, err := t.Lookup(ctx, h); ok || err != nil {
					b.Fatalf("%s matched %q (%v)", t, h, err)
				}
			}
		}
		for _, l := range benchBody {
			if _, ok, err := body.Lookup(ctx, l); ok || err != nil {
				b.Fatalf("%s matched %q (%v)", body, l, err)
			}
		}
	}
}
