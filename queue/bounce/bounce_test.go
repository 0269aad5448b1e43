package bounce

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWanted(t *testing.T) {
	tests := []struct {
		notify                  string
		failure, delay, success bool
	}{
		{"", true, true, false},
		{"NEVER", false, false, false},
		{"never", false, false, false},
		{"FAILURE", true, false, false},
		{"DELAY", false, true, false},
		{"SUCCESS", false, false, true},
		{"FAILURE,DELAY", true, true, false},
		{"SUCCESS,FAILURE", true, false, true},
		{"SUCCESS,FAILURE,DELAY", true, true, true},
		{"success, delay", false, true, true},
		{"NEVER,FAILURE", true, false, false}, // invalid per RFC 3461; the named class wins
		{"BOGUS", true, true, false},          // nothing recognised: as if absent
	}
	for _, tt := range tests {
		t.Run(tt.notify, func(t *testing.T) {
			rs := []Rcpt{{Addr: "a@example.com", Notify: tt.notify}}
			for k, want := range map[Kind]bool{Failure: tt.failure, Delay: tt.delay, Success: tt.success} {
				got := len(Wanted(k, rs)) == 1
				if got != want {
					t.Errorf("Wanted(%v, NOTIFY=%q) = %v, want %v", k, tt.notify, got, want)
				}
			}
		})
	}
	mixed := []Rcpt{
		{Addr: "1@x", Notify: ""},
		{Addr: "2@x", Notify: "NEVER"},
		{Addr: "3@x", Notify: "SUCCESS"},
		{Addr: "4@x", Notify: "FAILURE,SUCCESS"},
	}
	var got []string
	for _, r := range Wanted(Failure, mixed) {
		got = append(got, r.Addr)
	}
	if want := []string{"1@x", "4@x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Wanted(Failure) = %v, want %v (in order)", got, want)
	}
	if Wanted(Failure, nil) != nil {
		t.Error("Wanted of nothing is not nil")
	}
}

func TestLineWrap(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "short",
			in:   "<a@example.com>: User unknown",
			want: []string{"<a@example.com>: User unknown"},
		},
		{
			name: "postfix reply",
			in:   "<user@example.com>: host mx.example.com[192.0.2.5] said: 550 5.1.1 <user@example.com>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)",
			want: []string{
				"<user@example.com>: host mx.example.com[192.0.2.5] said: 550 5.1.1",
				"    <user@example.com>: Recipient address rejected: User unknown in local",
				"    recipient table (in reply to RCPT TO command)",
			},
		},
		{
			name: "long word is not broken",
			in:   "x " + strings.Repeat("y", 100) + " z",
			want: []string{"x", "    " + strings.Repeat("y", 100), "    z"},
		},
		{
			name: "trailing blanks stripped",
			in:   "a b   ",
			want: []string{"a b"},
		},
		{
			name: "empty",
			in:   "",
			want: []string{""},
		},
		{
			name: "exactly 79",
			in:   strings.Repeat("a", 39) + " " + strings.Repeat("b", 39),
			want: []string{strings.Repeat("a", 39) + " " + strings.Repeat("b", 39)},
		},
		{
			name: "80 breaks",
			in:   strings.Repeat("a", 39) + " " + strings.Repeat("b", 40),
			want: []string{strings.Repeat("a", 39), "    " + strings.Repeat("b", 40)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lineWrap(tt.in, wrapLength, wrapIndent)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lineWrap:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	o := testOptions()
	r := []Rcpt{userUnknown}
	if _, err := Build(o, Failure, nil, r); err == nil {
		t.Error("nil original accepted")
	}
	if _, err := Build(o, Kind(0), testOriginal(), r); err == nil {
		t.Error("zero Kind accepted")
	}
	if _, err := Build(Options{}, Failure, testOriginal(), r); err == nil {
		t.Error("empty myhostname accepted")
	}
	null := testOriginal()
	null.Sender = ""
	if _, err := Build(o, Failure, null, r); !errors.Is(err, ErrNullSender) {
		t.Errorf("null sender: %v, want ErrNullSender", err)
	}
	never := userUnknown
	never.Notify = "NEVER"
	if _, err := Build(o, Failure, testOriginal(), []Rcpt{never}); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("NOTIFY=NEVER: %v, want ErrNoRecipients", err)
	}
	if _, err := Build(o, Success, testOriginal(), r); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("success without NOTIFY=SUCCESS: %v, want ErrNoRecipients", err)
	}
	if _, err := BuildPostmaster(o, Failure, testOriginal(), nil, "postmaster", false); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("postmaster copy of nobody: %v, want ErrNoRecipients", err)
	}
	// The postmaster copy reports a NOTIFY=NEVER recipient all the same.
	if _, err := BuildPostmaster(o, Failure, testOriginal(), []Rcpt{never}, "", false); err != nil {
		t.Errorf("postmaster copy: %v", err)
	}
}

