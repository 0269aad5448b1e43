package bounce

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPostfixFixtures rebuilds notices that a real Postfix 3.7.11 wrote
// (testdata/postfix-3.7/*.eml, captured from a private instance relaying to
// smtp-sink with -f rcpt, delivered to files, with the headers added on
// delivery removed) from the inputs each one reports, and compares them
// byte for byte. Only the Message-Id differs: Postfix's names the notice's
// own new queue ID.
//
// Settings of that instance: myhostname = mail.example.test, the defaults
// smtputf8_enable = yes and enable_threaded_bounces = no,
// maximal_queue_lifetime = 5d, delay_warning_time = 1s.
func TestPostfixFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/postfix-3.7/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	msgID := regexp.MustCompile(`(?m)^Message-Id: <[^>]*>\r$`)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".eml"), func(t *testing.T) {
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in := fixtureInputs(t, want)
			var got []byte
			if in.postmaster {
				got, err = BuildPostmaster(in.opt, in.kind, in.orig, in.rcpts, in.to, in.double)
			} else {
				got, err = Build(in.opt, in.kind, in.orig, in.rcpts)
			}
			if err != nil {
				t.Fatal(err)
			}
			norm := func(b []byte) []byte { return msgID.ReplaceAll(b, []byte("Message-Id: <...>\r")) }
			if g, w := norm(got), norm(want); !bytes.Equal(g, w) {
				gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					var a, b string
					if i < len(gl) {
						a = gl[i]
					}
					if i < len(wl) {
						b = wl[i]
					}
					if a != b {
						t.Fatalf("differs from Postfix at line %d:\n got %q\nwant %q\n--- got ---\n%s", i+1, a, b, got)
					}
				}
			}
		})
	}
}

type fixtureInput struct {
	opt                Options
	kind               Kind
	orig               *Original
	rcpts              []Rcpt
	postmaster, double bool
	to                 string
}

// fixtureInputs reads back from a Postfix notice what Postfix was given:
// the original, its recipients and their status, and the settings.
func fixtureInputs(t *testing.T, raw []byte) fixtureInput {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	boundary := params["boundary"]
	unix, err := strconv.ParseInt(boundary[strings.IndexByte(boundary, '.')+1:strings.IndexByte(boundary, '/')], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(unix, 0).UTC()

	var in fixtureInput
	in.opt = Options{
		Now:                  func() time.Time { return now },
		BounceSizeLimit:      DefaultBounceSizeLimit,
		MaximalQueueLifetime: 5 * 24 * time.Hour,
		DelayWarningTime:     time.Second,
		SMTPUTF8Enable:       true,
		NoThreading:          true,
	}
	switch subj := msg.Header.Get("Subject"); {
	case strings.Contains(subj, "Undelivered"):
		in.kind = Failure
	case strings.Contains(subj, "Delayed"):
		in.kind = Delay
	default:
		in.kind = Success
	}
	in.postmaster = msg.Header.Get("Auto-Submitted") == "auto-generated"
	in.to = msg.Header.Get("To")

	var bodies [][]byte
	var types []string
	mr := multipart.NewReader(msg.Body, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		bodies = append(bodies, b)
		types = append(types, p.Header.Get("Content-Type"))
	}
	if len(bodies) != 3 {
		t.Fatalf("%d parts", len(bodies))
	}

	// Recipient paragraphs of the notification, unwrapped.
	reasons := map[string]string{}
	for _, para := range strings.Split(string(bodies[0]), "\r\n\r\n") {
		para = strings.TrimLeft(para, "\r\n")
		if !strings.HasPrefix(para, "<") {
			continue
		}
		lines := strings.Split(strings.TrimRight(para, "\r\n"), "\r\n")
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		s := strings.Join(lines, " ")
		i := strings.Index(s, ">: ")
		reasons[s[1:i]] = s[i+3:]
	}

	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(bodies[1])))
	perMsg, _ := tr.ReadMIMEHeader()
	in.opt.Myhostname = strings.TrimPrefix(perMsg.Get("Reporting-MTA"), "dns; ")
	arrival, err := mail.ParseDate(perMsg.Get("Arrival-Date"))
	if err != nil {
		t.Fatal(err)
	}
	in.orig = &Original{
		QueueID: perMsg.Get("X-Postfix-Queue-ID"),
		Sender:  strings.TrimPrefix(perMsg.Get("X-Postfix-Sender"), "rfc822; "),
		EnvID:   perMsg.Get("Original-Envelope-Id"),
		Arrival: arrival.UTC(),
	}
	if in.orig.Sender == "MAILER-DAEMON@"+in.opt.Myhostname {
		in.orig.Sender = ""
		in.double = true
	}
	for {
		g, err := tr.ReadMIMEHeader()
		if len(g) > 0 {
			addr := strings.TrimPrefix(g.Get("Final-Recipient"), "rfc822; ")
			r := Rcpt{
				Addr:      addr,
				ORCPT:     g.Get("Original-Recipient"),
				Action:    g.Get("Action"),
				Status:    g.Get("Status"),
				RemoteMTA: strings.TrimPrefix(g.Get("Remote-MTA"), "dns; "),
				Reason:    reasons[addr],
			}
			if in.kind == Success {
				r.Notify = "SUCCESS"
			}
			if d := g.Get("Diagnostic-Code"); strings.HasPrefix(d, "smtp; ") {
				r.Diagnostic = d
			}
			in.rcpts = append(in.rcpts, r)
		}
		if err != nil {
			break
		}
	}

	// The original as the queue held it: the attachment without the
	// Return-Path bounce(8) adds, and some body when only headers came back.
	content := bytes.TrimPrefix(bodies[2], []byte(firstLine(bodies[2])+"\n"))
	if strings.Contains(types[2], "headers") {
		content = append(content, "\r\nbody\r\n"...)
		if in.kind == Failure && !in.postmaster {
			in.orig.RET = "HDRS"
		}
	}
	in.orig.Content = content
	return in
}
