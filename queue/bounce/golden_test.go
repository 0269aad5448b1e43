package bounce

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var (
	testNow     = time.Date(2025, 11, 18, 10, 1, 2, 0, time.UTC)
	testArrival = time.Date(2025, 11, 18, 5, 31, 2, 0, time.UTC)
)

func testOptions() Options {
	return Options{
		Myhostname:           "mail.example.test",
		BounceSizeLimit:      DefaultBounceSizeLimit,
		Now:                  func() time.Time { return testNow },
		MaximalQueueLifetime: 5 * 24 * time.Hour,
		DelayWarningTime:     4 * time.Hour,
	}
}

// crlf turns a readable LF literal into stored CRLF content.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

const testHeader = `Received: from client.example.org (client.example.org [198.51.100.7])
	by mail.example.test (postgate) with ESMTPS id 8045F2AB23
	for <rcpt@example.com>; Tue, 18 Nov 2025 05:31:02 +0000 (UTC)
From: Sender <sender@example.org>
To: rcpt@example.com, other@example.net
Subject: Quarterly report
Message-ID: <20251118053100.12345@client.example.org>
Date: Tue, 18 Nov 2025 05:31:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
`

const testBody = `
Hello,

the report is attached.

-- 
Sender
`

func testOriginal() *Original {
	return &Original{
		QueueID: "8045F2AB23",
		Sender:  "sender@example.org",
		Arrival: testArrival,
		Content: crlf(testHeader + testBody),
	}
}

var userUnknown = Rcpt{
	Addr:       "rcpt@example.com",
	ORCPT:      "rfc822;rcpt@example.com",
	Status:     "5.1.1",
	Diagnostic: "smtp; 550 5.1.1 <rcpt@example.com>: Recipient address rejected: User unknown in local recipient table",
	RemoteMTA:  "mx.example.com",
	Reason:     "host mx.example.com[192.0.2.5] said: 550 5.1.1 <rcpt@example.com>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)",
}

var noRoute = Rcpt{
	Addr:     "other@example.net",
	OrigAddr: "alias@example.org",
	Notify:   "FAILURE",
	Status:   "5.4.4",
	Reason:   "Host or domain name not found. Name service error for name=example.net type=MX: Host not found",
}

var stillDeferred = Rcpt{
	Addr:       "rcpt@example.com",
	Action:     "delayed",
	Status:     "4.4.1",
	Diagnostic: "",
	Reason:     "connect to mx.example.com[192.0.2.5]:25: Connection timed out",
}

var delivered = Rcpt{
	Addr:       "rcpt@example.com",
	ORCPT:      "rfc822;rcpt@example.com",
	Notify:     "SUCCESS,FAILURE",
	Action:     "relayed",
	Status:     "2.0.0",
	Diagnostic: "smtp; 250 2.0.0 Ok: queued as 4F2A1C0E3B",
	RemoteMTA:  "mx.example.com",
	Reason:     "delivery via mx.example.com[192.0.2.5]:25: 250 2.0.0 Ok: queued as 4F2A1C0E3B",
}

