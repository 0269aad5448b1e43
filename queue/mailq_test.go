package queue

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// Arrival times are shown in local time; TestMain pins time.Local to UTC.
var (
	arrival1 = time.Date(2025, time.November, 20, 10, 1, 2, 0, time.UTC)
	arrival2 = time.Date(2025, time.November, 2, 9, 0, 0, 0, time.UTC)
)

func msg(id string, state State, size int64, arrival time.Time, sender string, rcpts ...string) Message {
	m := Message{
		Envelope: Envelope{ID: id, Sender: sender, Arrival: arrival},
		State:    state,
		Size:     size,
		Done:     make([]bool, len(rcpts)),
		Reasons:  make([]string, len(rcpts)),
	}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, Recipient{Addr: r})
	}
	return m
}

func mailqCases() []struct {
	name string
	msgs []Message
	long bool
} {
	deferred := msg("8045F2AB23", Deferred, 5678, arrival2, "sender@example.net",
		"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org", "done@example.org")
	deferred.Reasons = []string{
		"connect to mx.example.org[192.0.2.9]:25: Connection refused",
		"connect to mx.example.org[192.0.2.9]:25: Connection refused",
		"",
		"host mx.example.org[192.0.2.9] said: 452 4.2.2 Mailbox full for this particular very long recipient address (in reply to RCPT TO command)",
		"",
		"",
	}
	deferred.Done[5] = true
	expired := msg("3F1A21C0E4B", Deferred, 100, arrival1, "x@example.net", "y@example.com")
	expired.Expired = true
	corruptChange := msg("8045F2AB24", Corrupt, 5678, arrival2, "sender@example.net", "rcpt@example.org")
	corruptChange.Damage = "damaged change record"
	return []struct {
		name string
		msgs []Message
		long bool
	}{
		{"mailq_empty", nil, false},
		{"mailq_active", []Message{msg("3F1A21C0E4", Active, 1234, arrival1, "sender@example.net", "rcpt@example.com")}, false},
		{"mailq_hold", []Message{msg("3F1A21C0E4B", Hold, 1234, arrival1, "sender@example.net", "rcpt@example.com", "two@example.com")}, false},
		{"mailq_deferred_reasons", []Message{deferred}, false},
		{"mailq_null_sender", []Message{msg("8045F2AB23", Deferred, 5678, arrival2, "", "other@example.org")}, false},
		{"mailq_several", []Message{
			msg("3F1A21C0E4B", Active, 1234, arrival1, "sender@example.net", "rcpt@example.com"),
			msg("8045F2AB23", Hold, 5678, arrival2, "", "other@example.org"),
			expired,
			{Envelope: Envelope{ID: "CORRUPT0001"}, State: Corrupt, Size: 2000, Damage: "message record cut short in segment 3 at offset 1417"},
		}, false},
		{"mailq_corrupt_envelope_known", []Message{corruptChange}, false},
		{"mailq_long_ids", []Message{
			msg("4bW5rQ1bBBzJ4F", Active, 1234, arrival1, "sender@example.net", "rcpt@example.com"),
			msg("4bW5rQ1cXYzJ4G", Deferred, 99999, arrival2, "\"odd local\"@example.net", "x@example.org"),
		}, true},
		{"mailq_quoting", []Message{msg("8045F2AB23", Deferred, 10, arrival1, "odd local@example.net", "ctl\x01char@example.org")}, false},
	}
}

