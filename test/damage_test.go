package test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"postgate/test/harness"
)

// queuedMarker is a message of the damage test: its queue ID and where a
// line unique to it sits in the queue log.
type queuedMarker struct {
	id, marker string
	seg        string // segment file name
	off        int    // offset of the marker in it
}

// TestDamagedSegments damages a stopped gateway's queue log in the three
// ways a disk or an admin can — bytes flipped inside one message record,
// an older segment cut in the middle of a record, the newest segment's
// tail cut — and restarts it with its relay target up: every intact
// message is delivered; each damaged one whose record header survives is
// named in the mail log by queue ID and listed by `postgate queue list` in
// the corrupt queue; the messages after the cut in the older segment are
// gone (nothing names them) and the log says how much was lost there.
func TestDamagedSegments(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t)
	sink.Stop() // the relay target is down: mail stays queued
	p := harness.Start(t, rejectUnauth+fastRetry+"postgate_queue_segment_size = 65536\n"+routes("relay.test", sink), "")

	const n = 30
	var msgs []queuedMarker
	for i := range n {
		marker := fmt.Sprintf("damage-test-marker-%03d", i)
		body := fmt.Sprintf("Subject: damage %d\r\nMessage-ID: <%s@src.test>\r\n\r\n%s\r\n%s", i, marker, marker, strings.Repeat("filler text of the damage test 0123456789\r\n", 200))
		msgs = append(msgs, queuedMarker{id: sendGoSMTP(t, p.Addr, "a@src.test", fmt.Sprintf("u%d@relay.test", i), []byte(body)), marker: marker})
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.Stderr())
	}

	// Where each message's marker sits; segment names sort in log order.
	logDir := filepath.Join(p.Queue, "log")
	segs, err := filepath.Glob(filepath.Join(logDir, "*.seg"))
	if err != nil || len(segs) < 3 {
		t.Fatalf("want 3+ segments, have %v (%v)", segs, err)
	}
	data := map[string][]byte{}
	for _, s := range segs {
		if data[s], err = os.ReadFile(s); err != nil {
			t.Fatal(err)
		}
	}
	bySeg := map[string][]int{} // message indexes in log order
	for i := range msgs {
		for _, s := range segs {
			if off := bytes.Index(data[s], []byte(msgs[i].marker+"\r\n")); off >= 0 {
				if bytes.Count(data[s], []byte(msgs[i].marker+"\r\n")) != 1 || msgs[i].seg != "" {
					t.Fatalf("%s: marker found more than once: the test assumes one record per message", msgs[i].id)
				}
				msgs[i].seg, msgs[i].off = s, off
				bySeg[s] = append(bySeg[s], i)
			}
		}
		if msgs[i].seg == "" {
			t.Fatalf("%s: not found in the queue log", msgs[i].id)
		}
	}
	newest := segs[len(segs)-1]
	var older []string // segments holding 3+ messages, but not the newest
	for _, s := range segs[:len(segs)-1] {
		if len(bySeg[s]) >= 3 {
			older = append(older, s)
		}
	}
	if len(older) < 2 || len(bySeg[newest]) == 0 {
		t.Fatalf("want two older segments of 3+ messages and messages in the newest: %v", bySeg)
	}

	// (a) a byte flipped inside the content of the first message of one
	// older segment.
	flipped := bySeg[older[0]][0]
	data[older[0]][msgs[flipped].off+3] ^= 0x20
	// (b) the other older segment cut inside its second message: the
	// messages after it in that segment are lost.
	cutOld := bySeg[older[1]][1]
	lost := bySeg[older[1]][2:]
	data[older[1]] = data[older[1]][:msgs[cutOld].off+10]
	// (c) the newest segment's tail cut inside its last message.
	cutNew := bySeg[newest][len(bySeg[newest])-1]
	data[newest] = data[newest][:msgs[cutNew].off+10]
	for _, s := range []string{older[0], older[1], newest} {
		if err := os.WriteFile(s, data[s], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	damaged := []int{flipped, cutOld, cutNew}

	logBefore := len(p.Log(""))
	sink.Start()
	p.Restart()
	want := n - len(damaged) - len(lost)
	got := sink.WaitMessages(want, 60*time.Second)
	delivered := map[string]int{}
	for _, m := range got {
		delivered[receivedID(m)]++
	}
	for i, m := range msgs {
		switch {
		case slices.Contains(damaged, i), slices.Contains(lost, i):
			if delivered[m.id] != 0 {
				t.Errorf("%s (%s): damaged or lost, yet delivered", m.id, m.marker)
			}
		case delivered[m.id] != 1:
			t.Errorf("%s (%s): intact, delivered %d times", m.id, m.marker, delivered[m.id])
		}
	}
	if len(got) != want {
		t.Errorf("sink got %d messages, want %d", len(got), want)
	}

	// Each damaged message is named in the log by queue ID, segment and
	// offset, as a qmgr warning.
	log := p.Log(msgs[cutNew].id + ": message record cut short")
	for _, w := range []string{
		"postgate/qmgr[",
		msgs[flipped].id + ": damaged message record in segment ",
		msgs[cutOld].id + ": message record cut short in segment ",
		msgs[cutNew].id + ": message record cut short in segment ",
		": moved to the corrupt queue",
		"bytes short: if the segment was cut, the records written after it in the segment are lost",
	} {
		if !strings.Contains(log, w) {
			t.Errorf("mail log lacks %q:\n%s", w, grepLines(log, "warning:"))
		}
	}
	for _, i := range lost {
		if strings.Contains(log[logBefore:], msgs[i].id) {
			t.Errorf("%s, lost with the cut, is named in the log: it cannot be", msgs[i].id)
		}
	}

	// `postgate queue list` shows exactly the damaged ones, as corrupt.
	q := queueJSON(t, p)
	var corrupt []string
	for id, m := range q {
		if m.QueueName != "corrupt" {
			t.Errorf("%s left in the %s queue", id, m.QueueName)
		}
		corrupt = append(corrupt, id)
	}
	var wantCorrupt []string
	for _, i := range damaged {
		wantCorrupt = append(wantCorrupt, msgs[i].id)
	}
	slices.Sort(corrupt)
	slices.Sort(wantCorrupt)
	if !slices.Equal(corrupt, wantCorrupt) {
		t.Errorf("corrupt queue %v, want %v", corrupt, wantCorrupt)
	}
	text, err := p.Run("queue", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		msgs[flipped].id, "(corrupt: damaged message record in segment ",
		msgs[cutOld].id, msgs[cutNew].id, "(corrupt: message record cut short in segment ",
		"-- 3 in the corrupt queue",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("queue list lacks %q:\n%s", w, text)
		}
	}
	if !strings.Contains(text, "\n-- Queue log damage: 3 damaged records named, 0 damaged bytes dropped unnamed.\n") {
		t.Errorf("queue list lacks the damage summary:\n%s", text)
	}

	// What is left of a cut message is readable, flagged as damaged, and
	// its envelope (all there before the cut) shown.
	cut := msgs[cutOld]
	raw, err := p.Run("queue", "show", "--raw", cut.id)
	if err == nil || !strings.Contains(err.Error(), "in the corrupt queue") || !strings.Contains(raw, "Message-ID: <"+cut.marker+"@src.test>") {
		t.Errorf("queue show --raw %s: %v, %d bytes", cut.id, err, len(raw))
	}
	shown, err := p.Run("queue", "show", cut.id)
	for _, w := range []string{"*** ENVELOPE RECORDS corrupt/" + cut.id, "sender: a@src.test", "*** DAMAGED RECORD corrupt/" + cut.id + ": message record cut short"} {
		if err != nil || !strings.Contains(shown, w) {
			t.Errorf("queue show %s lacks %q (%v):\n%s", cut.id, w, err, shown)
		}
	}
}

var receivedIDRe = regexp.MustCompile(`\tby \S+ \([^)]*\) with \S+ id ([0-9A-Za-z]+)`)

// receivedID is the postgate queue ID in a sink dump: the "id" of the
// Received: header postgate added.
func receivedID(dump string) string {
	_, msg := harness.SinkBody(dump)
	m := receivedIDRe.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return m[1]
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
