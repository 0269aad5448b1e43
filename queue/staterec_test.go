package queue

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestStateTrailerRoundTrip: what a state record says is what replay
// rebuilds.
func TestStateTrailerRoundTrip(t *testing.T) {
	env := testEnvelope(3)
	env.Recipients = append(env.Recipients, Recipient{Addr: "third@example.net"})
	arrival := env.Arrival.UnixNano()
	body := appendEnvelope(nil, env, arrival)
	envLen := len(body)
	body = append(body, "content\r\n"...)
	x := newIndex(nil)
	x.keepEnvelopes()
	src := &entry{
		nrcpt: 3, rs: &rcptState{done: []bool{false, true, false},
			reasons: []string{"451 later", "", "550 no"}},
		nextTry: time.Unix(1763700000, 5).UnixNano(),
		state:   Hold, expired: true, warned: true,
	}
	body = appendStateTrailer(body, src)
	r := &rawRecord{recHeader: recHeader{typ: recState, id: "ABCDEF1234", bodyLen: uint32(len(body)), envLen: uint32(envLen)}, seg: 1, off: 32, body: body, ok: true}
	x.replay(r)
	e := x.m.get("ABCDEF1234")
	if e == nil {
		t.Fatal("not replayed")
	}
	got := e.message(x.envs[e.id])
	want := Message{State: Hold, Done: src.done(), Reasons: src.reasons(), NextTry: time.Unix(1763700000, 5), Expired: true, Warned: true, Size: int64(len("content\r\n"))}
	got.Envelope = Envelope{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// FuzzStateRecord: replaying any state record body never panics, and a
// message it yields is consistent.
func FuzzStateRecord(f *testing.F) {
	env := appendEnvelope(nil, testEnvelope(1), 1)
	good := appendStateTrailer(append(append([]byte{}, env...), "x\r\n"...), &entry{nrcpt: 2, rs: &rcptState{done: []bool{true, false}, reasons: []string{"", "later"}}, state: Deferred})
	f.Add(good, uint32(len(env)))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, body []byte, envLen uint32) {
		if envLen > uint32(len(body)) {
			envLen = uint32(len(body))
		}
		x := newIndex(nil)
		x.keepEnvelopes()
		x.keepEnvelopes()
		x.replay(&rawRecord{recHeader: recHeader{typ: recState, id: "ABCDEF1234", bodyLen: uint32(len(body)), envLen: envLen}, body: body, ok: true})
		e := x.m.get("ABCDEF1234")
		if e == nil {
			t.Fatal("no message")
		}
		m := e.message(x.envs[e.id])
		if e.state != Corrupt && (!slices.Contains(m.Done, false) || m.Size < 0 || len(m.Done) != int(e.nrcpt)) {
			t.Fatalf("inconsistent entry %+v", e)
		}
	})
}
