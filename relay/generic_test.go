package relay

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestGenericHeaders(t *testing.T) {
	table := map[string]string{"a@in.test": "a@out.test", "b@in.test": "b@out.test"}
	lookup := func(_ context.Context, addr string) (string, error) {
		if addr == "broken@in.test" {
			return "", errors.New("table down")
		}
		if v, ok := table[addr]; ok {
			return v, nil
		}
		return addr, nil
	}
	d := &delivery{t: &SMTP{opts: Options{Generic: lookup}}, ctx: context.Background(), m: &Message{QueueID: "Q1"}}
	for _, c := range []struct{ name, in, want string }{
		{"sender and folded recipient headers",
			"From: A <a@in.test>\r\nTo: x@else.test,\r\n\tb@in.test\r\nSubject: a@in.test\r\n\r\nFrom: a@in.test\r\n",
			"From: A <a@out.test>\r\nTo: x@else.test, b@out.test\r\nSubject: a@in.test\r\n\r\nFrom: a@in.test\r\n"},
		{"nothing to change", "To: x@else.test\r\n\r\nbody\r\n", "To: x@else.test\r\n\r\nbody\r\n"},
		{"no body", "Cc: a@in.test", "Cc: a@out.test\r\n"},
		{"no header", "just text a@in.test\r\n", "just text a@in.test\r\n"},
	} {
		r, err := d.genericHeaders(strings.NewReader(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	if _, err := d.genericHeaders(strings.NewReader("From: broken@in.test\r\n\r\nx\r\n")); err == nil || !strings.Contains(err.Error(), "smtp_generic_maps map lookup problem for broken@in.test") {
		t.Errorf("lookup error: %v", err)
	}
}
