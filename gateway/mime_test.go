package gateway

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// mimeRecorder writes down what the parser reports, one string each:
// "P|M|N key" for a header of the primary, multipart or nested block,
// "B<offset> text" for a body line, "X key" for a nesting error.
type mimeRecorder struct{ got []string }

func (r *mimeRecorder) mimeHeader(block mimeBlock, key string, raw []byte, off int64) error {
	r.got = append(r.got, fmt.Sprintf("%c %s", "PMN"[block], key))
	return nil
}

func (r *mimeRecorder) mimeBody(text, raw []byte, off, bodyOff int64) error {
	r.got = append(r.got, fmt.Sprintf("B%d %s", bodyOff, text))
	return nil
}

func (r *mimeRecorder) mimeNesting(header string) { r.got = append(r.got, "X "+header) }

// parseMIME runs content (lines joined with CRLF) through the parser.
func parseMIME(t *testing.T, l mimeLimits, content string) []string {
	t.Helper()
	r := &mimeRecorder{}
	p := newMIMEParser(l, r)
	var off int64
	for _, line := range strings.SplitAfter(content, "\n") {
		if line == "" {
			continue
		}
		if err := p.line([]byte(line), off); err != nil {
			t.Fatal(err)
		}
		off += int64(len(line))
	}
	if err := p.end(); err != nil {
		t.Fatal(err)
	}
	return r.got
}

var defaultMIMELimits = mimeLimits{nestingLimit: 100, boundaryLimit: 2048, headerLimit: 102400, lineLimit: 2048}

