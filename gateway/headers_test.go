package gateway

import (
	"strings"
	"testing"
)

// TestEachHeader: every logical header with its folded lines and offset,
// including one line longer than the reader's buffer, and nothing of the
// body.
func TestEachHeader(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 40<<10) + "\r\n"
	want := []string{"From: a@src.test\r\n", long, "Subject: one\r\n two\r\n\tthree\r\n", "To: u@relay.test\r\n"}
	content := strings.Join(want, "") + "\r\nBody: not a header\r\n"
	var got []string
	var offs []int64
	eachHeader(strings.NewReader(content), int64(len(content)), func(raw []byte, off int64) bool {
		got = append(got, string(raw))
		offs = append(offs, off)
		return true
	})
	if len(got) != len(want) {
		t.Fatalf("got %d headers, want %d", len(got), len(want))
	}
	var off int64
	for i := range want {
		if got[i] != want[i] || offs[i] != off {
			t.Errorf("header %d at %d = %.40q, want %.40q at %d", i, offs[i], got[i], want[i], off)
		}
		off += int64(len(want[i]))
	}
}
