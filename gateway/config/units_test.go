package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"postgate/rules"
)

func TestPositionAndDiagnosticString(t *testing.T) {
	tests := []struct {
		name string
		d    Diagnostic
		want string
	}{
		{"error", Diagnostic{Pos: Position{"/d/main.cf", 7}, Param: "smtpd_timeout", Msg: `bad time value "10x"`},
			`/d/main.cf:7: parameter smtpd_timeout: bad time value "10x"`},
		{"warning", Diagnostic{Pos: Position{"/d/main.cf", 2}, Param: "foo", Msg: "unknown parameter, ignored", Warning: true},
			"warning: /d/main.cf:2: parameter foo: unknown parameter, ignored"},
		{"whole file", Diagnostic{Pos: Position{File: "/d/master.cf"}, Msg: "m", Warning: true}, "warning: /d/master.cf: m"},
		{"default", Diagnostic{Param: "p", Msg: "m"}, "parameter p: m"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := (Position{}).String(); got != "default" {
		t.Errorf("zero Position = %q", got)
	}
	e := &Error{Diags: []Diagnostic{{Msg: "a"}, {Msg: "w", Warning: true}, {Msg: "b"}}}
	if got := e.Error(); got != "a\nb" {
		t.Errorf("Error() = %q", got)
	}
}

func TestLogicalLines(t *testing.T) {
	in := "a = 1\n  # indented comment\n\t\nb =\n  x,\n# col-0 comment inside\n\n\ty\nc = 3"
	got := readLogicalLines([]byte(in))
	want := []struct {
		text string
		line int
	}{{"a = 1", 1}, {"b =  x,\ty", 4}, {"c = 3", 9}}
	if len(got) != len(want) {
		t.Fatalf("got %d lines: %+v", len(got), got)
	}
	for i, w := range want {
		if got[i].text != w.text || got[i].line != w.line || got[i].leading {
			t.Errorf("line %d = %+v, want %+v", i, got[i], w)
		}
	}
	if l := got[1]; l.lineAt(0) != 4 || l.lineAt(len("b =")) != 5 || l.lineAt(len(l.text)-1) != 8 {
		t.Errorf("lineAt: %d %d %d", l.lineAt(0), l.lineAt(3), l.lineAt(len(l.text)-1))
	}
}

func TestSplitNameValue(t *testing.T) {
	tests := []struct {
		in, name, value string
		err             error
	}{
		{"a = b", "a", "b", nil},
		{"a=b=c", "a", "b=c", nil},
		{" a\t=\t b c \r", "a", "b c", nil},
		{"a =", "a", "", nil},
		{"a.b:c_time_limit = 1", "a.b:c_time_limit", "1", nil},
		{"a b = c", "", "", errNoEqual},
		{"= x", "", "", errNoName},
		{"novalue", "", "", errNoEqual},
	}
	for _, tt := range tests {
		n, v, err := splitNameValue(tt.in)
		if n != tt.name || v != tt.value || err != tt.err {
			t.Errorf("splitNameValue(%q) = %q, %q, %v", tt.in, n, v, err)
		}
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,\t", nil},
		{"a,b c\td\r\ne", []string{"a", "b", "c", "d", "e"}},
		{"check_policy_service { inet:127.0.0.1:9998, timeout=10s }, reject",
			[]string{"check_policy_service", "{ inet:127.0.0.1:9998, timeout=10s }", "reject"}},
		{"inline:{ a=1, {b = two words} },x", []string{"inline:{ a=1, {b = two words} }", "x"}},
		{"a } b", []string{"a", "}", "b"}},
		{"{unbalanced, rest", []string{"{unbalanced, rest"}},
	}
	for _, tt := range tests {
		if got := rules.SplitList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("rules.SplitList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		unit byte
		want time.Duration
		ok   bool
	}{
		{"10", 's', 10 * time.Second, true},
		{"10s", 'd', 10 * time.Second, true},
		{"2m", 's', 2 * time.Minute, true},
		{"3h", 's', 3 * time.Hour, true},
		{"5", 'd', 5 * 24 * time.Hour, true},
		{"1w", 's', 7 * 24 * time.Hour, true},
		{"0h", 'h', 0, true},
		{"10x", 's', 0, false},
		{"s", 's', 0, false},
		{"", 's', 0, false},
		{"-1s", 's', 0, false},
		{"1.5h", 's', 0, false},
		{"10 s", 's', 0, false},
		{"4000w", 's', 0, false}, // beyond a C int of seconds, as in Postfix
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, tt.unit)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseTime(%q, %c) = %v, %v", tt.in, tt.unit, got, err)
		}
	}
}

func TestScanNames(t *testing.T) {
	var got []string
	err := scanNames("$a ${b?{$c}:{$d}} $(e:x$f) ${{$g} == {h} ? {$i} : {$j}} $$k", func(n string) { got = append(got, n) })
	want := []string{"a", "b", "c", "d", "e", "f", "g", "i", "j"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("scanNames = %q, %v; want %q", got, err, want)
	}
}

type fakeResolver map[string]string

func (f fakeResolver) test(name string) bool { return f[name] != "" }
func (f fakeResolver) value(name string) (string, error) {
	return expandString(f[name], f)
}

func TestExpandErrors(t *testing.T) {
	r := fakeResolver{"a": "x"}
	tests := []struct{ in, err string }{
		{"${a", `unterminated "${" in "${a"`},
		{"$(a", `unterminated "$(" in "$(a"`},
		{"a$", `"$" without a parameter name in "a$" (write $$ for a literal $)`},
		{"${a b}", `bad parameter name "a " in "${a b}"`},
		{"${a?{x}y}", `":" expected before "y" in "${a?{x}y}"`},
		{"${a:{x}:{y}}", `unexpected text ":{y}" in "${a:{x}:{y}}"`},
		{"${a?{x}", `unterminated "${" in "${a?{x}"`},
		{"${{1} <level {x} ? {a} : {b}}", `malformed compatibility level syntax: "x"`},
		{"${{1} <foo {2}}", `bad operator "<foo" in "${{1} <foo {2}}"`},
		{"${{1} < 2}", `"{expression}" expected after "<" in "${{1} < 2}"`},
		{"${{1} < {2} x}", `"?" or ":" expected after "{1} < {2} " in "${{1} < {2} x}"`},
		{strings.Repeat("${a?", 200) + strings.Repeat("}", 200), "unreasonable $name nesting"},
	}
	for _, tt := range tests {
		_, err := expandString(tt.in, r)
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("expandString(%.40q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}

// fakeEnv is a host named "mx" with a loopback and one Ethernet interface.
func fakeEnv(hostname string) env {
	cidr := func(s string, lo bool) ifaceAddr {
		ip, n, _ := net.ParseCIDR(s)
		n.IP = ip
		return ifaceAddr{net: n, loopback: lo}
	}
	return env{
		hostname: func() (string, error) { return hostname, nil },
		addrs: func() ([]ifaceAddr, error) {
			return []ifaceAddr{cidr("127.0.0.1/8", true), cidr("::1/128", true),
				cidr("198.51.100.7/24", false), cidr("2001:db8:1::7/64", false), cidr("172.16.5.5/16", false)}, nil
		},
	}
}

func TestComputedDefaults(t *testing.T) {
	tests := []struct {
		name     string
		hostname string
		main     string
		want     map[string]string
	}{
		{"fqdn host", "mx.example.net", "", map[string]string{
			"myhostname": "mx.example.net", "mydomain": "example.net",
			"mynetworks": "127.0.0.1/32 198.51.100.7/32 172.16.5.5/32 [::1]/128 [2001:db8:1::7]/128"}},
		{"short host", "mx", "", map[string]string{"myhostname": "mx.localdomain", "mydomain": "localdomain"}},
		{"short host with mydomain", "mx", "mydomain = corp.example\n", map[string]string{
			"myhostname": "mx.corp.example", "mydestination": "mx.corp.example, localhost.corp.example, localhost"}},
		{"subnet", "mx.example", "mynetworks_style = subnet\n", map[string]string{
			"mynetworks": "127.0.0.0/8 198.51.100.0/24 172.16.0.0/16 [::1]/128 [2001:db8:1::]/64"}},
		{"class", "mx.example", "mynetworks_style = class\ninet_protocols = ipv4\n", map[string]string{
			"mynetworks": "127.0.0.0/8 198.51.100.0/24 172.16.0.0/16"}},
		{"compat 0 is subnet", "mx.example", "compatibility_level = 0\ninet_interfaces = 198.51.100.7\n", map[string]string{
			"mynetworks": "198.51.100.0/24"}},
		{"interfaces", "mx.example", "inet_interfaces = loopback-only, [2001:db8:1::7]\n", map[string]string{
			"mynetworks": "127.0.0.1/32 [::1]/128 [2001:db8:1::7]/128"}},
		{"explicit mynetworks", "mx.example", "mynetworks = 10.0.0.0/8\n", map[string]string{
			"mynetworks": "10.0.0.0/8", "smtpd_forbid_bare_newline_exclusions": "10.0.0.0/8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := build(input{mainFile: "/d/main.cf", main: []byte(tt.main), defaultListener: defaultSMTP, env: fakeEnv(tt.hostname)})
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				if got := c.Get(name); got != want {
					t.Errorf("Get(%q) = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestListenAddrs(t *testing.T) {
	tests := []struct {
		name, main, service string
		want                []string
		err                 string
	}{
		{"all", "", "smtp", []string{":25"}, ""},
		{"all ipv4", "inet_protocols = ipv4", "2525", []string{"0.0.0.0:2525"}, ""},
		{"all ipv6", "inet_protocols = ipv6", "submission", []string{"[::]:587"}, ""},
		{"loopback", "inet_interfaces = loopback-only", "smtp", []string{"127.0.0.1:25", "[::1]:25"}, ""},
		{"list", "inet_interfaces = 192.0.2.1, [2001:db8::1] host.example", "smtps",
			[]string{"192.0.2.1:465", "[2001:db8::1]:465", "host.example:465"}, ""},
		{"host port", "inet_interfaces = 192.0.2.1", "127.0.0.1:2525", []string{"127.0.0.1:2525"}, ""},
		{"host port name", "", "127.0.0.1:submission", []string{"127.0.0.1:587"}, ""},
		{"ipv6 host port", "", "[::1]:2526", []string{"[::1]:2526"}, ""},
		{"bad port", "", "70000", nil, `service "70000": bad port "70000"`},
		{"family off", "inet_protocols = ipv6\ninet_interfaces = 192.0.2.1", "smtp", nil,
			`service "smtp": inet_interfaces address 192.0.2.1 is not enabled by inet_protocols = ipv6`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("/d/main.cf", []byte(tt.main+"\n"), "", nil)
			if err != nil {
				// The default smtp service is checked at load.
				if tt.err == "" || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse: %v, want %q", err, tt.err)
				}
				return
			}
			got, err := c.ListenAddrs(Service{Name: tt.service, Type: "inet", Command: "smtpd"})
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListenAddrs = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestMasterOptions(t *testing.T) {
	master := `smtp inet n - y - - smtpd -v -oa=1 -vo b=2 -o { c = three words } -o{d=4}
  -o e= -D
`
	c, err := Parse("/d/main.cf", []byte("a = $b $c $d $e\nmyhostname = x.example\n"), "/d/master.cf", []byte(master))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services()[0]
	if want := []string{"-v", "-v", "-D"}; !reflect.DeepEqual(s.Args, want) {
		t.Errorf("Args = %q, want %q", s.Args, want)
	}
	want := map[string]string{"a": "1", "b": "2", "c": "three words", "d": "4", "e": ""}
	if !reflect.DeepEqual(s.Overrides, want) {
		t.Errorf("Overrides = %q, want %q", s.Overrides, want)
	}
	if got := c.ForService(s).Pos("e"); got != (Position{"/d/master.cf", 2}) {
		t.Errorf("Pos(e) = %v", got)
	}
	if v, set := c.ForService(s).Raw("c"); v != "three words" || !set {
		t.Errorf("Raw(c) = %q, %v", v, set)
	}
	if got := c.Get("a"); got != "   " { // main.cf does not see the overrides
		t.Errorf("main Get(a) = %q", got)
	}
}

func TestCheckQueueDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := CheckQueueDirectory(dir); err != nil {
		t.Errorf("empty directory refused: %v", err)
	}
	if err := CheckQueueDirectory(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing directory refused: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "maildrop"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := CheckQueueDirectory(dir)
	if err == nil || !strings.Contains(err.Error(), dir+" holds a Postfix queue (it has maildrop)") {
		t.Errorf("Postfix queue accepted: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load without main.cf = %v, want not-exist", err)
	}
}

// Views are read from many sessions at once.
func TestConcurrentReads(t *testing.T) {
	c := mustLoad(t, "testdata/good/services")
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			for _, s := range c.Services() {
				v := c.ForService(s)
				_ = v.Get("smtpd_banner")
				_, _ = v.Expand("$myhostname $service_name", nil)
				_, _ = c.ListenAddrs(s)
			}
			done <- true
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}

// Each parameter doubling the next must not exhaust memory; the error is
// reported once, where the value grows past the bound.
func TestExpansionBlowup(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		b.WriteString("p" + strconv.Itoa(i) + " = $p" + strconv.Itoa(i+1) + "$p" + strconv.Itoa(i+1) + "\n")
	}
	b.WriteString("p40 = xx\n")
	_, err := Parse("/f/main.cf", []byte(b.String()), "", nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse = %v", err)
	}
	got := e.Error()
	if want := "/f/main.cf:21: parameter p20: value expands to more than 1048576 bytes"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// TestInterfaceAddrs: the addresses that are this host's follow
// inet_interfaces and inet_protocols, as the default mynetworks does.
func TestInterfaceAddrs(t *testing.T) {
	for _, tt := range []struct{ main, want, err string }{
		{"inet_interfaces = all\n", "127.0.0.1 ::1 198.51.100.7 2001:db8:1::7 172.16.5.5", ""},
		{"inet_interfaces = all\ninet_protocols = ipv4\n", "127.0.0.1 198.51.100.7 172.16.5.5", ""},
		{"inet_interfaces = loopback-only\ninet_protocols = ipv6\n", "::1", ""},
		{"inet_interfaces = 198.51.100.7, [2001:db8:1::7]\n", "198.51.100.7 2001:db8:1::7", ""},
		{"inet_interfaces = mx.example\n", "", `inet_interfaces: "mx.example" is not an address (host names are not supported)`},
	} {
		c, err := build(input{mainFile: "/d/main.cf", main: []byte(tt.main), defaultListener: defaultSMTP, env: fakeEnv("mx.example")})
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := c.InterfaceAddrs()
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if strings.Join(got, " ") != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("%q: InterfaceAddrs() = %v, %v; want %q, %q", tt.main, got, err, tt.want, tt.err)
		}
	}
}
