package queue

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestIndexMemory: the index holds what the scheduler needs, neither
// bodies nor envelopes, and messages deferred alike share their
// recipients' state, so a million-message backlog fits in under 120 MB
// (184 bytes a message with a Go map and 112-byte entries, 456 when
// envelopes were kept). Measured on 100,000 typical messages (two
// recipients, one deferred) replayed as at startup; the ID table is then
// at its emptiest, 21 bytes a message.
func TestIndexMemory(t *testing.T) {
	// An entry is a Go size class: one byte more and it takes 80.
	if n := unsafe.Sizeof(entry{}); n > 64 {
		t.Errorf("an index entry is %d bytes, over 64", n)
	}
	if testing.Short() {
		t.Skip("allocates ~50 MB")
	}
	const n = 100_000
	body := make([]byte, 0, 1024)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := newIndex(nil)
	for i := range n {
		env := Envelope{
			Sender: fmt.Sprintf("bounces+%d@lists.example.net", i),
			Recipients: []Recipient{
				{Addr: fmt.Sprintf("user%d@example.com", i), ORCPT: fmt.Sprintf("rfc822;user%d@example.com", i), Notify: "FAILURE"},
				{Addr: fmt.Sprintf("other%d@example.org", i)},
			},
			ClientName: "mail.example.net", ClientAddr: "192.0.2.77", Helo: "mail.example.net", Proto: "ESMTP",
		}
		body = appendEnvelope(body[:0], &env, time.Now().UnixNano())
		envLen := len(body)
		body = append(body, "2 KiB of content would be here, never kept in memory"...)
		id := fmt.Sprintf("%010X", i)
		x.replay(&rawRecord{recHeader: recHeader{typ: recMessage, id: id, bodyLen: uint32(len(body)), envLen: uint32(envLen)}, seg: 1, off: int64(i) * 2300, body: body, ok: true})
		c := Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: time.Now(), Reason: "connect to mx.example.org[192.0.2.9]:25: Connection refused"}
		cb := appendChange(nil, &c, 1)
		cb = binary.LittleEndian.AppendUint32(cb, 0)
		x.replay(&rawRecord{recHeader: recHeader{typ: recChange, id: id}, body: cb[:len(cb)-4], ok: true})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("index: %.0f bytes per message (%.0f MB per million)", per, per)
	if x.m.len() != n {
		t.Fatalf("%d entries", x.m.len())
	}
	if per > 120 {
		t.Errorf("index uses %.0f bytes per message, over 120; is an envelope kept in memory again?", per)
	}
	runtime.KeepAlive(x)
}
