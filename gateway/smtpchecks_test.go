package gateway

import (
	"bytes"
	"io"
	"testing"
)

// TestEditedReader: the smtp client's edited content is what cleanup's
// editedContent gives for the same edits, and reads the same again after
// a rewind (a second MX host), with the position counted in output bytes.
func TestEditedReader(t *testing.T) {
	content := []byte("A: 1\r\nB: 2\r\n continued\r\nC: 3\r\n\r\nbody line\r\nlast\r\n")
	cases := []struct {
		name  string
		edits []contentEdit
	}{
		{"none", nil},
		{"strip folded header", []contentEdit{{off: 6, n: 19}}},
		{"prepend then replace the same line", []contentEdit{{off: 6, insert: []byte("P: 0\r\n")}, {off: 6, n: 19, insert: []byte("B: x\r\n")}}},
		{"first and last", []contentEdit{{off: 0, n: 6}, {off: int64(len(content)) - 6, n: 6, insert: []byte("end\r\n")}}},
		{"body", []contentEdit{{off: 33, n: 11, insert: []byte("new body\r\n")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := io.ReadAll(editedContent(bytes.NewReader(content), int64(len(content)), c.edits))
			if err != nil {
				t.Fatal(err)
			}
			r := &editedReader{src: bytes.NewReader(content), edits: c.edits}
			for pass := 1; pass <= 2; pass++ {
				var got []byte
				buf := make([]byte, 5) // small reads cross every edit
				for {
					n, err := r.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(got, want) {
					t.Errorf("pass %d: got %q, want %q", pass, got, want)
				}
				if pos, _ := r.Seek(0, io.SeekCurrent); pos != int64(len(want)) {
					t.Errorf("pass %d: position %d, want %d", pass, pos, len(want))
				}
				if _, err := r.Seek(0, io.SeekStart); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
