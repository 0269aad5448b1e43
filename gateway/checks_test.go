package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"postgate/rules"
)

// checksSession is a session with only what the content checks use.
func checksSession(t testing.TB, header, body string) *session {
	log, err := OpenMailLog("", io.Discard, "postgate", "mx.test")
	if err != nil {
		t.Fatal(err)
	}
	open := func(spec string) []rules.Table {
		tb, err := rules.Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		return []rules.Table{tb}
	}
	svc := &service{log: log, checks: contentChecks{header: open(header), mime: open(header), nested: open(header),
		body: open(body), bodySizeLimit: 51200,
		limits: mimeLimits{nestingLimit: 100, boundaryLimit: 2048, headerLimit: 102400, lineLimit: 2048}}}
	return &session{svc: svc, ctx: context.Background(), client: clientInfo{name: "unknown"}, proto: "ESMTP"}
}

// FuzzContentChecks: any content goes through the header and body scanner
// without a panic; edits stay inside the content, in order, and applying
// them gives content that still ends where a line ends.
func FuzzContentChecks(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		"Subject: a\r\n\tfolded\r\nX-Drop: y\r\n\r\nstrip\r\n",
		"no header line\r\nSubject: late\r\n",
		"Subject: no end",
		"\r\n\r\n\r\n",
		"X: " + strings.Repeat("y", 70000) + "\r\n\r\n" + strings.Repeat("z", 70000),
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Drop: 1\r\nContent-Type: message/rfc822\r\n\r\nSubject: a\r\n\r\nstrip\r\n--b--\r\n",
	} {
		f.Add([]byte(s))
	}
	s := checksSession(f, `pcre:{ {/^X-Drop:/ IGNORE}, {/^Subject: a/ PREPEND X-P: 1}, {/^X-R/ REPLACE X-New: 2}, {/^Subject: late/ REJECT} }`,
		`pcre:{ {/^strip$/ STRIP}, {/^z/ PREPEND before} }`)
	f.Fuzz(func(t *testing.T, content []byte) {
		res, err := s.runContentChecks(bytes.NewReader(content), int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		at := int64(0)
		for _, e := range res.edits {
			if e.off < at || e.off+e.n > int64(len(content)) {
				t.Fatalf("edit %+v out of order or range (at %d, size %d)", e, at, len(content))
			}
			at = e.off + e.n
		}
		out, err := io.ReadAll(editedContent(bytes.NewReader(content), int64(len(content)), res.edits))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.edits) == 0 && !bytes.Equal(out, content) {
			t.Fatal("content changed without edits")
		}
	})
}

// TestContentCheckKeys: what the tables are asked: a folded header whole
// with LF between its lines, body lines without line ends, no empty lines.
func TestContentCheckKeys(t *testing.T) {
	var asked []string
	rec := recordTable{asked: &asked}
	s := checksSession(t, "static:x", "static:x")
	s.svc.checks.header, s.svc.checks.mime, s.svc.checks.nested, s.svc.checks.body = []rules.Table{rec}, []rules.Table{rec}, []rules.Table{rec}, []rules.Table{rec}
	content := "Subject: a\r\n\tfolded\r\nMIME-Version: 1.0\r\n\r\nline one\r\n\r\nline two"
	if _, err := s.runContentChecks(strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	want := []string{"Subject: a\n\tfolded", "MIME-Version: 1.0", "line one", "line two"}
	if strings.Join(asked, "|") != strings.Join(want, "|") {
		t.Errorf("asked %q, want %q", asked, want)
	}
}

// TestContentCheckTables: which table list is asked for which header, as
// Postfix's cleanup chooses (MIME headers anywhere and all headers of body
// parts: mime_header_checks; other headers of an attached message:
// nested_header_checks), and body_checks_size_limit = 0 as no limit.
func TestContentCheckTables(t *testing.T) {
	var asked []string
	s := checksSession(t, "static:x", "static:x")
	s.svc.checks.header = []rules.Table{recordTable{&asked, "header"}}
	s.svc.checks.mime = []rules.Table{recordTable{&asked, "mime"}}
	s.svc.checks.nested = []rules.Table{recordTable{&asked, "nested"}}
	s.svc.checks.body = []rules.Table{recordTable{&asked, "body"}}
	s.svc.checks.bodySizeLimit = 0
	content := strings.Join([]string{"Subject: s", "Mime-Version: 1.0", "Content-Length: 9", "Content-Type: multipart/mixed; boundary=b", "",
		"--b", "X-Part: p", "Content-Type: message/rfc822", "", "Subject: n", "Content-ID: <i>", "", "x", "--b--", strings.Repeat("y", 60000), "late"}, "\r\n")
	if _, err := s.runContentChecks(strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	want := []string{"header Subject: s", "mime Mime-Version: 1.0", "header Content-Length: 9", "mime Content-Type: multipart/mixed; boundary=b",
		"body --b", "mime X-Part: p", "mime Content-Type: message/rfc822", "nested Subject: n", "mime Content-ID: <i>", "body x", "body --b--",
		"body late"}
	// The 60000 bytes line is pieces of line_length_limit (2048) bytes.
	pieces := []string{}
	for n := 60000; n > 0; n -= 2048 {
		pieces = append(pieces, "body "+strings.Repeat("y", min(n, 2048)))
	}
	want = append(append(want[:len(want)-1], pieces...), "body late")
	if strings.Join(asked, "|") != strings.Join(want, "|") {
		t.Errorf("asked\n  %q\nwant\n  %q", asked, want)
	}
}

type recordTable struct {
	asked *[]string
	name  string // prefixed to each key, when set
}

func (r recordTable) Lookup(_ context.Context, key string) (string, bool, error) {
	if r.name != "" {
		key = r.name + " " + key
	}
	*r.asked = append(*r.asked, key)
	return "", false, nil
}

// BenchmarkContentChecks: header and body checks over a plain single-part
// message (20 headers, 64 KiB of body lines), the common case the MIME
// parser must not slow down.
func BenchmarkContentChecks(b *testing.B) {
	var m strings.Builder
	for i := range 20 {
		fmt.Fprintf(&m, "X-Header-%d: value %d\r\n", i, i)
	}
	m.WriteString("\r\n")
	for m.Len() < 64<<10 {
		m.WriteString("The quick brown fox jumps over the lazy dog, line after line.\r\n")
	}
	content := m.String()
	s := checksSession(b, `pcre:{ {/^Subject: never/ REJECT} }`, `pcre:{ {/^never$/ REJECT} }`)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.runContentChecks(strings.NewReader(content), int64(len(content))); err != nil {
			b.Fatal(err)
		}
	}
}
