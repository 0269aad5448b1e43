package route

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postgate/rules"
)

// The README example resolves as its table says.
func TestReadmeExample(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	var transport []string
	type row struct{ addr, class, transport, nexthop string }
	var rows []row
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "/etc/postfix/"):
			section = strings.TrimSuffix(line, ":")
		case strings.HasPrefix(line, "    ") && section == "/etc/postfix/main.cf":
			if name, value, ok := strings.Cut(strings.TrimSpace(line), " = "); ok {
				params[name] = value
			}
		case strings.HasPrefix(line, "    ") && section == "/etc/postfix/transport":
			transport = append(transport, strings.TrimSpace(line))
		case strings.HasPrefix(line, "| `"):
			f := strings.Split(line, "|")
			clean := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
			rows = append(rows, row{clean(f[1]), clean(f[2]), clean(f[3]), clean(f[4])})
		default:
			section = ""
		}
	}
	if len(params) == 0 || len(transport) == 0 || len(rows) == 0 {
		t.Fatalf("example not found: %d params, %d transport lines, %d rows", len(params), len(transport), len(rows))
	}
	file := filepath.Join(t.TempDir(), "transport")
	if err := os.WriteFile(file, []byte(strings.Join(transport, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{
		MyDestination: domains(t, false, rules.SplitList(params["mydestination"])...),
		RelayDomains:  domains(t, true, rules.SplitList(params["relay_domains"])...),
		Relayhost:     params["relayhost"],
		Myhostname:    "mx.example.com",
		Myorigin:      "mx.example.com",
		TransportMaps: []rules.Table{table(t, strings.Replace(params["transport_maps"], "/etc/postfix/transport", file, 1))},
	}
	r := New(o)
	for _, c := range rows {
		res, err := r.Resolve(context.Background(), c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := (row{c.addr, res.Class.String(), res.Transport, res.Nexthop}); got != c {
			t.Errorf("README says %+v, got %+v", c, got)
		}
	}
}
