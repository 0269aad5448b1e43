package restrictions

import (
	"os"
	"strings"
	"testing"

	"postgate/rules"
)

// The example in README.md compiles (tables replaced by static ones).
func TestReadmeExample(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, " = ")
		if ok && !strings.ContainsAny(name, " `") {
			params[name] = value
		}
	}
	if len(params) == 0 {
		t.Fatal("no example in README.md")
	}
	o := Options{
		Classes:   map[string]string{},
		OpenTable: func(spec string) (rules.Table, error) { return rules.Open("static:DUNNO") },
	}
	for _, c := range rules.SplitList(params["smtpd_restriction_classes"]) {
		o.Classes[c] = params[c]
	}
	l, err := Compile(params, o)
	if err != nil {
		t.Fatal(err)
	}
	if !l.RelayGuarded() || len(l.NotImplemented()) != 0 {
		t.Errorf("guarded=%v not implemented=%q", l.RelayGuarded(), l.NotImplemented())
	}
}
