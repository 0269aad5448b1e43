package gateway

import (
	"strings"
	"testing"
	"time"
)

// TestMailLogFlushes: a line reaches the writer soon after it is logged,
// without Close, also a line logged after an earlier flush emptied the
// buffer and one logged while a flush is pending.
func TestMailLogFlushes(t *testing.T) {
	var out lockedBuffer // fuzz_test.go
	log, err := OpenMailLog("", &out, "postgate", "h")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	wait := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), want); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%q not flushed within 5 s; written: %q", want, out.String())
			}
		}
	}
	log.Logf("smtpd", "first")
	wait("postgate/smtpd[")
	wait(": first\n")
	log.Logf("qmgr", "second")
	log.Logf("qmgr", "third")
	wait(": third\n")
	time.Sleep(3 * flushDelay) // idle: nothing waits
	log.Logf("qmgr", "fourth")
	wait(": fourth\n")
}
