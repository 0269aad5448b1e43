package milter

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	o := Options{ConnectTimeout: 30 * time.Second, CommandTimeout: 30 * time.Second, ContentTimeout: 300 * time.Second,
		DefaultAction: ActionTempfail, QueueDirectory: "/var/spool/postgate"}
	ms, err := Parse("inet:127.0.0.1:8891, unix:/run/spamass.sock unix:private/dkim "+
		"{ inet:[::1]:11332, connect_timeout=10s, { command_timeout = 5 }, content_timeout=1m, default_action=accept }", o)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ network, address, action string }{
		{"tcp", "127.0.0.1:8891", "tempfail"}, {"unix", "/run/spamass.sock", "tempfail"},
		{"unix", "/var/spool/postgate/private/dkim", "tempfail"}, {"tcp", "[::1]:11332", "accept"},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d milters", len(ms))
	}
	for i, w := range want {
		if m := ms[i]; m.network != w.network || m.address != w.address || m.opts.DefaultAction != w.action {
			t.Errorf("milter %d: %s %s %s, want %+v", i, m.network, m.address, m.opts.DefaultAction, w)
		}
	}
	if o := ms[3].opts; o.ConnectTimeout != 10*time.Second || o.CommandTimeout != 5*time.Second || o.ContentTimeout != time.Minute {
		t.Errorf("timeouts: %v %v %v", o.ConnectTimeout, o.CommandTimeout, o.ContentTimeout)
	}
	if ms[0].opts.ContentTimeout != 300*time.Second {
		t.Errorf("override leaked to another milter: %v", ms[0].opts.ContentTimeout)
	}
	for _, bad := range []string{"tcp:127.0.0.1:1", "inet:127.0.0.1", "{ inet:127.0.0.1:1, timeout=1s }",
		"{ inet:127.0.0.1:1, default_action=bounce }", "{ inet:127.0.0.1:1, command_timeout=0 }", "{ inet:127.0.0.1:1"} {
		if _, err := Parse(bad, o); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestReplyText(t *testing.T) {
	for _, c := range []struct {
		code       int
		text       string
		softBounce bool
		want       string
		ok         bool
	}{
		{550, "5.7.1 Blocked by SpamAssassin", false, "550 5.7.1 Blocked by SpamAssassin", true},
		{554, "5.7.1 100%% spam, 50% sure", false, "554 5.7.1 100% spam, 50 sure", true},
		{550, "5.7.1 no", true, "450 4.7.1 no", true},
		{550, "4.7.1 mixed classes", false, "", false},
		{250, "2.0.0 fine", false, "", false},
	} {
		got, ok := replyText(c.code, c.text, c.softBounce)
		if got != c.want || ok != c.ok {
			t.Errorf("%d %q: %q %v, want %q %v", c.code, c.text, got, ok, c.want, c.ok)
		}
	}
}

func TestMessageEdits(t *testing.T) {
	content := "From: a@src.test\r\nSubject: one\r\n two\r\nX-Tag: 1\r\nX-Tag: 2\r\n\r\nbody\r\n"
	m, err := ParseMessage(strings.NewReader(content), int64(len(content)), "a@src.test", []string{"u@relay.test", "v@relay.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Header) != 4 || m.Header[1].Value != " one\r\n two" || milterValue(m.Header[1].Value) != "one\n two" {
		t.Fatalf("header: %+v", m.Header)
	}
	m.changeHeader("x-tag", 2, "changed\n\tfolded")
	m.changeHeader("X-Tag", 1, "")
	m.changeHeader("X-New", 3, "added")
	m.Header = append(m.Header, Field{Name: "X-Spam-Flag", Value: headerValue("NO")})
	m.Recipients = append(m.Recipients[:0], "v@relay.test", "w@relay.test")
	var b bytes.Buffer
	if _, err := b.ReadFrom(m.Reader()); err != nil {
		t.Fatal(err)
	}
	want := "From: a@src.test\r\nSubject: one\r\n two\r\nX-Tag: changed\r\n\tfolded\r\nX-New: added\r\nX-Spam-Flag: NO\r\n\r\nbody\r\n"
	if b.String() != want {
		t.Errorf("edited message:\n%q\nwant\n%q", b.String(), want)
	}
	m.newBody, m.bodyReplaced = appendCRLF(nil, []byte("new\nbody\r\n")), true
	b.Reset()
	b.ReadFrom(m.Body())
	if b.String() != "new\r\nbody\r\n" {
		t.Errorf("replaced body: %q", b.String())
	}
}
