package rules

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

func TestDomainList(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "domains")
	writeFile(t, file, "# relay domains\nfile.test, other.test\n!bad.file2.test file2.test\n")
	items := []string{"Example.com", ".dotted.test", "!no.sub.test", "sub.test", file, "inline:{ table.test=x }"}
	ctx := context.Background()
	for _, c := range []struct {
		parent bool
		name   string
		want   bool
	}{
		{true, "example.com", true},
		{true, "EXAMPLE.COM", true},
		{true, "a.b.example.com", true},
		{true, "notexample.com", false},
		{true, "x.dotted.test", false}, // ".dotted.test" only works without parent matching
		{false, "x.dotted.test", true},
		{false, "dotted.test", false},
		{false, "a.example.com", false},
		{true, "no.sub.test", false},
		{true, "x.no.sub.test", false},
		{true, "y.sub.test", true},
		{true, "other.test", true},
		{true, "bad.file2.test", false},
		{true, "good.file2.test", true},
		{true, "table.test", true},
		{true, "a.table.test", true},
		{false, "a.table.test", false},
		{true, "", false},
	} {
		l, err := NewDomainList(items, c.parent)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Match(ctx, c.name)
		if err != nil || got != c.want {
			t.Errorf("parent=%v Match(%q) = %v, %v; want %v", c.parent, c.name, got, err, c.want)
		}
	}
	var nilList *DomainList
	if ok, err := nilList.Match(ctx, "x"); ok || err != nil {
		t.Error("nil list matched")
	}
}

func TestDomainListTableError(t *testing.T) {
	l, err := NewDomainList([]string{"fail:x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Match(context.Background(), "a.b"); err == nil {
		t.Error("table failure was not reported")
	}
}

func TestAddrList(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nets")
	writeFile(t, file, "192.0.2.0/24\n")
	l, err := NewAddrList([]string{"!127.0.0.2", "127.0.0.0/8", "[::1]/128", "[2001:db8::]/32", "10.1.2.3", file, "inline:{ 198.51.100.7=x }"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": false, "::1": true, "::2": false, "2001:db8::5": true,
		"10.1.2.3": true, "10.1.2.4": false, "192.0.2.200": true, "::ffff:127.0.0.1": true,
		"198.51.100.7": true, "198.51.100.8": false,
	} {
		got, err := l.Match(ctx, netip.MustParseAddr(addr))
		if err != nil || got != want {
			t.Errorf("Match(%s) = %v, %v; want %v", addr, got, err, want)
		}
	}
}

func TestAddrListErrors(t *testing.T) {
	for _, c := range []struct{ item, want string }{
		{"mail.example.com", `unsupported item "mail.example.com"`},
		{"::1/128", "must be enclosed in []"},
		{"2001:db8::1", "must be enclosed in []"},
		{"127.0.0.1/8", `non-null host address bits in "127.0.0.1/8", perhaps you should use "127.0.0.0/8" instead`},
		{"[2001:db8::1]/32", `perhaps you should use "[2001:db8::]/32" instead`},
		{"foo:bar", "unsupported dictionary type: foo"},
		{"1.2.3.4/33", "bad network pattern"},
		{"/nonexistent/file", "no such file"},
	} {
		_, err := NewAddrList([]string{c.item})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewAddrList(%q) error = %v, want %q", c.item, err, c.want)
		}
	}
}
