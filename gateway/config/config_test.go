package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, dir string) *Config {
	t.Helper()
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return c
}

func TestGoodFixtureValues(t *testing.T) {
	tests := []struct {
		dir  string
		want map[string]string // Get
	}{
		{"testdata/good/expansion", map[string]string{
			"plain":              "mx1.example.com",
			"braced":             "mx1.example.com",
			"parens":             "mx1.example.com",
			"then_set":           "[set]",
			"then_unset":         "[]",
			"else_set":           "[]",
			"else_unset":         "[unset]",
			"then_braced":        "[ spaced ]",
			"both_set":           "yes",
			"both_unset":         "no",
			"both_unbraced_else": "no",
			"unbraced_colon":     "a:b",
			"nested":             "Gate",
			"dollar":             "$100 and $myhostname",
			"later":              "late",
			"relational_num":     "num",
			"relational_str":     "eq",
			"relational_level":   "older",
			"relational_bare":    "[true]",
			"raw_test":           "raw non-empty",
			"smtpd_banner":       "mx1.example.com ESMTP Gate (3.12)",
			"mydestination":      "mx1.example.com, localhost.example.com, localhost",
			"relay_domains":      "mx1.example.com",
			"mydomain":           "example.com",
			"myorigin":           "mx1.example.com",
			"config_directory":   "testdata/good/expansion",
			"undefined_anything": "",
		}},
		{"testdata/good/types", map[string]string{
			"smtpd_forbid_bare_newline":             "normalize",
			"smtpd_forbid_bare_newline_reject_code": "550",
			"smtpd_forbid_bare_newline_exclusions":  "127.0.0.0/8, [::1]/128 192.0.2.0/24",
			"smtpd_timeout":                         "2m",
		}},
		{"testdata/good/compat0", map[string]string{
			"relay_domains":                             "old.example.com, localhost",
			"mynetworks_style":                          "subnet",
			"smtpd_relay_restrictions":                  "",
			"smtputf8_enable":                           "no",
			"smtpd_relay_before_recipient_restrictions": "no",
		}},
		{"testdata/good/compat2", map[string]string{
			"relay_domains":                             "",
			"mynetworks_style":                          "host",
			"smtpd_relay_restrictions":                  "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
			"smtputf8_enable":                           "yes",
			"smtpd_relay_before_recipient_restrictions": "no",
		}},
		{"testdata/good/debian", map[string]string{ // compatibility_level = 3.6
			"smtpd_banner":    "mx.example.com ESMTP postgate (Debian/GNU)",
			"relay_domains":   "",
			"mydestination":   "mx.example.com, example.com, localhost.example.com, localhost",
			"queue_directory": "/var/spool/postgate",
			"syslog_name":     "postgate",
			"smtpd_relay_before_recipient_restrictions": "yes",
		}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			c := mustLoad(t, tt.dir)
			for name, want := range tt.want {
				if got := c.Get(name); got != want {
					t.Errorf("Get(%q) = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestCurrentDefaultsWithoutCompatibilityLevel(t *testing.T) {
	c, err := Parse("/d/main.cf", []byte("myhostname = a.example\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"compatibility_level":                       "3.12",
		"mynetworks_style":                          "host",
		"relay_domains":                             "",
		"smtputf8_enable":                           "yes",
		"smtpd_relay_restrictions":                  "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
		"smtpd_relay_before_recipient_restrictions": "yes",
		"smtpd_forbid_bare_newline":                 "normalize",
		"message_size_limit":                        "10240000",
	} {
		if got := c.Get(name); got != want {
			t.Errorf("Get(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestTypedAccess(t *testing.T) {
	c := mustLoad(t, "testdata/good/types")
	durations := []struct {
		name string
		want time.Duration
	}{
		{"smtpd_timeout", 2 * time.Minute},
		{"smtpd_error_sleep_time", 3 * time.Second},    // bare number: seconds
		{"postgate_greylist_delay", time.Hour},         // h
		{"maximal_queue_lifetime", 2 * 24 * time.Hour}, // bare number: days
		{"bounce_queue_lifetime", 7 * 24 * time.Hour},  // w
		{"delay_warning_time", 4 * time.Hour},          // bare number: hours
		{"queue_run_delay", 90 * time.Second},
		{"minimal_backoff_time", 300 * time.Second}, // default
	}
	for _, tt := range durations {
		if got := c.Duration(tt.name); got != tt.want {
			t.Errorf("Duration(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	bools := map[string]bool{"smtpd_delay_reject": false, "soft_bounce": true, "smtputf8_enable": false,
		"smtpd_client_port_logging": false, "smtpd_relay_before_recipient_restrictions": true}
	for name, want := range bools {
		if got := c.Bool(name); got != want {
			t.Errorf("Bool(%q) = %v, want %v", name, got, want)
		}
	}
	ints := map[string]int64{"message_size_limit": 0, "smtpd_recipient_limit": 50, "reject_code": 550,
		"smtpd_hard_error_limit": 20, "default_process_limit": 100}
	for name, want := range ints {
		if got := c.Int(name); got != want {
			t.Errorf("Int(%q) = %d, want %d", name, got, want)
		}
	}
	lists := map[string][]string{
		"smtpd_recipient_restrictions": {
			"permit_mynetworks",
			"check_policy_service", "{ inet:127.0.0.1:9998, timeout=10s, default_action=DUNNO }",
			"check_client_access", "inline:{ 1.2.3.4=REJECT, {5.6.7.8 = OK text} }",
			"reject_unauth_destination",
		},
		"smtpd_helo_restrictions":   {"reject_invalid_helo_hostname", "reject_non_fqdn_helo_hostname"},
		"mynetworks":                {"127.0.0.0/8", "[::1]/128", "192.0.2.0/24"},
		"notify_classes":            {"resource", "software"},
		"smtpd_client_restrictions": nil,
	}
	for name, want := range lists {
		if got := c.List(name); !reflect.DeepEqual(got, want) {
			t.Errorf("List(%q) = %q, want %q", name, got, want)
		}
	}
	if v, set := c.Raw("smtpd_forbid_bare_newline"); v != "yes" || !set {
		t.Errorf("Raw(smtpd_forbid_bare_newline) = %q, %v", v, set)
	}
	if v, set := c.Raw("smtpd_banner"); v != "" || set {
		t.Errorf("Raw(smtpd_banner) = %q, %v; want unset", v, set)
	}
	if got, want := c.Pos("smtpd_timeout"), (Position{"testdata/good/types/main.cf", 3}); got != want {
		t.Errorf("Pos(smtpd_timeout) = %v, want %v", got, want)
	}
	if got := c.Pos("smtpd_banner"); got != (Position{}) || got.String() != "default" {
		t.Errorf("Pos(smtpd_banner) = %v, want default", got)
	}
}

func TestServicesAndOverrides(t *testing.T) {
	c := mustLoad(t, "testdata/good/services")
	svcs := c.Services()
	type want struct {
		name    string
		maxProc int
		args    []string
		addrs   []string
		get     map[string]string
		pos     map[string]Position
	}
	master := "testdata/good/services/master.cf"
	wants := []want{
		{name: "smtp", maxProc: 50, addrs: []string{"127.0.0.1:25"},
			get: map[string]string{"smtpd_banner": "gw.example.com ESMTP", "smtpd_timeout": "300s"}},
		{name: "127.0.0.1:2525", maxProc: 10, addrs: []string{"127.0.0.1:2525"},
			get: map[string]string{"smtpd_banner": "loopback gw.example.com",
				"smtpd_recipient_restrictions": "permit_mynetworks, reject"},
			pos: map[string]Position{"smtpd_banner": {master, 4}, "smtpd_recipient_restrictions": {master, 5}}},
		{name: "[::1]:2526", maxProc: 50, args: []string{"-v"}, addrs: []string{"[::1]:2526"},
			get: map[string]string{"smtpd_timeout": "10s", "fast": "yes"}}, // the override takes part in expansion
		{name: "submission", maxProc: 50, addrs: []string{"127.0.0.1:587"},
			get: map[string]string{"smtpd_banner": "gw.example.com submission (submission)",
				"smtpd_client_restrictions": "permit_sasl_authenticated, reject",
				"syslog_name":               "postgate/submission"},
			pos: map[string]Position{"smtpd_client_restrictions": {master, 11}, "smtpd_banner": {master, 12},
				"mua_client_restrictions": {"testdata/good/services/main.cf", 4}}},
		{name: "2527", maxProc: 50, addrs: []string{"127.0.0.1:2527"},
			get: map[string]string{"inet_interfaces": "loopback-only", "inet_protocols": "ipv4",
				"mynetworks": "127.0.0.1/32"}},
	}
	if len(svcs) != len(wants) {
		t.Fatalf("Services() = %d services, want %d: %+v", len(svcs), len(wants), svcs)
	}
	for i, w := range wants {
		s := svcs[i]
		t.Run(w.name, func(t *testing.T) {
			if s.Name != w.name || s.Type != "inet" || s.Command != "smtpd" || s.MaxProc != w.maxProc ||
				!reflect.DeepEqual(s.Args, w.args) {
				t.Errorf("service = %+v", s)
			}
			addrs, err := c.ListenAddrs(s)
			if err != nil || !reflect.DeepEqual(addrs, w.addrs) {
				t.Errorf("ListenAddrs = %q, %v; want %q", addrs, err, w.addrs)
			}
			v := c.ForService(s)
			for name, want := range w.get {
				if got := v.Get(name); got != want {
					t.Errorf("ForService.Get(%q) = %q, want %q", name, got, want)
				}
			}
			for name, want := range w.pos {
				if got := v.Pos(name); got != want {
					t.Errorf("ForService.Pos(%q) = %v, want %v", name, got, want)
				}
			}
		})
	}
	// The main view does not see any service's overrides.
	if got := c.Get("smtpd_banner"); got != "gw.example.com ESMTP" {
		t.Errorf("main Get(smtpd_banner) = %q", got)
	}
}

// The stock master.cf loads: its smtp service runs, the rest is summarised once.
func TestStockMasterCf(t *testing.T) {
	for _, path := range []string{"/usr/share/postfix/master.cf.dist", "testdata/good/debian/master.cf"} {
		t.Run(path, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if os.IsNotExist(err) && strings.HasPrefix(path, "/usr") {
				t.Skip("Debian's postfix package is not installed; testdata has a copy")
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse("/etc/postgate/main.cf", []byte("myhostname = a.example\n"), "/etc/postgate/master.cf", data)
			if err != nil {
				t.Fatal(err)
			}
			svcs := c.Services()
			if len(svcs) != 1 || svcs[0].Name != "smtp" || svcs[0].Chroot != "y" || svcs[0].MaxProc != 100 {
				t.Errorf("Services() = %+v", svcs)
			}
			want := []string{"warning: /etc/postgate/master.cf: skipped 30 Postfix internal services (unix, unix-dgram): postgate runs these in-process"}
			if got := diagStrings(c.Diagnostics()); !reflect.DeepEqual(got, want) {
				t.Errorf("Diagnostics() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// A copied Postfix main.cf gets "not implemented" warnings, never "unknown".
func TestCopiedPostfixMainCf(t *testing.T) {
	c := mustLoad(t, "testdata/good/debian")
	n := 0
	for _, d := range c.Diagnostics() {
		if strings.Contains(d.Msg, "unknown") || !d.Warning {
			t.Errorf("unexpected diagnostic: %s", d)
		}
		if strings.HasSuffix(d.Msg, "not implemented by postgate, ignored") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d not-implemented warnings, want 6", n)
	}
}

func TestNoMasterCf(t *testing.T) {
	c, err := Parse("/d/main.cf", []byte("inet_interfaces = 192.0.2.1\nmyhostname = a.example\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	svcs := c.Services()
	if len(svcs) != 1 || svcs[0].Name != "smtp" || svcs[0].Command != "smtpd" || svcs[0].Chroot != "y" || svcs[0].Pos != (Position{}) {
		t.Fatalf("Services() = %+v", svcs)
	}
	if addrs, err := c.ListenAddrs(svcs[0]); err != nil || !reflect.DeepEqual(addrs, []string{"192.0.2.1:25"}) {
		t.Errorf("ListenAddrs = %q, %v", addrs, err)
	}
	if c.Dir() != "/d" || c.Get("config_directory") != "/d" {
		t.Errorf("Dir() = %q, config_directory = %q", c.Dir(), c.Get("config_directory"))
	}
}

func TestEmbedded(t *testing.T) {
	c := Embedded()
	if c.Dir() != "" || len(c.NonDefault()) != 0 || len(c.Diagnostics()) != 0 {
		t.Errorf("Dir %q, NonDefault %q, Diagnostics %v", c.Dir(), c.NonDefault(), c.Diagnostics())
	}
	svcs := c.Services()
	if len(svcs) != 1 {
		t.Fatalf("Services() = %+v", svcs)
	}
	if addrs, err := c.ListenAddrs(svcs[0]); err != nil || !reflect.DeepEqual(addrs, []string{"127.0.0.1:2525"}) {
		t.Errorf("ListenAddrs = %q, %v", addrs, err)
	}
	for name, want := range map[string]string{
		"queue_directory":      "./postgate-queue",
		"relay_domains":        "",
		"mynetworks_style":     "host",
		"postgate_state_store": "memory",
	} {
		if got := c.Get(name); got != want {
			t.Errorf("Get(%q) = %q, want %q", name, got, want)
		}
	}
	for _, n := range c.List("mynetworks") {
		if !strings.HasPrefix(n, "127.") && n != "[::1]/128" {
			t.Errorf("mynetworks has %q, want loopback only", n)
		}
	}
	if _, set := c.Raw("queue_directory"); set {
		t.Error("embedded defaults count as explicit settings")
	}
}

func TestExpandAtRunTime(t *testing.T) {
	c, err := Parse("/d/main.cf", []byte("myhostname = mx.example\nfooter = see $site\nsite = https://example\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	extra := func(name string) (string, bool) {
		switch name {
		case "client_address":
			return "192.0.2.1", true
		case "rbl_reason":
			return "", true
		case "sender":
			return "$myhostname", true // text from the network is not expanded again
		}
		return "", false
	}
	tests := []struct{ in, want string }{
		{"$client_address via $myhostname", "192.0.2.1 via mx.example"},
		{"blocked${rbl_reason?; $rbl_reason}", "blocked"},
		{"<$sender>", "<$myhostname>"},
		{"$footer", "see https://example"},
		{"${unknown_thing:none}", "none"},
	}
	for _, tt := range tests {
		if got, err := c.Expand(tt.in, extra); err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := c.Expand("${oops", nil); err == nil {
		t.Error("Expand of a broken template did not fail")
	}
}

func diagStrings(ds []Diagnostic) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}
