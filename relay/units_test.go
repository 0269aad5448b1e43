package relay

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"postgate/rules"
)

func TestParseNexthop(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []destination
		err  bool
	}{
		{in: "[127.0.0.1]:10025", want: []destination{{host: "127.0.0.1", addr: netip.MustParseAddr("127.0.0.1"), port: 10025}}},
		{in: "[192.0.2.1]", want: []destination{{host: "192.0.2.1", addr: netip.MustParseAddr("192.0.2.1"), port: 25}}},
		{in: "[2001:db8::1]:587", want: []destination{{host: "2001:db8::1", addr: netip.MustParseAddr("2001:db8::1"), port: 587}}},
		{in: "[ipv6:2001:db8::1]", want: []destination{{host: "2001:db8::1", addr: netip.MustParseAddr("2001:db8::1"), port: 25}}},
		{in: "[relay.example.com]:submission", want: []destination{{host: "relay.example.com", port: 587}}},
		{in: "example.com", want: []destination{{host: "example.com", port: 25, mx: true}}},
		{in: "example.com.:2525", want: []destination{{host: "example.com", port: 2525, mx: true}}},
		{in: "192.0.2.5", want: []destination{{host: "192.0.2.5", addr: netip.MustParseAddr("192.0.2.5"), port: 25}}},
		{in: "[a.example]:25, b.example", want: []destination{{host: "a.example", port: 25}, {host: "b.example", port: 25, mx: true}}},
		{in: "", err: true},
		{in: "[127.0.0.1", err: true},
		{in: "[127.0.0.1]x", err: true},
		{in: "[127.0.0.1]:0", err: true},
		{in: "[127.0.0.1]:70000", err: true},
		{in: "exa mple.com", want: []destination{{host: "exa", port: 25, mx: true}, {host: "mple.com", port: 25, mx: true}}},
		{in: "bad<host>", err: true},
	} {
		got, err := parseNexthop(tc.in, 25)
		if tc.err {
			if err == nil {
				t.Errorf("parseNexthop(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseNexthop(%q): %v", tc.in, err)
			continue
		}
		for i := range got {
			got[i].raw = ""
		}
		if len(got) != len(tc.want) {
			t.Errorf("parseNexthop(%q) = %+v, want %+v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parseNexthop(%q)[%d] = %+v, want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// readReplyFrom parses one reply from text.
func readReplyFrom(text string) (*reply, error) {
	s := &session{br: bufio.NewReader(strings.NewReader(text))}
	return s.readReply()
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in        string
		code      int
		dsn, line string
	}{
		{"250 2.0.0 Ok: queued as 4XYZ\r\n", 250, "2.0.0", "250 2.0.0 Ok: queued as 4XYZ"},
		{"250 Ok\r\n", 250, "2.0.0", "250 Ok"},
		{"550-5.1.1 first\r\n550 5.1.1 second\r\n", 550, "5.1.1", "550-5.1.1 first 550 5.1.1 second"},
		{"550 4.1.1 class out of sync\r\n", 550, "5.0.0", "550 4.1.1 class out of sync"},
		{"451 4.3.0\r\n", 451, "4.3.0", "451 4.3.0"},
		{"354 End data with <CR><LF>.<CR><LF>\r\n", 354, "5.5.0", "354 End data with <CR><LF>.<CR><LF>"},
		{"250\r\n", 250, "2.0.0", "250"},
		{"250\n", 250, "2.0.0", "250"},
		{"garbage\r\n250 Ok\r\n", 250, "2.0.0", "garbage 250 Ok"},
		{"2500 x\r\n250 Ok\r\n", 250, "2.0.0", "2500 x 250 Ok"},
		{"250 tab\there\x01 \xff ünï\r\n", 250, "2.0.0", "250 tab?here? ? ünï"},
		{"550 5.1.10 <x>: nullMX\r\n", 550, "5.1.10", "550 5.1.10 <x>: nullMX"},
		{"550 5.1.1000 too long detail\r\n", 550, "5.0.0", "550 5.1.1000 too long detail"},
	} {
		r, err := readReplyFrom(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.code != tc.code || r.dsn != tc.dsn || r.line() != tc.line {
			t.Errorf("%q: %d %s %q, want %d %s %q", tc.in, r.code, r.dsn, r.line(), tc.code, tc.dsn, tc.line)
		}
	}
	for _, in := range []string{"", "250-more\r\n", "250 no line end"} {
		if r, err := readReplyFrom(in); err == nil {
			t.Errorf("%q: %+v, want an error", in, r)
		}
	}
}

func TestReadReplyLimits(t *testing.T) {
	long := "250 " + strings.Repeat("x", 10000) + "\r\n"
	r, err := readReplyFrom(long)
	if err != nil || r.code != 250 || len(r.text) != lineLimit {
		t.Errorf("long line: %v, %d bytes kept, want %d", err, len(r.text), lineLimit)
	}
	many := strings.Repeat("250-"+strings.Repeat("y", 100)+"\r\n", 100) + "251 last\r\n"
	r, err = readReplyFrom(many)
	if err != nil || r.code != 251 || len(r.text) > lineLimit+110 {
		t.Errorf("many lines: %v code %d, %d bytes kept", err, r.code, len(r.text))
	}
}

func TestEHLOParse(t *testing.T) {
	s := &session{opts: &Options{MyHostname: "me.example"}}
	r, _ := readReplyFrom("250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8bitmime\r\n250-DSN\r\n250-SMTPUTF8\r\n250 \r\n")
	if loop := s.parseEHLO(r); loop || !s.pipelining || !s.size || s.sizeLimit != 10240000 || !s.eightBitMIME || !s.dsn || !s.smtputf8 {
		t.Errorf("parsed %+v loop=%v", s, loop)
	}
	s = &session{opts: &Options{MyHostname: "me.example"}}
	r, _ = readReplyFrom("250-ME.example\r\n250 SIZE\r\n")
	if loop := s.parseEHLO(r); !loop || !s.size || s.sizeLimit != 0 || s.pipelining {
		t.Errorf("parsed %+v loop=%v", s, loop)
	}
	s = &session{opts: &Options{MyHostname: "me.example"}}
	r, _ = readReplyFrom("250 me.example\r\n")
	if !s.parseEHLO(r) {
		t.Error("one-line EHLO reply with our name: no loop found")
	}
}

func TestParameterEncoding(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{rules.Xtext("id+1=2 x\x7f"), "id+2B1+3D2+20x+7F"},
		{orcptParam("rfc822;a+b@example.com", false), "rfc822;a+2Bb@example.com"},
		{orcptParam("RFC822;a@example.com", false), "rfc822;a@example.com"},
		{orcptParam("utf-8;jörg@example.com", false), `utf-8;j\x{F6}rg@example.com`},
		{orcptParam("utf-8;jörg+x@example.com", true), `utf-8;jörg\x{2B}x@example.com`},
		{orcptParam("rfc822;jörg@example.com", true), "utf-8;jörg@example.com"},
		{orcptParam("x-foo;bar", false), "x-foo;bar"},
		{orcptParam("nosemicolon", false), ""},
		{orcptParam("bad type;x", false), ""},
		// Without a received ORCPT, one from the original address.
		{(&Recipient{Addr: "b@example.com", Orig: "a@example.com"}).orcpt(), "rfc822;a@example.com"},
		{(&Recipient{Addr: "b@example.com", Orig: "a@example.com", ORCPT: "rfc822;x@example.com"}).orcpt(), "rfc822;x@example.com"},
		{orcptParam((&Recipient{Orig: "john doe+x@example.com"}).orcpt(), false), `rfc822;"john+20doe+2Bx"@example.com`},
		{(&Recipient{Addr: "b@example.com"}).orcpt(), ""},
		{quote821("john doe@example.com"), `"john doe"@example.com`},
		{quote821("a.b@example.com"), "a.b@example.com"},
		{quote821(""), ""},
		{notifyParam("success,failure"), "SUCCESS,FAILURE"},
		{notifyParam("NEVER"), "NEVER"},
		{notifyParam("SUCCESS,BOGUS"), ""},
		{notifyParam("SUCCESS\r\nRSET"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestDSNValid(t *testing.T) {
	for in, want := range map[string]int{
		"2.0.0": 5, "5.1.1 x": 5, "4.7.25 y": 6, "5.1.10": 6, "5.123.123": 9,
		"3.0.0": 0, "5.1": 0, "5..1": 0, "5.1.1x": 0, "5.1234.1": 0, "": 0,
	} {
		if got := dsnValid(in); got != want {
			t.Errorf("dsnValid(%q) = %d, want %d", in, got, want)
		}
	}
}

// toWire runs content through the data writer.
func toWire(t testing.TB, limit int, chunks ...string) string {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	dw := newDataWriter(bw, limit)
	for _, c := range chunks {
		if _, err := dw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	return out.String()
}

func TestDataWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		chunks []string
		want   string
	}{
		{"empty", 998, nil, ".\r\n"},
		{"one line", 998, []string{"a"}, "a\r\n.\r\n"},
		{"CRLF split", 998, []string{"a\r", "\nb\r", "\n"}, "a\r\nb\r\n.\r\n"},
		{"final bare CR", 998, []string{"a\r"}, "a\r\n.\r\n"},
		{"CR CR LF", 998, []string{"a\r\r\nb"}, "a\r\n\r\nb\r\n.\r\n"},
		{"LF CR", 998, []string{"a\n\rb"}, "a\r\n\r\nb\r\n.\r\n"},
		{"dots", 998, []string{".", "\r\n", "..", "\n", "."}, "..\r\n...\r\n..\r\n.\r\n"},
		{"dot after split CR", 998, []string{"a\r", ".b"}, "a\r\n..b\r\n.\r\n"},
		{"exactly the limit", 5, []string{"12345\r\n"}, "12345\r\n.\r\n"},
		{"over the limit", 5, []string{"1234567890123\r\n"}, "12345\r\n 6789\r\n 0123\r\n.\r\n"},
		{"over the limit in pieces", 5, []string{"123", "456", "7\r\n"}, "12345\r\n 67\r\n.\r\n"},
		{"dot line over the limit", 3, []string{".2345"}, "..23\r\n 45\r\n.\r\n"},
		{"no limit", 0, []string{strings.Repeat("x", 5000)}, strings.Repeat("x", 5000) + "\r\n.\r\n"},
	} {
		if got := toWire(t, tc.limit, tc.chunks...); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// checkWire checks the invariants of DATA content on the wire and returns
// the lines a server takes from it (dot-unstuffed, without the end).
func checkWire(t *testing.T, wire string) []string {
	t.Helper()
	if !strings.HasSuffix(wire, ".\r\n") || !(wire == ".\r\n" || strings.HasSuffix(wire, "\r\n.\r\n")) {
		t.Fatalf("wire %q does not end with the end of data", wire)
	}
	body := strings.TrimSuffix(wire, ".\r\n")
	if strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\r") || strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\n") {
		t.Fatalf("bare CR or LF in %q", wire)
	}
	if body == "" {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") {
			if !strings.HasPrefix(l, "..") {
				t.Fatalf("unstuffed line %q in %q", l, wire)
			}
			lines[i] = l[1:]
		}
	}
	return lines
}

func FuzzDataWriter(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", ".\r\n", "\n.\n", "\r.\r\n", "..\r", "x\r\r\n.\r\n.", strings.Repeat("y", 30)} {
		f.Add(s, uint8(0), 0)
		f.Add(s, uint8(3), 7)
	}
	f.Fuzz(func(t *testing.T, in string, split uint8, limit int) {
		if limit < 2 || limit > 100 {
			limit = 0
		}
		var chunks []string
		for s := in; s != ""; {
			n := min(int(split)%7+1, len(s))
			chunks = append(chunks, s[:n])
			s = s[n:]
		}
		whole := toWire(t, limit, in)
		if pieces := toWire(t, limit, chunks...); pieces != whole {
			t.Fatalf("chunking changes the output: %q vs %q", pieces, whole)
		}
		lines := checkWire(t, whole)
		// What the server reads back is the input with every line end made
		// one, long lines broken with a leading space.
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(in)
		norm = strings.TrimSuffix(norm, "\n")
		var want []string
		if in != "" {
			for _, l := range strings.Split(norm, "\n") {
				for limit > 0 && len(l) > limit {
					want = append(want, l[:limit])
					l = " " + l[limit:]
				}
				want = append(want, l)
			}
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") || len(lines) != len(want) {
			t.Fatalf("read back %q, want %q", lines, want)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "x\r\n250\r\n", "550 5.1.1 u\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := readReplyFrom(in)
		if err != nil {
			return
		}
		if r.code < 0 || r.code > 999 || len(r.text) > lineLimit+lineLimit+1 {
			t.Fatalf("reply %+v", r)
		}
		if dsnValid(r.dsn) == 0 {
			t.Fatalf("dsn %q", r.dsn)
		}
		if strings.ContainsAny(r.line(), "\r\n\x00") {
			t.Fatalf("unprintable reply line %q", r.line())
		}
	})
}

func TestConnectErrorText(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.DialTimeout("tcp", addr, time.Second)
	if got := connectErrorText(err, nil); got != "Connection refused" {
		t.Errorf("refused: %q", got)
	}
}
