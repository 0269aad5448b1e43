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

// FuzzGenericHeaders: whatever the stored content, rewriting its headers
// with a table that maps nothing gives the content back unchanged, and
// with one that maps every address never touches the body.
func FuzzGenericHeaders(f *testing.F) {
	f.Add("From: A <a@in.test>\r\nTo: x@else.test,\r\n\tb@in.test\r\n\r\nFrom: a@in.test\r\n")
	f.Add("Cc: \"q\\\"x\"@in.test (c) <@r:b@in.test>\r\n\r\n")
	f.Add("To: a@in.test")
	f.Fuzz(func(t *testing.T, content string) {
		same := func(_ context.Context, addr string) (string, error) { return addr, nil }
		d := &delivery{t: &SMTP{opts: Options{Generic: same}}, ctx: context.Background(), m: &Message{}}
		r, err := d.genericHeaders(strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != content {
			t.Fatalf("identity mapping changed the content:\n%q\n%q", content, got)
		}
		d.t.opts.Generic = func(_ context.Context, addr string) (string, error) { return "x" + addr, nil }
		if r, err = d.genericHeaders(strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(r)
		if i := strings.Index(content, "\r\n\r\n"); i >= 0 && !strings.HasSuffix(string(got), content[i:]) {
			t.Fatalf("the body changed:\n%q\n%q", content, got)
		}
	})
}
