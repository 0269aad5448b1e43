package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"postgate/test/harness"
)

// smtp-source -v prints every reply; a queued message's reads
// "<<< 250 2.0.0 Ok: queued as ID".
var sourceQueuedRe = regexp.MustCompile(`<<< 250 .*queued as ([0-9A-Za-z]+)`)

// TestRepeatedKill9UnderLoad kills the gateway with SIGKILL in the middle
// of smtp-source load, while it also relays to smtp-sink, and restarts it,
// round after round. In the end every message smtp-source saw a 250 for
// must have reached the sink: none lost. A message the sink got twice is a
// duplicate; the only ones allowed are those a kill interrupted between
// the sink's 250 and the gateway recording the delivery (SMTP has no way
// to make the two one step), so each pair of copies must have a kill
// between them, before which the mail log did not yet say the message was
// removed (qmgr logs that once the delivery is on disk), and at most
// default_destination_concurrency_limit per kill.
func TestRepeatedKill9UnderLoad(t *testing.T) {
	t.Parallel()
	source := harness.Need(t, "smtp-source", "postfix")
	sink := harness.StartSink(t)
	p := harness.Start(t, rejectUnauth+fastRetry+routes("relay.test", sink), "")

	const (
		rounds   = 3
		perRound = 300
		sessions = 10
		perKill  = 20 // default_destination_concurrency_limit: deliveries in flight to the sink
	)
	acked := map[string]int{} // queue ID -> round it was acknowledged in
	type kill struct {
		at  time.Time
		log string // the mail log as the killed daemon left it
	}
	var kills []kill
	for r := range rounds {
		// Kill after a third, a half, two thirds of the round's 250s.
		killAt := perRound * (r + 2) / 6
		ids, killed := sourceRound(t, source, p, perRound, sessions, killAt)
		for _, id := range ids {
			if _, dup := acked[id]; dup {
				t.Errorf("%s: queue ID acknowledged twice (round %d and %d)", id, acked[id], r)
			}
			acked[id] = r
		}
		if killed.IsZero() {
			t.Fatalf("round %d: the load ended (%d acknowledged) before the kill point %d", r, len(ids), killAt)
		}
		log, err := os.ReadFile(p.Maillog)
		if err != nil {
			t.Fatal(err)
		}
		kills = append(kills, kill{killed, string(log)})
		p.Restart()
	}

	// Wait (bounded) until every acknowledged message reached the sink.
	var got map[string][]time.Time
	deadline := time.Now().Add(90 * time.Second)
	for {
		got = sinkIDs(t, sink)
		missing := 0
		for id := range acked {
			if len(got[id]) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	// smtp-sink opens its dump file at MAIL and leaves it when the
	// transaction is cut: a kill before the content leaves one without
	// postgate's header. That is a transaction the sink never accepted.
	if n := len(got[""]); n > perKill*len(kills) {
		t.Errorf("%d dumps at the sink without postgate's Received: header and queue ID, more than %d kills can cut", n, len(kills))
	} else if n > 0 {
		t.Logf("%d transactions cut by a kill before their content (smtp-sink keeps their dump)", n)
	}
	delete(got, "")
	var lost []string
	for id := range acked {
		if len(got[id]) == 0 {
			lost = append(lost, id)
		}
	}
	var inherent, unexplained, extra int
	for id, times := range got {
		if _, ok := acked[id]; !ok {
			extra++ // queued, but the kill came before its 250 went out
		}
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		for i := 1; i < len(times); i++ {
			k := slices.IndexFunc(kills, func(k kill) bool { return !k.at.Before(times[i-1]) && !k.at.After(times[i]) })
			switch {
			case k < 0:
				unexplained++
				t.Errorf("%s delivered twice with no kill in between (%s, %s)", id, times[i-1].Format(time.StampMicro), times[i].Format(time.StampMicro))
			case strings.Contains(kills[k].log, id+": removed"):
				unexplained++
				t.Errorf("%s delivered again after kill %d, though its delivery was recorded before it (the log says removed)", id, k+1)
			default:
				inherent++
			}
		}
	}
	slices.Sort(lost)
	t.Logf("%d rounds of %d messages, %d kill -9: %d acknowledged, %d distinct at the sink, %d lost, %d duplicates across a kill, %d unexplained duplicates, %d delivered without a 250 seen",
		rounds, perRound, len(kills), len(acked), len(got), len(lost), inherent, unexplained, extra)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages never reached the sink: %v\n%s", len(lost), lost, grepLines(p.Log(""), "warning"))
	}
	if inherent > perKill*len(kills) {
		t.Errorf("%d duplicates across %d kills: more than the %d deliveries that can be in flight at each", inherent, len(kills), perKill)
	}
	// Nothing acknowledged is left behind, in the corrupt queue or any
	// other. A record a kill tore in the middle of its write (never
	// acknowledged) may be left in the corrupt queue: counted, not failed.
	// (The sink's 250 comes before the gateway records the delivery: wait.)
	var left map[string]jsonMsg
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		left = queueJSON(t, p)
		stuck := 0
		for id := range left {
			if _, ok := acked[id]; ok {
				stuck++
			}
		}
		if stuck == 0 || time.Now().After(deadline) {
			break
		}
	}
	for id, m := range left {
		if _, ok := acked[id]; ok {
			t.Errorf("%s: acknowledged, still in the %s queue at the end", id, m.QueueName)
		}
	}
	t.Logf("%d unacknowledged messages left in the queue", len(left))
}

// sourceRound runs smtp-source -v against p and kills p with SIGKILL once
// killAt messages were acknowledged. It returns the queue IDs of every 250
// smtp-source saw and when the kill came (zero if the load ended first).
func sourceRound(t *testing.T, source string, p *harness.Postgate, messages, sessions, killAt int) (ids []string, killed time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, source, "-v", "-s", fmt.Sprint(sessions), "-m", fmt.Sprint(messages), "-l", "2048",
		"-f", "load@src.test", "-t", "sink@relay.test", p.Addr)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		kill = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := sourceQueuedRe.FindStringSubmatch(sc.Text()); m != nil {
				mu.Lock()
				ids = append(ids, m[1])
				if len(ids) == killAt {
					close(kill)
				}
				mu.Unlock()
			}
		}
	}()
	select {
	case <-kill:
		p.Kill()
		killed = time.Now()
	case <-done:
	}
	<-done     // smtp-source's output ends when it does: it gives up on a dead server
	cmd.Wait() // its exit status after the kill is a failure, as expected
	mu.Lock()
	defer mu.Unlock()
	return ids, killed
}

// sinkIDs reads every message smtp-sink dumped and returns, per postgate
// queue ID (from the Received: header postgate added), when each copy
// arrived; dumps without one are under "".
func sinkIDs(t *testing.T, sink *harness.Sink) map[string][]time.Time {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(sink.Dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]time.Time{}
	for _, f := range files {
		st, err1 := os.Stat(f)
		b, err2 := os.ReadFile(f)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		// "" collects dumps without postgate's header: being written, or
		// a bug.
		id := receivedID(string(b))
		got[id] = append(got[id], st.ModTime())
	}
	return got
}
