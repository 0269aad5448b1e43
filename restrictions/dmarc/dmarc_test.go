package dmarc

import (
	"context"
	"testing"

	"postgate/restrictions/internal/txtzone"
)

type zone = txtzone.Zone

func TestEvaluate(t *testing.T) {
	z := zone{
		"_dmarc.example.com":      "v=DMARC1; p=reject; aspf=s",
		"_dmarc.relaxed.example":  "v=DMARC1; p=quarantine; sp=reject",
		"_dmarc.sampled.example":  "v=DMARC1; p=reject; pct=0",
		"_dmarc.broken.example":   "v=DMARC1; p=sometimes",
		"_dmarc.flaky.example":    txtzone.Temp,
		"_dmarc.example.co.uk":    "v=DMARC1; p=none",
		"_dmarc.quarantine.other": "v=DMARC1; p=quarantine; pct=0",
	}
	for _, c := range []struct {
		name                      string
		in                        Input
		value, policy, dispositon string
	}{
		{"spf strict aligned", Input{From: "example.com", SPFDomain: "example.com", SPFPass: true}, Pass, PolicyReject, PolicyNone},
		{"spf strict unaligned", Input{From: "example.com", SPFDomain: "mail.example.com", SPFPass: true}, Fail, PolicyReject, PolicyReject},
		{"spf not pass", Input{From: "example.com", SPFDomain: "example.com"}, Fail, PolicyReject, PolicyReject},
		{"dkim relaxed aligned", Input{From: "example.com", DKIM: []string{"Mail.Example.COM."}}, Pass, PolicyReject, PolicyNone},
		{"dkim other org", Input{From: "example.com", DKIM: []string{"example.net"}}, Fail, PolicyReject, PolicyReject},
		{"sp for a subdomain", Input{From: "a.b.relaxed.example", SPFDomain: "relaxed.example"}, Fail, PolicyReject, PolicyReject},
		{"sp relaxed aligned", Input{From: "a.relaxed.example", SPFDomain: "relaxed.example", SPFPass: true}, Pass, PolicyReject, PolicyNone},
		{"pct=0 lowers reject", Input{From: "sampled.example"}, Fail, PolicyReject, PolicyQuarantine},
		{"pct=0 lowers quarantine", Input{From: "quarantine.other"}, Fail, PolicyQuarantine, PolicyNone},
		{"public suffix", Input{From: "www.example.co.uk"}, Fail, PolicyNone, PolicyNone},
		{"no record", Input{From: "nothing.example"}, None, "", PolicyNone},
		{"bad record", Input{From: "broken.example"}, PermError, "", PolicyNone},
		{"temporary failure", Input{From: "flaky.example"}, TempError, "", PolicyNone},
	} {
		got := Evaluate(context.Background(), z, c.in)
		if got.Value != c.value || got.Policy != c.policy || got.Disposition != c.dispositon {
			t.Errorf("%s: %+v, want %s p=%s dis=%s", c.name, got, c.value, c.policy, c.dispositon)
		}
	}
}

func TestOrganizationalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"a.b.example.com": "example.com", "example.com": "example.com",
		"www.example.co.uk": "example.co.uk", "mail.dmarc.test": "dmarc.test", "co.uk": "co.uk",
	} {
		if got := OrganizationalDomain(in); got != want {
			t.Errorf("OrganizationalDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
