package restrictions

import (
	"context"
	"strings"
	"testing"
)

func newTestEval(t *testing.T, o Options) *eval {
	t.Helper()
	l, err := Compile(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return &eval{ctx: context.Background(), l: l, req: &Request{}, txn: &Txn{}}
}

func TestReject(t *testing.T) {
	long := strings.Repeat("x", 600)
	for _, c := range []struct {
		name       string
		soft, warn bool
		dir        *deferral
		cls        errClass
		code       int
		dsn, text  string
		want       string // e.reply, "" when not rejected
		what       string // log action
	}{
		{name: "plain", code: 554, dsn: "5.7.1", text: "x", want: "554 5.7.1 x", what: "reject"},
		{name: "dsn digit follows code", code: 450, dsn: "5.1.1", text: "x", want: "450 4.1.1 x", what: "reject"},
		{name: "dsn digit follows 5xx", code: 550, dsn: "4.7.1", text: "x", want: "550 5.7.1 x", what: "reject"},
		{name: "code too low", code: 399, dsn: "5.7.1", text: "x", want: "450 4.7.1 Service unavailable", what: "reject"},
		{name: "code too high", code: 600, dsn: "5.7.1", text: "x", want: "450 4.7.1 Service unavailable", what: "reject"},
		{name: "bad dsn", code: 550, dsn: "5.7", text: "x", want: "450 4.7.1 Service unavailable", what: "reject"},
		{name: "soft bounce", soft: true, code: 554, dsn: "5.7.1", text: "x", want: "454 4.7.1 x", what: "reject"},
		{name: "soft bounce leaves 4xx", soft: true, code: 450, dsn: "4.7.1", text: "x", want: "450 4.7.1 x", what: "reject"},
		{name: "non-printable", code: 554, dsn: "5.7.1", text: "a\tb\x01c\xffd é", want: "554 5.7.1 a b c d é", what: "reject"},
		{name: "truncated", code: 554, dsn: "5.7.1", text: long, want: "554 5.7.1 " + long[:500], what: "reject"},
		{name: "warn_if_reject", warn: true, code: 554, dsn: "5.7.1", text: "x", what: "reject_warning"},
		{name: "warn_if_reject never hides software errors", warn: true, cls: classSoftware, code: 451, dsn: "4.3.5", text: "x", want: "451 4.3.5 x", what: "reject"},
		{name: "warn_if_reject never hides data errors", warn: true, cls: classData, code: 451, dsn: "4.3.0", text: "x", want: "451 4.3.0 x", what: "reject"},
		{name: "defer_if_reject converts 5xx", dir: &deferral{active: true, code: 450, dsn: "4.7.0", reason: "saved"}, code: 554, dsn: "5.7.1", text: "x", want: "450 4.7.0 saved", what: "reject"},
		{name: "defer_if_reject leaves 4xx", dir: &deferral{active: true, code: 450, dsn: "4.7.0", reason: "saved"}, code: 451, dsn: "4.3.5", text: "x", want: "451 4.3.5 x", what: "reject"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEval(t, Options{SoftBounce: c.soft})
			if c.warn {
				e.warnIfReject = 1
			}
			if c.dir != nil {
				e.dir = *c.dir
			}
			st := e.reject(c.cls, c.code, c.dsn, c.text)
			got := ""
			if st == reject {
				got = e.reply.String()
			}
			if got != c.want {
				t.Errorf("status %v reply %q, want %q", st, got, c.want)
			}
			last := e.v.Log[len(e.v.Log)-1]
			if last.Kind != LogAction || last.What != c.what {
				t.Errorf("last log %+v, want %s", last, c.what)
			}
			if n := len(e.reply.String()); n > maxReplyBytes {
				t.Errorf("reply is %d bytes", n)
			}
		})
	}
}

func TestDSNFix(t *testing.T) {
	e := newTestEval(t, Options{})
	for _, c := range []struct{ dsn, sender, rcpt, other string }{
		{"5.1.1", "5.1.7", "5.1.1", "5.0.0"},
		{"5.1.2", "5.1.8", "5.1.2", "5.0.0"},
		{"5.1.3", "5.1.7", "5.1.3", "5.0.0"},
		{"5.1.4", "5.1.7", "5.1.4", "5.0.0"},
		{"4.1.5", "4.1.0", "4.1.5", "4.0.0"},
		{"5.1.6", "5.1.7", "5.1.6", "5.0.0"},
		{"5.1.7", "5.1.7", "5.1.3", "5.0.0"},
		{"5.1.8", "5.1.8", "5.1.2", "5.0.0"},
		{"5.1.9", "5.1.0", "5.1.0", "5.0.0"},
		{"5.1.10", "5.1.0", "5.1.0", "5.0.0"},
		{"5.7.1", "5.7.1", "5.7.1", "5.7.1"},
		{"4.2.2", "4.2.2", "4.2.2", "4.2.2"},
	} {
		for class, want := range map[string]string{rcSender: c.sender, rcRecipient: c.rcpt, rcClient: c.other, rcHelo: c.other} {
			if got := e.dsnFix(c.dsn, class); got != want {
				t.Errorf("dsnFix(%s, %s) = %s, want %s", c.dsn, class, got, want)
			}
		}
	}
}
