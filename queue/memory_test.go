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
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := newIndex(nil)
	replayTypical(x, 0, n, time.Now())
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

// replayTypical replays into x messages first..first+n-1 as Open would
// read them: typical ones (two recipients, one deferred until until),
// 30,000 to a segment, as in a 64 MiB segment of 2 KiB messages.
func replayTypical(x *index, first, n int, until time.Time) {
	body := make([]byte, 0, 1024)
	for i := first; i < first+n; i++ {
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
		seg, off := uint32(1+i/30_000), int64(segHeaderSize+i%30_000*2300)
		x.replay(&rawRecord{recHeader: recHeader{typ: recMessage, id: id, bodyLen: uint32(len(body)), envLen: uint32(envLen)}, seg: seg, off: off, body: body, ok: true})
		c := Change{Kind: ChangeDeferred, Rcpts: []int{1}, Until: until, Reason: "connect to mx.example.org[192.0.2.9]:25: Connection refused"}
		cb := appendChange(nil, &c, 1)
		cb = binary.LittleEndian.AppendUint32(cb, 0)
		x.replay(&rawRecord{recHeader: recHeader{typ: recChange, id: id}, body: cb[:len(cb)-4], ok: true})
	}
}

// TestParkedMemory: a deferred backlog parked on disk costs memory that
// does not grow with it but for its segments' ID filters (10 bits a
// message): the heap a Store holds with 400,000 parked messages is within
// 1 MB of what it holds with 100,000 (the index alone grows by 29 MB),
// and under 4 MB in all.
func TestParkedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 500,000 messages")
	}
	heap := func(n int) float64 {
		s := openT(t, t.TempDir(), Options{})
		defer s.Close()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		until := time.Now().Add(time.Hour)
		s.mu.Lock()
		replayTypical(s.idx, 0, n, until)
		// A queue run of a manager whose horizon the backlog is past.
		s.idx.horizon = until.UnixNano() - 1
		for e := range s.idx.m.all() {
			e.hpos = parked
		}
		s.mu.Unlock()
		s.parkOut(0, DefaultActiveLimit)
		s.mu.Lock()
		parkedN, inMemory := s.idx.parkedCount(), s.idx.m.len()
		s.mu.Unlock()
		if parkedN != n || inMemory != 0 {
			t.Fatalf("%d parked on disk, %d in memory; want %d and 0", parkedN, inMemory, n)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(s)
		return float64(after.HeapAlloc) - float64(before.HeapAlloc)
	}
	small, large := heap(100_000), heap(400_000)
	t.Logf("heap with 100,000 parked: %.2f MB; with 400,000: %.2f MB (%.2f bytes per parked message)",
		small/(1<<20), large/(1<<20), (large-small)/300_000)
	if large-small > 1<<20 {
		t.Errorf("400,000 parked messages take %.2f MB more heap than 100,000", (large-small)/(1<<20))
	}
	if large > 4<<20 {
		t.Errorf("400,000 parked messages take %.2f MB of heap", large/(1<<20))
	}
}
