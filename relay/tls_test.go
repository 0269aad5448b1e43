package relay

import "testing"

func TestTLSPolicyParse(t *testing.T) {
	for _, tc := range []struct {
		value string
		level TLSLevel
		match []string
		bad   bool
	}{
		{value: "encrypt", level: TLSEncrypt},
		{value: "none protocols=>=TLSv1.2", level: TLSNone}, // attributes ignored without TLS
		{value: "verify match=hostname:nexthop", level: TLSVerify, match: []string{"hostname", "nexthop"}},
		{value: "secure match=.example.com match=example.net", level: TLSSecure, match: []string{".example.com", "example.net"}},
		{value: "may ciphers=high", level: TLSMay},
		{value: "encrypt match=hostname", bad: true}, // match only with verify and secure
		{value: "dane", bad: true},
		{value: "encrypt protocols=!TLSv1.2", bad: true},
		{value: "encrypt nonsense=1", bad: true},
		{value: "encrypt bare", bad: true},
		{value: "secure match=", bad: true},
		{value: "", bad: true},
	} {
		var p tlsPolicy
		err := p.parse(tc.value)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted", tc.value)
			}
			continue
		}
		if err != nil || p.level != tc.level || len(p.match) != len(tc.match) {
			t.Errorf("%q: level %v match %q, %v; want %v %q", tc.value, p.level, p.match, err, tc.level, tc.match)
		}
	}
}

// Policy table values are admin input: any text is a policy or an error.
func FuzzTLSPolicy(f *testing.F) {
	for _, s := range []string{"encrypt", "verify match=hostname:nexthop", "may protocols=>=TLSv1.2 ciphers=high", "dane-only", "secure match="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var p tlsPolicy
		if err := p.parse(v); err == nil && (p.level < TLSNone || p.level > TLSSecure) {
			t.Errorf("%q: level %d", v, p.level)
		}
	})
}
