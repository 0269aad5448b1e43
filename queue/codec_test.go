package queue

import (
	"reflect"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  Envelope
	}{
		{"full", *testEnvelope(3)},
		{"null sender, zero arrival", Envelope{Recipients: []Recipient{{Addr: "a@b"}}}},
		{"long fields", Envelope{Sender: string(make([]byte, 300)), Recipients: []Recipient{{Addr: "x", Notify: "NEVER"}}, Arrival: time.Unix(0, 1)}},
		{"content filter", Envelope{Recipients: []Recipient{{Addr: "a@b"}, {Addr: "c@d"}}, Filter: "smtp-amavis:[127.0.0.1]:10024"}},
		{"original recipients", Envelope{Recipients: []Recipient{{Addr: "a@b", Orig: "alias@b"}, {Addr: "c@d"}}}},
		{"both", Envelope{Recipients: []Recipient{{Addr: "a@b"}, {Addr: "c@d", Orig: "x"}}, Filter: "smtp:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arrival := nanos(tc.env.Arrival)
			b := appendEnvelope(nil, &tc.env, arrival)
			if len(b) != envelopeLen(&tc.env, arrival) {
				t.Fatalf("encoded %d bytes, envelopeLen says %d", len(b), envelopeLen(&tc.env, arrival))
			}
			got, err := decodeEnvelope(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if n, ok := checkEnvelope(b); !ok || n != len(tc.env.Recipients) {
				t.Fatalf("checkEnvelope = %d, %v", n, ok)
			}
			want := tc.env
			want.Arrival = fromNanos(arrival)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Change
	}{
		{"all recipients", Change{Kind: ChangeDelivered}},
		{"no recipients", Change{Kind: ChangeDelivered, Rcpts: []int{}}},
		{"deferred", Change{Kind: ChangeDeferred, Rcpts: []int{0, 300, 2}, Until: time.Unix(1763700000, 5), Reason: "4.4.1 refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendChange(nil, &tc.c, 42)
			if len(b) != changeLen(&tc.c, 42) {
				t.Fatalf("encoded %d bytes, changeLen says %d", len(b), changeLen(&tc.c, 42))
			}
			got, at, err := decodeChange(string(b))
			if err != nil || at != 42 || !reflect.DeepEqual(got, tc.c) {
				t.Fatalf("decoded %+v at %d (%v), want %+v", got, at, err, tc.c)
			}
		})
	}
}

// FuzzDecode: the body decoders never panic, and agree with each other.
func FuzzDecode(f *testing.F) {
	f.Add(string(appendEnvelope(nil, testEnvelope(1), 5)))
	f.Add(string(appendChange(nil, &Change{Kind: ChangeDeferred, Rcpts: []int{1}, Reason: "x"}, 1)))
	f.Add("\x01\x00\x00")
	f.Fuzz(func(t *testing.T, s string) {
		env, err := decodeEnvelope(s)
		n, ok := checkEnvelope([]byte(s))
		if ok != (err == nil) || ok && n != len(env.Recipients) {
			t.Fatalf("checkEnvelope = %d, %v; decodeEnvelope = %d recipients, %v", n, ok, len(env.Recipients), err)
		}
		decodeChange(s)
	})
}

// TestEnvelopeWithoutFilter: an envelope written before the content
// filter field existed (it ends after the recipients) still decodes, and
// one with the field is read by a decoder that stops after the
// recipients, as older versions do.
func TestEnvelopeWithoutFilter(t *testing.T) {
	env := Envelope{Sender: "s@x", Recipients: []Recipient{{Addr: "a@b"}}, Filter: "smtp:[127.0.0.1]:10024"}
	b := appendEnvelope(nil, &env, 1)
	old := appendEnvelope(nil, &Envelope{Sender: "s@x", Recipients: []Recipient{{Addr: "a@b"}}}, 1)
	if got, err := decodeEnvelope(string(old)); err != nil || got.Filter != "" {
		t.Fatalf("old envelope: %+v, %v", got, err)
	}
	if n, ok := checkEnvelope(old); !ok || n != 1 {
		t.Fatalf("checkEnvelope(old) = %d, %v", n, ok)
	}
	if len(b) <= len(old) || string(b[:len(old)]) != string(old) {
		t.Fatal("the filter is not a field appended after the recipients")
	}
}
