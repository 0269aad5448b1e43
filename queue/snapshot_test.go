package queue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenReadOnlyPartialTail: a snapshot of a log whose last record is
// only partly written lists the complete records and changes nothing.
func TestOpenReadOnlyPartialTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(l recLoc) int
	}{
		{"complete", func(l recLoc) int { return l.end }},
		{"partial header", func(l recLoc) int { return l.off + 17 }},
		{"partial body", func(l recLoc) int { return l.off + recHeaderSize + l.envLen + 3 }},
		{"missing trailer", func(l recLoc) int { return l.end - recTrailerSize }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			idl, contents := buildLog(t, dir, Options{})
			last := scanLog(t, dir)[idl[5]][0]
			editSegment(t, dir, last.seg, func(b []byte) []byte { return b[:tc.cut(last)] })
			size := segSize(t, dir, last.seg)

			snap, err := OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			n := 5
			if tc.name == "complete" {
				n = 6
			}
			msgs := snap.List()
			if len(msgs) != n {
				t.Fatalf("%d messages, want %d", len(msgs), n)
			}
			for i, m := range msgs {
				if m.ID != idl[i] {
					t.Fatalf("message %d is %s, want %s", i, m.ID, idl[i])
				}
				c, err := snap.Content(m.ID)
				if err != nil || !bytes.Equal(c, contents[i]) {
					t.Fatalf("Content(%s): %v", m.ID, err)
				}
			}
			if m, ok := snap.Get(idl[1]); !ok || m.State != Hold {
				t.Fatalf("Get(%s) = %v %v", idl[1], m.State, ok)
			}
			if got := segSize(t, dir, last.seg); got != size {
				t.Fatalf("read-only open changed the segment: %d -> %d bytes", size, got)
			}
		})
	}
}

// TestOpenReadOnlyWhileRunning: the snapshot needs no lock and sees what
// the running daemon acknowledged.
func TestOpenReadOnlyWhileRunning(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	defer s.Close()
	id := mustAppend(t, s, testEnvelope(1), []byte("one\r\n"))
	snap, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := snap.Content(id); err != nil || string(c) != "one\r\n" {
		t.Fatalf("Content = %q, %v", c, err)
	}
	if _, err := snap.Content("ABCDEF0000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Content(unknown) = %v", err)
	}
	// Still writable by the owner.
	if err := s.Append(context.Background(), testEnvelope(2), []byte("two")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenReadOnlyMissingDir(t *testing.T) {
	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly(missing) = %v", err)
	}
}
