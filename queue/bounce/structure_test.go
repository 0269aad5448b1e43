package bounce

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
)

// TestStructure parses every golden notice as a mail reader would and
// checks the RFC 3464 shape: a multipart/report of three parts, the
// delivery-status fields, and the returned message or its headers.
func TestStructure(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Error("bare LF in output; every line must end in CRLF")
			}
			msg, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Header
			for name, want := range map[string]string{
				"Subject":        tc.subject,
				"Auto-Submitted": tc.autoSubmitted,
				"MIME-Version":   "1.0",
				"From":           "Mail Delivery System <MAILER-DAEMON@mail.example.test>",
			} {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if _, err := h.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@mail.example.test>") {
				t.Errorf("Message-Id: %q", id)
			}
			mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
			if err != nil {
				t.Fatal(err)
			}
			if mt != "multipart/report" || params["report-type"] != "delivery-status" || params["boundary"] == "" {
				t.Fatalf("Content-Type: %s %v", mt, params)
			}

			mr := multipart.NewReader(msg.Body, params["boundary"])
			var parts []*multipart.Part
			var bodies [][]byte
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(p)
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, p)
				bodies = append(bodies, b)
			}
			if len(parts) != 3 {
				t.Fatalf("%d parts, want 3", len(parts))
			}

			// Part 1: the human-readable notification.
			if ct, _, _ := mime.ParseMediaType(parts[0].Header.Get("Content-Type")); ct != "text/plain" {
				t.Errorf("part 1 Content-Type %q", ct)
			}
			if d := parts[0].Header.Get("Content-Description"); d != "Notification" {
				t.Errorf("part 1 Content-Description %q", d)
			}
			if n := bytes.Count(bodies[0], []byte("\r\n<")); n != tc.rcpts {
				t.Errorf("part 1 reports %d recipients, want %d:\n%s", n, tc.rcpts, bodies[0])
			}
			for _, l := range strings.Split(string(bodies[0]), "\r\n") {
				if len(l) > 79 && strings.Contains(l, " ") && strings.Contains(l[:79], " ") {
					t.Errorf("part 1 line not wrapped at 79: %q", l)
				}
			}

			// Part 2: the delivery-status report.
			if ct := parts[1].Header.Get("Content-Type"); ct != tc.reportType {
				t.Errorf("part 2 Content-Type %q, want %q", ct, tc.reportType)
			}
			tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(bodies[1])))
			perMsg, err := tr.ReadMIMEHeader()
			if err != nil {
				t.Fatalf("per-message fields: %v\n%s", err, bodies[1])
			}
			if got := perMsg.Get("Reporting-MTA"); got != "dns; mail.example.test" {
				t.Errorf("Reporting-MTA %q", got)
			}
			if perMsg.Get("X-Postfix-Queue-ID") == "" || perMsg.Get("X-Postfix-Sender") == "" {
				t.Errorf("per-message fields %v", perMsg)
			}
			var groups []textproto.MIMEHeader
			for {
				g, err := tr.ReadMIMEHeader()
				if len(g) > 0 {
					groups = append(groups, g)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("per-recipient fields: %v\n%s", err, bodies[1])
				}
			}
			if len(groups) != tc.rcpts {
				t.Fatalf("%d per-recipient groups, want %d\n%s", len(groups), tc.rcpts, bodies[1])
			}
			g := groups[0]
			if got := g.Get("Action"); got != tc.action {
				t.Errorf("Action %q, want %q", got, tc.action)
			}
			if got := g.Get("Status"); got != tc.status {
				t.Errorf("Status %q, want %q", got, tc.status)
			}
			if got := g.Get("Final-Recipient"); got != tc.final {
				t.Errorf("Final-Recipient %q, want %q", got, tc.final)
			}
			if got := g.Get("Diagnostic-Code"); !strings.HasPrefix(got, tc.diag) {
				t.Errorf("Diagnostic-Code %q, want prefix %q", got, tc.diag)
			}
			if tc.action == "delayed" && g.Get("Will-Retry-Until") == "" {
				t.Error("delay report without Will-Retry-Until")
			}

			// Part 3: the original, or its headers.
			if ct := parts[2].Header.Get("Content-Type"); ct != tc.attachType {
				t.Errorf("part 3 Content-Type %q, want %q", ct, tc.attachType)
			}
			att := bodies[2]
			if !bytes.HasPrefix(att, []byte("Return-Path: <")) {
				t.Errorf("part 3 does not start with Return-Path: %q", firstLine(att))
			}
			inner, err := mail.ReadMessage(bytes.NewReader(att))
			if err != nil {
				t.Fatalf("part 3: %v", err)
			}
			if inner.Header.Get("Message-ID") == "" {
				t.Error("part 3 lost the original Message-ID")
			}
			body, _ := io.ReadAll(inner.Body)
			full := tc.attachType == "message/rfc822" || tc.attachType == "message/global"
			if full && len(body) == 0 {
				t.Error("part 3 should hold the whole message but has no body")
			}
			if !full && len(body) != 0 {
				t.Errorf("part 3 should hold headers only, has body %q", body)
			}
		})
	}
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
