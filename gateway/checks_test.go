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
		limits: mimeLimits{nestingLimit: 100, boundaryLimit: 2048, headerLimit: 102400}}}
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
	rec := recordTable{&asked}
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

type recordTable struct{ asked *[]string }

func (r recordTable) Lookup(_ context.Context, key string) (string, bool, error) {
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
