package config

import (
	"testing"
	"time"
)

// TestPostscreenService: a postscreen line with its smtpd pass service is
// one listener: the postscreen line's address and position, smtpd's
// process limit and -o overrides, and the postscreen line's postscreen_*
// overrides; main.cf's postscreen_* settings and Postfix's defaults show
// through its view.
func TestPostscreenService(t *testing.T) {
	c, err := Load("testdata/warn/postscreen")
	if err != nil {
		t.Fatal(err)
	}
	svcs := c.Services()
	if len(svcs) != 1 {
		t.Fatalf("%d services, want 1: %+v", len(svcs), svcs)
	}
	s := svcs[0]
	if s.Name != "127.0.0.1:2525" || !s.Postscreen || s.Pos.Line != 1 || s.Command != "smtpd" || s.MaxProc != 100 {
		t.Errorf("service %+v", s)
	}
	v := c.ForService(s)
	for name, want := range map[string]string{
		"smtpd_helo_required":                  "yes",                      // the pass line's -o
		"smtpd_banner":                         "a.example ESMTP postgate", // not the postscreen line's -o
		"postscreen_dnsbl_action":              "drop",                     // the postscreen line's -o
		"postscreen_greet_action":              "enforce",                  // main.cf
		"postscreen_greet_banner":              "a.example ESMTP postgate", // $smtpd_banner
		"postscreen_access_list":               "permit_mynetworks",        // Postfix's default
		"postscreen_denylist_action":           "ignore",
		"postscreen_dnsbl_allowlist_threshold": "0",
	} {
		if got := v.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if p := v.Pos("postscreen_dnsbl_action"); p.Line != 2 {
		t.Errorf("postscreen_dnsbl_action set at %v, want line 2", p)
	}
	if d := v.Duration("postscreen_greet_wait"); d != 6*time.Second {
		t.Errorf("postscreen_greet_wait = %v, want 6s", d)
	}
	if d := c.Stressed(s).Duration("postscreen_greet_wait"); d != 2*time.Second {
		t.Errorf("postscreen_greet_wait under stress = %v, want 2s", d)
	}
	if d := v.Duration("postscreen_dnsbl_max_ttl"); d != time.Hour {
		t.Errorf("postscreen_dnsbl_max_ttl = %v, want 1h", d)
	}
}

// TestPostscreenOldNames: the names before Postfix 3.6 (blacklist,
// whitelist) and 3.1 (postscreen_dnsbl_ttl) still set the new ones.
func TestPostscreenOldNames(t *testing.T) {
	c, err := Parse("main.cf", []byte("postscreen_blacklist_action = drop\npostscreen_dnsbl_whitelist_threshold = -2\npostscreen_dnsbl_ttl = 2h\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Get("postscreen_denylist_action"); got != "drop" {
		t.Errorf("postscreen_denylist_action = %q", got)
	}
	if got := c.Int("postscreen_dnsbl_allowlist_threshold"); got != -2 {
		t.Errorf("postscreen_dnsbl_allowlist_threshold = %d", got)
	}
	if got := c.Duration("postscreen_dnsbl_max_ttl"); got != 2*time.Hour {
		t.Errorf("postscreen_dnsbl_max_ttl = %v", got)
	}
}