func TestWriteMailq(t *testing.T) {
	for _, tc := range mailqCases() {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMailq(&b, tc.msgs, tc.long); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

// TestMailqReasonColumn: a reason line ends at column 78 unless the reason
// is too long to fit.
func TestMailqReasonColumn(t *testing.T) {
	c := mailqCases()[3]
	var b bytes.Buffer
	WriteMailq(&b, c.msgs, false)
	n := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasSuffix(line, ")") && strings.Contains(line, "(") {
			n++
			if len(line) != 78 && !strings.HasPrefix(line, "(") {
				t.Errorf("reason line is %d columns wide: %q", len(line), line)
			}
		}
	}
	// Recipients with a reason come first, as in Postfix: refused (a, b),
	// mailbox full (d), then "(reason unavailable)" before c and e.
	if n != 3 {
		t.Errorf("%d reason lines, want 3:\n%s", n, b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	deferred := msg("8045F2AB23", Deferred, 5678, arrival2, "", "other@example.org", "done@example.org", "q\"uote@example.org")
	deferred.Recipients[0].ORCPT = "rfc822;Other+2Bx@example.org"
	deferred.Reasons[0] = "connect to mx.example.org[192.0.2.9]:25: Connection refused"
	deferred.Done[1] = true
	deferred.Expired = true
	msgs := []Message{
		msg("3F1A21C0E4B", Active, 1234, arrival1, "sender@example.net", "rcpt@example.com"),
		deferred,
		msg("AAAAAAAAAA", Hold, 1, arrival1, "a@b", "c@d"),
		{Envelope: Envelope{ID: "CORRUPT0001"}, State: Corrupt, Size: 2000, Damage: "damaged message record in segment 3 at offset 1417"},
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, msgs); err != nil {
		t.Fatal(err)
	}
	want := `{"queue_name": "active", "queue_id": "3F1A21C0E4B", "arrival_time": 1763632862, "message_size": 1234, "forced_expire": false, "sender": "sender@example.net", "recipients": [{"address": "rcpt@example.com", "orig_address": ""}]}
{"queue_name": "deferred", "queue_id": "8045F2AB23", "arrival_time": 1762074000, "message_size": 5678, "forced_expire": true, "sender": "MAILER-DAEMON", "recipients": [{"address": "other@example.org", "orig_address": "Other+x@example.org", "delay_reason": "connect to mx.example.org[192.0.2.9]:25: Connection refused"}, {"address": "\"q\\\"uote\"@example.org", "orig_address": ""}]}
{"queue_name": "hold", "queue_id": "AAAAAAAAAA", "arrival_time": 1763632862, "message_size": 1, "forced_expire": false, "sender": "a@b", "recipients": [{"address": "c@d", "orig_address": ""}]}
{"queue_name": "corrupt", "queue_id": "CORRUPT0001", "arrival_time": 0, "message_size": 2000, "forced_expire": false, "sender": "", "recipients": [], "damage": "damaged message record in segment 3 at offset 1417"}
`
	if b.String() != want {
		t.Fatalf("WriteJSON:\n%s\nwant:\n%s", b.String(), want)
	}
	// Every line is a JSON object with postqueue -j's members.
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var v struct {
			QueueName    string `json:"queue_name"`
			QueueID      string `json:"queue_id"`
			ArrivalTime  int64  `json:"arrival_time"`
			MessageSize  int64  `json:"message_size"`
			ForcedExpire *bool  `json:"forced_expire"`
			Sender       string `json:"sender"`
			Recipients   []struct {
				Address     string  `json:"address"`
				OrigAddress *string `json:"orig_address"`
				DelayReason string  `json:"delay_reason"`
			} `json:"recipients"`
			Damage string `json:"damage"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if v.QueueName == "corrupt" {
			if v.QueueID == "" || v.Damage == "" {
				t.Fatalf("corrupt message without its ID or damage: %s", line)
			}
			continue
		}
		if v.QueueName == "" || v.QueueID == "" || v.ArrivalTime == 0 || v.ForcedExpire == nil || len(v.Recipients) == 0 || v.Recipients[0].OrigAddress == nil {
			t.Fatalf("missing members: %s", line)
		}
	}
}

func TestWriteDamage(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDamage(&b, Damage{}); err != nil || b.Len() != 0 {
		t.Fatalf("no damage: %q %v", b.String(), err)
	}
	WriteDamage(&b, Damage{Records: 2, Bytes: 1378})
	if want := "-- Queue log damage: 2 damaged records named, 1378 damaged bytes dropped unnamed.\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

func TestJSONQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\"b\\c", `a\"b\\c`},
		{"\b\f\n\r\t", `\b\f\n\r\t`},
		{"\x01\x7f", `\u0001\u007F`},
		{"héllo", "héllo"},
	} {
		if got := jsonQuote(tc.in); got != tc.want {
			t.Errorf("jsonQuote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
