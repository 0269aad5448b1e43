package ldaptable

import (
	"testing"

	"github.com/go-ldap/ldap/v3"

	"postgate/rules/dbcommon"
)

// FuzzFilter: keys are remote input. A key put in a filter by the
// quoting is read by the LDAP filter parser as one equality value, the
// key itself, never as a wildcard or more filter; and special attribute
// values (from the directory) parse as LDAP URLs or fail without a panic.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"user@example.test", "*", "x)(uid=*", `\2a`, "a\x00b", "josé@exemple.fr", "\xff",
		"ldap:///ou=people,dc=x?mail?one?(objectClass=*)", "ldap://h/%zz", "<URL:ldaps://h/dc=x??sub>"} {
		f.Add(s)
	}
	tm, err := dbcommon.ParseTemplates("proxyAddresses=smtp:%s", "%s")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if isLDAPURL(key) {
			parseLDAPURL(key)
		}
		q, ok, _ := tm.ExpandQuery(key, quoteFilter)
		if !ok {
			return
		}
		p, err := ldap.CompileFilter(filter(q))
		if err != nil {
			t.Fatalf("key %q: filter %q: %v", key, q, err)
		}
		if p.Tag != ldap.FilterEqualityMatch || len(p.Children) != 2 {
			t.Fatalf("key %q: filter %q is not one equality match", key, q)
		}
		if got := p.Children[1].Data.String(); got != "smtp:"+key {
			t.Fatalf("key %q: filter %q asserts the value %q", key, q, got)
		}
	})
}