// goldenCase is one notice, with what the structural test expects of it.
type goldenCase struct {
	name  string
	build func() ([]byte, error)
	// expectations for TestStructure
	action, status, diag, final string
	reportType                  string // message/delivery-status or message/global-delivery-status
	attachType                  string // message/rfc822, text/rfc822-headers, message/global, message/global-headers
	subject, autoSubmitted      string
	rcpts                       int
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "failure_one",
			build: func() ([]byte, error) {
				return Build(testOptions(), Failure, testOriginal(), []Rcpt{userUnknown})
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1 <rcpt@example.com>:", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "message/rfc822",
			subject: "Undelivered Mail Returned to Sender", autoSubmitted: "auto-replied", rcpts: 1,
		},
		{
			name: "failure_two",
			build: func() ([]byte, error) {
				o := testOriginal()
				o.EnvID = "QQ314159"
				// The third recipient said NOTIFY=NEVER and is left out.
				never := userUnknown
				never.Addr, never.ORCPT, never.Notify = "quiet@example.com", "", "NEVER"
				return Build(testOptions(), Failure, o, []Rcpt{userUnknown, never, noRoute})
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1 <rcpt@example.com>:", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "message/rfc822",
			subject: "Undelivered Mail Returned to Sender", autoSubmitted: "auto-replied", rcpts: 2,
		},
		{
			name: "failure_ret_hdrs",
			build: func() ([]byte, error) {
				o := testOriginal()
				o.RET = "HDRS"
				return Build(testOptions(), Failure, o, []Rcpt{userUnknown})
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "text/rfc822-headers",
			subject: "Undelivered Mail Returned to Sender", autoSubmitted: "auto-replied", rcpts: 1,
		},
		{
			name: "failure_oversize",
			build: func() ([]byte, error) {
				opt := testOptions()
				opt.BounceSizeLimit = 400
				o := testOriginal()
				o.Content = crlf(testHeader + testBody + strings.Repeat("padding line to go past bounce_size_limit\n", 10))
				return Build(opt, Failure, o, []Rcpt{userUnknown})
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "text/rfc822-headers",
			subject: "Undelivered Mail Returned to Sender", autoSubmitted: "auto-replied", rcpts: 1,
		},
		{
			name: "delay",
			build: func() ([]byte, error) {
				return Build(testOptions(), Delay, testOriginal(), []Rcpt{stillDeferred})
			},
			action: "delayed", status: "4.4.1", diag: "X-Postfix; connect to mx.example.com[192.0.2.5]:25:", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "text/rfc822-headers",
			subject: "Delayed Mail (still being retried)", autoSubmitted: "auto-replied", rcpts: 1,
		},
		{
			name: "success",
			build: func() ([]byte, error) {
				return Build(testOptions(), Success, testOriginal(), []Rcpt{delivered, userUnknown})
			},
			action: "relayed", status: "2.0.0", diag: "smtp; 250 2.0.0 Ok", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "text/rfc822-headers",
			subject: "Successful Mail Delivery Report", autoSubmitted: "auto-replied", rcpts: 1,
		},
		{
			name: "postmaster_copy",
			build: func() ([]byte, error) {
				never := userUnknown
				never.Notify = "NEVER"
				return BuildPostmaster(testOptions(), Failure, testOriginal(), []Rcpt{never}, "postmaster", false)
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "text/rfc822-headers",
			subject: "Postmaster Copy: Undelivered Mail", autoSubmitted: "auto-generated", rcpts: 1,
		},
		{
			name: "postmaster_delay",
			build: func() ([]byte, error) {
				return BuildPostmaster(testOptions(), Delay, testOriginal(), []Rcpt{stillDeferred}, "postmaster@example.test", false)
			},
			action: "delayed", status: "4.4.1", diag: "X-Postfix; connect to", final: "rfc822; rcpt@example.com",
			reportType: "message/delivery-status", attachType: "text/rfc822-headers",
			subject: "Postmaster Warning: Delayed Mail", autoSubmitted: "auto-generated", rcpts: 1,
		},
		{
			name: "double_bounce",
			build: func() ([]byte, error) {
				// A non-delivery notice (from <>) that could not be
				// delivered to the original sender.
				bounced, err := Build(testOptions(), Failure, testOriginal(), []Rcpt{userUnknown})
				if err != nil {
					return nil, err
				}
				o := &Original{QueueID: "3F1A21C0E4B", Sender: "", Arrival: testNow, Content: bounced}
				r := Rcpt{
					Addr:       "sender@example.org",
					Status:     "5.1.1",
					Diagnostic: "smtp; 550 5.1.1 <sender@example.org>: User unknown",
					RemoteMTA:  "mx.example.org",
					Reason:     "host mx.example.org[198.51.100.25] said: 550 5.1.1 <sender@example.org>: User unknown (in reply to RCPT TO command)",
				}
				return BuildPostmaster(testOptions(), Failure, o, []Rcpt{r}, "postmaster", true)
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1 <sender@example.org>: User unknown", final: "rfc822; sender@example.org",
			reportType: "message/delivery-status", attachType: "message/rfc822",
			subject: "Postmaster Copy: Undelivered Mail", autoSubmitted: "auto-generated", rcpts: 1,
		},
		{
			name: "smtputf8",
			build: func() ([]byte, error) {
				o := testOriginal()
				o.Sender = "jörg@example.org"
				o.SMTPUTF8 = true
				o.Content = crlf("From: Jörg <jörg@example.org>\nTo: 用户@例子.测试\nSubject: Grüße\nMessage-ID: <utf8.1@example.org>\n\nHallo Welt – schöne Grüße.\n")
				r := Rcpt{
					Addr:       "用户@例子.测试",
					ORCPT:      "utf-8;用户@例子.测试",
					Status:     "5.1.1",
					Diagnostic: "smtp; 550 5.1.1 <用户@例子.测试>: Recipient address rejected: User unknown",
					RemoteMTA:  "mx.例子.测试",
					Reason:     "host mx.例子.测试[192.0.2.9] said: 550 5.1.1 <用户@例子.测试>: Recipient address rejected: User unknown (in reply to RCPT TO command)",
				}
				return Build(testOptions(), Failure, o, []Rcpt{r})
			},
			action: "failed", status: "5.1.1", diag: "smtp; 550 5.1.1 <用户@例子.测试>:", final: "utf-8; 用户@例子.测试",
			reportType: "message/global-delivery-status", attachType: "message/global",
			subject: "Undelivered Mail Returned to Sender", autoSubmitted: "auto-replied", rcpts: 1,
		},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the output; diff with -update and review:\n--- got ---\n%s", path, got)
			}
		})
	}
}