// TestMIMEParser: which block each header belongs to and the body
// offsets (Postfix's body_offset: line length + 1, restarting in each
// body segment), as Postfix's mime_state reports them.
func TestMIMEParser(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limits  func(*mimeLimits)
		content []string
		want    []string
	}{{
		name:    "plain message",
		content: []string{"Subject: a", "\tfolded", "", "one", "two"},
		want:    []string{"P Subject: a\n\tfolded", "B0 ", "B1 one", "B5 two"},
	}, {
		name:    "obsolete name space colon, and a line that is not a header ends the block",
		content: []string{"Subject : x", "not a header", "body"},
		want:    []string{"P Subject: x", "B0 not a header", "B13 body"},
	}, {
		name: "multipart: prolog, parts with headers, boundary lines in the body, epilogue",
		content: []string{"MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="b1"`, "",
			"prolog", "--b1", "Content-Type: text/plain", "X-Part: 1", "", "part one", "--b1 trailing cruft",
			"", "part two", "--b1--", "epilogue"},
		want: []string{"P MIME-Version: 1.0", `P Content-Type: multipart/mixed; boundary="b1"`, "B0 ", "B1 prolog", "B8 --b1",
			"M Content-Type: text/plain", "M X-Part: 1", "B0 ", "B1 part one", "B10 --b1 trailing cruft",
			"B0 ", "B1 part two", "B0 --b1--", "B7 epilogue"},
	}, {
		name: "message/rfc822 part: the attached message's headers, then its body",
		content: []string{"Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Type: message/rfc822", "",
			"Subject: inner", "Content-Type: text/plain", "", "inner body", "--b--"},
		want: []string{"P Content-Type: multipart/mixed; boundary=b", "B0 ", "B1 --b", "M Content-Type: message/rfc822", "B0 ",
			"N Subject: inner", "N Content-Type: text/plain", "B0 ", "B1 inner body", "B0 --b--"},
	}, {
		name:    "top-level message/rfc822",
		content: []string{"Content-Type: Message/RFC822 (comment)", "", "Subject: inner", "", "x"},
		want:    []string{"P Content-Type: Message/RFC822 (comment)", "B0 ", "N Subject: inner", "B0 ", "B1 x"},
	}, {
		name: "multipart/digest parts default to message/rfc822, an unknown type keeps the default",
		content: []string{"Content-Type: multipart/digest; boundary=d", "", "--d", "", "Subject: one", "",
			"--d", "Content-Type: application/x-y", "", "Subject: two", "", "--d", "Content-Type: text/plain", "", "Subject: three"},
		want: []string{"P Content-Type: multipart/digest; boundary=d", "B0 ", "B1 --d", "B0 ", "N Subject: one", "B0 ",
			"B1 --d", "M Content-Type: application/x-y", "B0 ", "N Subject: two", "B0 ",
			"B1 --d", "M Content-Type: text/plain", "B0 ", "B1 Subject: three"},
	}, {
		name: "a boundary of an outer multipart closes the inner one; a part header block may end at a boundary",
		content: []string{"Content-Type: multipart/mixed; boundary=outer", "", "--outer",
			"Content-Type: multipart/alternative; boundary=inner", "", "--inner", "X-A: 1", "--outer", "X-B: 2", "", "--inner", "x"},
		want: []string{"P Content-Type: multipart/mixed; boundary=outer", "B0 ", "B1 --outer",
			"M Content-Type: multipart/alternative; boundary=inner", "B0 ", "B1 --inner", "M X-A: 1", "B0 --outer",
			"M X-B: 2", "B0 ", "B1 --inner", "B9 x"},
	}, {
		name:    "disable_mime_input_processing: all after the primary header is body",
		limits:  func(l *mimeLimits) { l.disabled = true },
		content: []string{"Content-Type: multipart/mixed; boundary=b", "", "--b", "Content-Type: text/evil", "", "x"},
		want: []string{"P Content-Type: multipart/mixed; boundary=b", "B0 ", "B1 --b", "B5 Content-Type: text/evil",
			"B29 ", "B30 x"},
	}, {
		name:   "mime_nesting_limit: past it a boundary is not pushed, and that is reported once",
		limits: func(l *mimeLimits) { l.nestingLimit = 1 },
		content: []string{"Content-Type: multipart/mixed; boundary=a", "", "--a", "Content-Type: multipart/mixed; boundary=b", "",
			"--b", "Content-Type: multipart/mixed; boundary=c", "", "--c", "Content-Type: multipart/mixed; boundary=d", "",
			"--d", "X-D: 1", "", "--c", "Content-Type: multipart/mixed; boundary=e", "", "--a--"},
		want: []string{"P Content-Type: multipart/mixed; boundary=a", "B0 ", "B1 --a",
			"M Content-Type: multipart/mixed; boundary=b", "B0 ", "B1 --b",
			"M Content-Type: multipart/mixed; boundary=c", "B0 ", "B1 --c",
			"X Content-Type: multipart/mixed; boundary=d", "M Content-Type: multipart/mixed; boundary=d", "B0 ", "B1 --d", "B5 X-D: 1", "B12 ",
			"B13 --c", "M Content-Type: multipart/mixed; boundary=e", "B0 ", "B0 --a--"},
	}, {
		name:    "mime_boundary_length_limit: a boundary is compared by its first bytes",
		limits:  func(l *mimeLimits) { l.boundaryLimit = 3 },
		content: []string{"Content-Type: multipart/mixed; boundary=abcdef", "", "--abcXYZ", "X-Part: 1", "", "--abc--"},
		want: []string{"P Content-Type: multipart/mixed; boundary=abcdef", "B0 ", "B1 --abcXYZ", "M X-Part: 1", "B0 ",
			"B0 --abc--"},
	}, {
		name:    "header_size_limit: folded lines past it are not in the key",
		limits:  func(l *mimeLimits) { l.headerLimit = 14 },
		content: []string{"Subject: 0123", "\tmore", "\tdropped", "", "x"},
		want:    []string{"P Subject: 0123\n\tmore", "B0 ", "B1 x"},
	}, {
		name:   "line_length_limit: a long line is pieces, each a record; a piece is no line start for a boundary",
		limits: func(l *mimeLimits) { l.lineLimit = 16 },
		content: []string{"Content-Type: multipart/x; boundary=b", "", "xxxxxxxxxxxxxxxx--b", "--b", "X-Long: 0123456789abcdef", "",
			"yyyyyyyyyyyyyyyy"},
		want: []string{"P Content-Type: multipart/x; boundary=b", "B0 ", "B1 xxxxxxxxxxxxxxxx", "B18 --b", "B22 --b",
			"M X-Long: 0123456789abcdef", "B0 ", "B1 yyyyyyyyyyyyyyyy", "B18 "},
	}, {
		name:    "a header at the end of the content, no line end",
		content: []string{"Subject: last"},
		want:    []string{"P Subject: last"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			l := defaultMIMELimits
			if tc.limits != nil {
				tc.limits(&l)
			}
			got := parseMIME(t, l, strings.Join(tc.content, "\r\n"))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

// TestMIMETokens: Content-Type values as Postfix's header_token splits them.
func TestMIMETokens(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{" multipart/mixed; boundary=x", "multipart / mixed (3) rest  boundary=x"},
		{` (c (nested) \) ) text/plain`, "text / plain (3)"},
		{`"quoted \" str";`, `"quoted \" str" (1) rest `},
		{" ; x", "(0) rest  x"},
		{" (only a comment) ", "(-1)"},
		{"a/b/c/d", "a / b (3)"},
	} {
		toks, rest, n := mimeTokens(tc.in)
		var b strings.Builder
		for _, tok := range toks[:max(n, 0)] {
			if tok.quoted {
				fmt.Fprintf(&b, "%q ", tok.value)
			} else {
				b.WriteString(tok.value + " ")
			}
		}
		fmt.Fprintf(&b, "(%d)", n)
		if n >= 0 && (rest != "" || strings.Contains(tc.in, ";")) {
			b.WriteString(" rest " + rest)
		}
		if b.String() != tc.want {
			t.Errorf("mimeTokens(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}

// FuzzMIMEParser: any content goes through the parser without a panic;
// every byte is reported once, in order, as a header or a body line, and
// the open boundaries stay within mime_nesting_limit.
func FuzzMIMEParser(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n",
		"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n--d--\r\n",
		"Content-Type: multipart/a; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/b; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/c; boundary=c\r\n\r\n--c\r\n--a--\r\n",
		"Content-Type: (x) \"multipart\" ; boundary = (y) \"q\\\"b\"\r\n\r\n--q\"b\r\n",
		"Content-Type : message/rfc822\r\n\r\nX: y\r\n\tz\r\nnot\r\n",
		"\r\n\r\n",
		"Content-Type: multipart/x; boundary=\r\n\r\n--\r\n---\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, content []byte, disabled bool) {
		l := mimeLimits{disabled: disabled, nestingLimit: 2, boundaryLimit: 8, headerLimit: 64, lineLimit: 16}
		r := &offsetRecorder{}
		p := newMIMEParser(l, r)
		var off int64
		for len(content[off:]) > 0 {
			line := content[off:]
			if i := bytes.IndexByte(line, '\n'); i >= 0 {
				line = line[:i+1]
			}
			if err := p.line(line, off); err != nil {
				t.Fatal(err)
			}
			if len(p.stack) > l.nestingLimit+2 {
				t.Fatalf("%d open boundaries, limit %d", len(p.stack), l.nestingLimit)
			}
			off += int64(len(line))
		}
		if err := p.end(); err != nil {
			t.Fatal(err)
		}
		if r.at != int64(len(content)) {
			t.Fatalf("reported up to %d of %d bytes", r.at, len(content))
		}
	})
}

// offsetRecorder checks that what is reported covers the content in order.
type offsetRecorder struct{ at int64 }

func (r *offsetRecorder) next(raw []byte, off int64) error {
	if off != r.at {
		return fmt.Errorf("reported at %d, expected %d", off, r.at)
	}
	r.at += int64(len(raw))
	return nil
}

func (r *offsetRecorder) mimeHeader(_ mimeBlock, _ string, raw []byte, off int64) error {
	return r.next(raw, off)
}

func (r *offsetRecorder) mimeBody(_, raw []byte, off, _ int64) error { return r.next(raw, off) }

func (r *offsetRecorder) mimeNesting(string) {}
