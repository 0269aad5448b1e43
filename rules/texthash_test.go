package rules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lookup(t *testing.T, tb Table, key string) (string, bool) {
	t.Helper()
	v, ok, err := tb.Lookup(context.Background(), key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return v, ok
}

func TestTexthashParse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access")
	writeFile(t, path, strings.Join([]string{
		"# comment",
		"   # indented comment",
		"Key1 value one",
		"",
		"# a comment inside a continued line",
		"  continued here",
		`"quoted key" v2`,
		`"a\"b" v3`,
		`"a b"@Example.COM   quoted local part  `,
		"key1 duplicate",
		"tab\tseparated\r",
		"k3\tv3 # not a comment",
		"",
	}, "\n"))
	var warnings []string
	tb, err := OpenWith("texthash:"+path, OpenOptions{Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if !IsFixedString(tb) {
		t.Error("texthash is not a fixed-string table")
	}
	for _, c := range []struct {
		name, key, want string
		found           bool
	}{
		{"continuation keeps the whitespace, first duplicate wins", "key1", "value one  continued here", true},
		{"query is lowercased", "KEY1", "value one  continued here", true},
		{"quotes stay part of the key", `"quoted key"`, "v2", true},
		{"unquoted form is another key", "quoted key", "", false},
		{"escaped quote", `"a\"b"`, "v3", true},
		{"key lowercased, value trimmed", `"a b"@example.com`, "quoted local part", true},
		{"CR is trailing whitespace", "tab", "separated", true},
		{"# is literal after the key", "k3", "v3 # not a comment", true},
		{"missing", "nope", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, ok := lookup(t, tb, c.key)
			if ok != c.found || v != c.want {
				t.Errorf("Lookup(%q) = %q, %v; want %q, %v", c.key, v, ok, c.want, c.found)
			}
		})
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `:10: duplicate entry: "key1"`) {
		t.Errorf("warnings = %q, want one duplicate entry warning for line 10", warnings)
	}
}

func TestTexthashErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, data, want string
	}{
		{"missing value", "a b\nnovalue\n", ":2: expected format: key whitespace value"},
		{"key only with spaces", "a b\nnovalue   \n", ":2: expected format: key whitespace value"},
		{"unbalanced quote", "\"a b\n", ":1: unbalanced '\"'"},
		{"leading whitespace", "  a b\n", ":1: logical line must not start with whitespace"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			writeFile(t, path, c.data)
			_, err := Open("texthash:" + path)
			if err == nil || !strings.Contains(err.Error(), path+c.want) {
				t.Errorf("Open error = %v, want it to contain %q", err, path+c.want)
			}
		})
	}
	if _, err := Open("texthash:" + filepath.Join(dir, "missing")); err == nil {
		t.Error("opening a missing file succeeded")
	}
}

func TestHashReadsSourceFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access")
	writeFile(t, path, "example.com REJECT\n")
	for _, typ := range []string{"hash", "lmdb", "btree", "cdb", "dbm", "proxy:hash"} {
		tb, err := Open(typ + ":" + path)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if v, ok := lookup(t, tb, "Example.COM"); !ok || v != "REJECT" {
			t.Errorf("%s: got %q, %v", typ, v, ok)
		}
	}
}

func TestTexthashReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access")
	writeFile(t, path, "a 1\n")
	var mu sync.Mutex
	var warnings []string
	tb, err := OpenWith("texthash:"+path, OpenOptions{Warn: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, m)
	}})
	if err != nil {
		t.Fatal(err)
	}
	th := tb.(*texthash)
	clock := time.Now()
	th.now = func() time.Time { return clock }

	writeFile(t, path, "a 2\nb 3\n")
	if v, _ := lookup(t, tb, "a"); v != "1" {
		t.Errorf("changed before the check interval: a = %q", v)
	}
	clock = clock.Add(2 * time.Second)
	if v, _ := lookup(t, tb, "a"); v != "2" {
		t.Errorf("after change: a = %q, want 2", v)
	}
	if v, _ := lookup(t, tb, "b"); v != "3" {
		t.Errorf("after change: b = %q, want 3", v)
	}

	// A bad edit keeps the previous contents and says so once.
	writeFile(t, path, "a 4\nbroken\n")
	clock = clock.Add(2 * time.Second)
	if v, _ := lookup(t, tb, "a"); v != "2" {
		t.Errorf("after bad edit: a = %q, want the previous 2", v)
	}
	clock = clock.Add(2 * time.Second)
	lookup(t, tb, "a")
	mu.Lock()
	if len(warnings) != 1 || !strings.Contains(warnings[0], ":2: expected format") || !strings.Contains(warnings[0], "keeping the previous contents") {
		t.Errorf("warnings = %q", warnings)
	}
	mu.Unlock()

	// Fixing the file brings the new contents in.
	writeFile(t, path, "a 5\n")
	clock = clock.Add(2 * time.Second)
	if v, _ := lookup(t, tb, "a"); v != "5" {
		t.Errorf("after fix: a = %q, want 5", v)
	}

	// Removing the file keeps the contents.
	os.Remove(path)
	clock = clock.Add(2 * time.Second)
	if v, _ := lookup(t, tb, "a"); v != "5" {
		t.Errorf("after remove: a = %q, want 5", v)
	}
}

func TestTexthashConcurrentLookups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access")
	writeFile(t, path, "a 1\n")
	tb, err := Open("texthash:" + path)
	if err != nil {
		t.Fatal(err)
	}
	tb.(*texthash).interval = 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if i == 0 && j%20 == 0 {
					writeFile(t, path, strings.Repeat("x", j%7)+"a 1\n")
				}
				if _, _, err := tb.Lookup(context.Background(), "a"); err != nil {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
}
