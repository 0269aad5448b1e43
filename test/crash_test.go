package test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"postgate/test/harness"
)

// TestKill9KeepsAcknowledged: every message acknowledged with 250 before a
// kill -9 is in the queue, intact, after a restart.
func TestKill9KeepsAcknowledged(t *testing.T) {
	t.Parallel()
	p := harness.Start(t, rejectUnauth, "")
	const senders, each = 8, 5
	var mu sync.Mutex
	sent := map[string][]byte{}
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := []byte(fmt.Sprintf("Subject: crash %d/%d\r\nMessage-ID: <crash-%d-%d@src.test>\r\n\r\n%s\r\n", s, i, s, i, bytes.Repeat([]byte("z"), 100*i)))
				id, err := trySend(p.Addr, "a@src.test", fmt.Sprintf("u%d@relay.test", s), body)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sent[id] = body
				mu.Unlock()
			}
		}(s)
	}
	wg.Wait()
	p.Kill()
	p.Restart()

	msgs := queueJSON(t, p)
	if len(msgs) != senders*each {
		t.Errorf("queue lists %d messages after kill -9, want %d", len(msgs), senders*each)
	}
	for id, body := range sent {
		if _, ok := msgs[id]; !ok {
			t.Errorf("%s: acknowledged but not in the queue after kill -9", id)
			continue
		}
		if got := stripReceived(t, showRaw(t, p, id)); !bytes.Equal(got, body) {
			t.Errorf("%s: content differs after kill -9", id)
		}
	}
	// The restarted daemon still accepts mail.
	sendGoSMTP(t, p.Addr, "a@src.test", "u@relay.test", []byte("Subject: after\r\n\r\nx\r\n"))
}
