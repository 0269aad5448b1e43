package dbcommon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postgate/rules"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "table.cf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The file as cfg_parser reads it, and errors that name the file and line.
func TestReadConfig(t *testing.T) {
	path := writeConfig(t, "# comment\nhosts = a\n  b\n\nquery = SELECT 1\ntimeout=3\nbind = Yes\nsurplus = x\n")
	var warnings []string
	c, err := ReadConfig(path, []string{"hosts", "query", "timeout", "bind"}, func(m string) { warnings = append(warnings, m) })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Str("hosts", ""); got != "a b" {
		t.Errorf("continued hosts = %q", got)
	}
	if got := c.Str("missing", "def"); got != "def" || c.IsSet("missing") {
		t.Errorf("missing = %q", got)
	}
	if d, err := c.Seconds("timeout", 10); err != nil || d.Seconds() != 3 {
		t.Errorf("timeout = %v, %v", d, err)
	}
	if b, err := c.Bool("bind", false); err != nil || !b {
		t.Errorf("bind = %v, %v", b, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `line 8: unknown parameter "surplus"`) {
		t.Errorf("warnings %q", warnings)
	}
	if _, err := c.Required("dbname"); err == nil || !strings.Contains(err.Error(), `parameter "dbname" is not set`) {
		t.Errorf("Required(dbname): %v", err)
	}

	for text, want := range map[string]string{
		" x = 1\n":                  "line 1: logical line must not start with whitespace",
		"a = 1\nnoequals\n":         `line 2: expected "name = value"`,
		"timeout = soon\n":          "line 1: timeout: bad value",
		"timeout = 0\n":             "line 1: timeout: bad value",
		"bind = maybe\n":            "line 1: bind: bad value \"maybe\": want yes or no",
		"query = %x\n":              "line 1: query: invalid template",
		"\nresult_format = %u%\n":   "line 2: result_format: invalid template",
		"domain = hash:/nonexist\n": "line 1: domain",
	} {
		c, err := ReadConfig(writeConfig(t, text), nil, nil)
		if err == nil {
			_, err = c.Seconds("timeout", 1)
		}
		if err == nil {
			_, err = c.Bool("bind", false)
		}
		if err == nil {
			_, err = c.Templates("query", c.Str("query", "%s"))
		}
		if err == nil {
			_, err = c.DomainFilter(rules.OpenOptions{})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

func TestDomainFilter(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "domains")
	if err := os.WriteFile(list, []byte("listed.test ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(writeConfig(t, "domain = x.test, texthash:"+list+"\n"), []string{"domain"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.DomainFilter(rules.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{
		"u@x.test": true, "u@listed.test": true, "u@other.test": false,
		"x.test": false, "@x.test": false, "u@": false,
	} {
		if ok, err := f.Allows(context.Background(), key); err != nil || ok != want {
			t.Errorf("Allows(%q) = %v, %v; want %v", key, ok, err, want)
		}
	}
	none, err := (&Config{}).DomainFilter(rules.OpenOptions{})
	if ok, _ := none.Allows(context.Background(), "bare"); err != nil || !ok {
		t.Errorf("no domain parameter: Allows(bare) = %v, %v", ok, err)
	}
}