// TestOddContent builds every kind of notice from content that is empty,
// has no header/body separator, no header at all, bare LFs, or no final
// line end, and checks that nothing panics and the report is still closed.
func TestOddContent(t *testing.T) {
	contents := map[string][]byte{
		"nil":          nil,
		"empty":        {},
		"no separator": []byte("Subject: x\r\nFrom: a@b\r\n"),
		"no header":    []byte("just a body line\r\nand another\r\n"),
		"bare lf":      []byte("Subject: x\nMessage-ID: <a@b>\n\nbody\n"),
		"no final eol": []byte("Subject: x\r\n\r\nbody"),
		"only crlf":    []byte("\r\n"),
		"folded msgid": []byte("Message-ID:\r\n <folded@example>\r\n\r\nb\r\n"),
		"binary junk":  {0xff, 0xfe, 0x00, '\r', '\n', 0x80},
	}
	for name, c := range contents {
		for _, k := range []Kind{Failure, Delay, Success} {
			o := testOriginal()
			o.Content = c
			rs := []Rcpt{{Addr: "a@example.com", Notify: "SUCCESS,FAILURE,DELAY", Status: "5.0.0"}}
			out, err := Build(testOptions(), k, o, rs)
			if err != nil {
				t.Fatalf("%s/%v: %v", name, k, err)
			}
			if !bytes.HasSuffix(out, []byte("--\r\n")) {
				t.Errorf("%s/%v: report not closed", name, k)
			}
			pm, err := BuildPostmaster(testOptions(), k, o, rs, "postmaster", true)
			if err != nil || !bytes.HasSuffix(pm, []byte("--\r\n")) {
				t.Errorf("%s/%v postmaster: %v", name, k, err)
			}
		}
	}
	o := testOriginal()
	o.Content = nil
	out, _ := Build(testOptions(), Failure, o, []Rcpt{userUnknown})
	if !bytes.Contains(out, []byte("\r\n\t--- Undelivered message unavailable ---\r\n")) {
		t.Error("no placeholder for a missing original")
	}
	o.Content = []byte("Message-ID:\r\n <folded@example>\r\n\r\nb\r\n")
	out, _ = Build(testOptions(), Failure, o, []Rcpt{userUnknown})
	if !bytes.Contains(out, []byte("\r\nIn-Reply-To: <folded@example>\r\n")) {
		t.Error("folded Message-ID not used for threading")
	}
}

func TestHeadersOnlyStopsAtBody(t *testing.T) {
	o := testOriginal()
	o.RET = "hdrs"
	out, err := Build(testOptions(), Failure, o, []Rcpt{userUnknown})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("the report is attached")) {
		t.Error("RET=HDRS returned the body")
	}
	if !bytes.Contains(out, []byte("\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n--")) {
		t.Error("headers-only attachment should end at the last header line")
	}
}

func TestNoMessageID(t *testing.T) {
	o := testOriginal()
	o.Content = crlf("Subject: none\n\nbody\n")
	out, err := Build(testOptions(), Failure, o, []Rcpt{userUnknown})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("References:")) || bytes.Contains(out, []byte("In-Reply-To:")) {
		t.Error("threading headers without an original Message-ID")
	}
}

func TestMailName(t *testing.T) {
	opt := testOptions()
	opt.MailName = "post gate"
	out, err := Build(opt, Failure, testOriginal(), []Rcpt{noRoute})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\r\nX-post-gate-Queue-ID: 8045F2AB23\r\n", "\r\nX-post-gate-Sender: rfc822; sender@example.org\r\n", "\r\nDiagnostic-Code: X-post-gate; Host or domain"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestBoundaryCollision(t *testing.T) {
	o := testOriginal()
	b := "8045F2AB23.1763460062/mail.example.test"
	o.Content = crlf("Subject: x\n\n--" + b + "--\nforged end\n")
	out, err := Build(testOptions(), Failure, o, []Rcpt{userUnknown})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`boundary="`+b+`"`)) {
		t.Error("boundary found in the returned message was used")
	}
}

func TestSanitising(t *testing.T) {
	r := userUnknown
	r.Reason = "bad\r\nInjected: header\x00 \xff end"
	r.Diagnostic = "smtp; 550 evil\r\nX-Injected: 1"
	out, err := Build(testOptions(), Failure, testOriginal(), []Rcpt{r})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("\r\nInjected:")) || bytes.Contains(out, []byte("\r\nX-Injected:")) {
		t.Errorf("line break in a reason reached the notice:\n%s", out)
	}
	if !bytes.Contains(out, []byte("<rcpt@example.com>: bad??Injected: header? ? end")) {
		t.Errorf("reason not masked:\n%s", out)
	}
}

func TestNoticeSender(t *testing.T) {
	o := testOptions()
	if got := NoticeSender(o, false); got != "" {
		t.Errorf("sender notice from %q", got)
	}
	if got := NoticeSender(o, true); got != "double-bounce@mail.example.test" {
		t.Errorf("postmaster notice from %q", got)
	}
	o.DoubleBounceSender = "bounce-bounce"
	if got := NoticeSender(o, true); got != "bounce-bounce@mail.example.test" {
		t.Errorf("postmaster notice from %q", got)
	}
}

func TestDelayTexts(t *testing.T) {
	opt := testOptions()
	opt.DelayWarningTime = 90 * time.Minute
	opt.MaximalQueueLifetime = 3*24*time.Hour + 12*time.Hour
	out, err := Build(opt, Delay, testOriginal(), []Rcpt{stillDeferred})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Your message could not be delivered for more than 1 hour(s).",
		"It will be retried until it is 3 day(s) old.",
		"Will-Retry-Until: Fri, 21 Nov 2025 17:31:02 +0000 (UTC)",
		"Arrival-Date: Tue, 18 Nov 2025 05:31:02 +0000 (UTC)",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestQuoteAddr(t *testing.T) {
	for in, want := range map[string]string{
		"user@example.com":       "user@example.com",
		"john smith@example.com": `"john smith"@example.com`,
		`a"b@example.com`:        `"a\"b"@example.com`,
		".lead@example.com":      `".lead"@example.com`,
		`"q x"@example.com`:      `"q x"@example.com`,
		"jörg@example.org":       "jörg@example.org",
		"postmaster":             "postmaster",
	} {
		if got := quoteAddr(in, true); got != want {
			t.Errorf("quoteAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
