package smtp

import (
	"bufio"
	"bytes"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// referenceDot is the byte-at-a-time state machine the buffered dataReader
// must agree with: it returns the content up to the end line, and whether
// the end line was found.
func referenceDot(in []byte) ([]byte, bool) {
	var out []byte
	state := 0 // begin line, dot, dot-CR, CR, data
	for _, c := range in {
		switch state {
		case 0:
			if c == '.' {
				state = 1
				continue
			}
			if c == '\r' {
				state = 3
			} else {
				state = 4
			}
		case 1:
			if c == '\r' {
				state = 2
				continue
			}
			state = 4
		case 2:
			if c == '\n' {
				return out, true
			}
			state = 4
		case 3:
			if c == '\n' {
				state = 0
			} else {
				state = 4
			}
		case 4:
			if c == '\r' {
				state = 3
			}
		}
		out = append(out, c)
	}
	return out, false
}

func TestDataReaderMatchesStateMachine(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte(".\r\nax")
	for i := 0; i < 5000; i++ {
		in := make([]byte, rng.Intn(40))
		for j := range in {
			in[j] = alphabet[rng.Intn(len(alphabet))]
		}
		want, ended := referenceDot(in)
		for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, func(r io.Reader) io.Reader { return r }} {
			var r io.Reader = &dataReader{r: bufio.NewReaderSize(wrap(bytes.NewReader(in)), 16)}
			if i%2 == 0 {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(r)
			if ended != (err == nil) || !bytes.Equal(got, want) {
				t.Fatalf("input %q: got %q, %v; want %q, ended %v", in, got, err, want, ended)
			}
			if !ended && err != io.ErrUnexpectedEOF {
				t.Fatalf("input %q: error %v, want unexpected EOF", in, err)
			}
		}
	}
}
