package restrictions

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"postgate/rules"
)

// keyRecorder is a table that finds nothing and records the keys asked.
type keyRecorder struct {
	fixed bool
	mu    sync.Mutex
	keys  []string
}

func (r *keyRecorder) Lookup(_ context.Context, key string) (string, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
	return "", false, nil
}

type fixedRecorder struct{ *keyRecorder }

func (fixedRecorder) FixedString() bool { return true }

func TestLookupKeyOrder(t *testing.T) {
	for _, c := range []struct {
		name   string
		list   string
		fixed  bool
		parent bool
		req    Request
		want   string
	}{
		{"recipient", "check_recipient_access", true, true, Request{Recipient: "User+Foo@Sub.Example.COM"},
			"user+foo@sub.example.com user@sub.example.com sub.example.com example.com com user+foo@ user@"},
		{"recipient dotted parents", "check_recipient_access", true, false, Request{Recipient: "user@sub.example.com"},
			"user@sub.example.com sub.example.com .example.com .com user@"},
		// Postfix's smtpd case-folds the resolved address (smtpd_resolve.c),
		// so pattern tables see it lowercased too.
		{"recipient pattern table", "check_recipient_access", false, true, Request{Recipient: "User+Foo@Sub.Example.COM"},
			"user+foo@sub.example.com"},
		{"unqualified recipient", "check_recipient_access", true, true, Request{Recipient: "user"},
			"user@origin.test origin.test test user@"},
		{"sender", "check_sender_access", true, true, Request{Sender: "s@x.test", Recipient: "r@y.test"},
			"s@x.test x.test test s@"},
		{"null sender", "check_sender_access", false, true, Request{Sender: "", Recipient: "r@y.test"},
			"<>"},
		{"client", "check_client_access", true, true, Request{ClientName: "mail.example.com", ClientAddr: netip.MustParseAddr("192.0.2.1"), Recipient: "r@y.test"},
			"mail.example.com example.com com 192.0.2.1 192.0.2 192.0 192"},
		{"client v6", "check_client_access", true, true, Request{ClientName: "unknown", ClientAddr: netip.MustParseAddr("2001:db8::1"), Recipient: "r@y.test"},
			"unknown 2001:db8::1 2001:db8: 2001:db8 2001"},
		{"client pattern table", "check_client_access", false, true, Request{ClientName: "mail.example.com", ClientAddr: netip.MustParseAddr("192.0.2.1"), Recipient: "r@y.test"},
			"mail.example.com 192.0.2.1"},
		{"helo", "check_helo_access", true, true, Request{Helo: "Mail.Example.COM.", Recipient: "r@y.test"},
			"mail.example.com. example.com. com."},
		{"helo address", "check_helo_access", true, true, Request{Helo: "192.0.2.1", Recipient: "r@y.test"},
			"192.0.2.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &keyRecorder{fixed: c.fixed}
			var tb rules.Table = rec
			if c.fixed {
				tb = fixedRecorder{rec}
			}
			l := mustCompile(t, map[string]string{"smtpd_recipient_restrictions": c.list + " test:table"}, Options{
				Myorigin:           "origin.test",
				RecipientDelimiter: "+",
				ParentDomainMatchesSubdomains: func(f string) bool {
					return c.parent && f == "smtpd_access_maps"
				},
				OpenTable: func(string) (rules.Table, error) { return tb, nil },
			})
			req := c.req
			l.Check(context.Background(), Rcpt, &req, nil)
			if got := strings.Join(rec.keys, " "); got != c.want {
				t.Errorf("keys\n got %s\nwant %s", got, c.want)
			}
		})
	}
}
