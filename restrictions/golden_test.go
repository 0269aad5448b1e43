package restrictions

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"postgate/rules"
	"postgate/rules/route"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the scripts")

// TestGolden runs testdata/*.script and compares the transcript with
// *.golden (Postfix's smtpd_check test idea). The policy answers are
// recorded from the real Postfix in test/testdata/protocol/policy_*; what
// stays here is what a protocol script cannot show: compile errors and
// relay guards (compile.script), and address classes of interface literals
// a test server cannot listen on (route.script). Script lines:
//
//	# comment                      copied to the transcript
//	file NAME ... end              write $TMP/NAME with the lines between
//	<parameter> [value...]         a main.cf-style setting; $TMP is the temp dir
//	client NAME ADDR               new session, CONNECT stage
//	helo|ehlo NAME                 HELO stage
//	mail ADDR | rcpt ADDR          MAIL / RCPT stages (<> for the null sender)
//	data | eod | etrn DOMAIN       DATA / END-OF-MESSAGE / ETRN stages
//	rset | sasl USER               end the transaction / mark AUTH done
//	compile | relay_guarded | not_implemented
func TestGolden(t *testing.T) {
	scripts, err := filepath.Glob("testdata/*.script")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".script")
		t.Run(name, func(t *testing.T) {
			got := runScript(t, script)
			golden := strings.TrimSuffix(script, ".script") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./restrictions -update)", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s:\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n-%s\n+%s", i+1, wl, gl)
		}
	}
	return ""
}

type harness struct {
	t        *testing.T
	tmp      string
	params   map[string]string
	lists    *Lists
	err      error
	dirty    bool
	req      Request
	lastRcpt string
	txn      *Txn
	out      strings.Builder
}

func runScript(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, tmp: t.TempDir(), dirty: true, txn: &Txn{}, params: map[string]string{
		"smtpd_relay_restrictions":                  DefaultRelayRestrictions,
		"smtpd_delay_reject":                        "yes",
		"smtpd_relay_before_recipient_restrictions": "yes",
	}}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0 || strings.HasPrefix(fields[0], "#"):
			h.out.WriteString(line + "\n")
		case fields[0] == "file":
			h.out.WriteString(">>> " + line + "\n")
			var body []string
			for i++; i < len(lines) && lines[i] != "end"; i++ {
				body = append(body, lines[i])
				h.out.WriteString(lines[i] + "\n")
			}
			h.out.WriteString("end\n")
			if err := os.WriteFile(filepath.Join(h.tmp, fields[1]), []byte(strings.Join(body, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			h.out.WriteString(">>> " + line + "\n")
			h.command(fields[0], strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0])))
		}
	}
	return strings.ReplaceAll(h.out.String(), h.tmp, "$TMP")
}

func (h *harness) command(cmd, arg string) {
	stages := map[string]Stage{"helo": Helo, "ehlo": Ehlo, "mail": Mail, "rcpt": Rcpt, "data": Data, "eod": EndOfData, "etrn": Etrn}
	switch cmd {
	case "client":
		f := strings.Fields(arg)
		h.req = Request{ClientName: f[0], ReverseName: f[0], ClientAddr: netip.MustParseAddr(f[1]), Proto: "ESMTP"}
		h.txn, h.lastRcpt = &Txn{}, ""
		h.check(Connect)
	case "helo", "ehlo":
		h.req.Helo = arg
		h.check(stages[cmd])
	case "mail":
		h.txn.Reset()
		h.req.Sender, h.req.Recipient, h.req.RecipientCount, h.lastRcpt = trimAngle(arg), "", 0, ""
		h.check(Mail)
	case "rcpt":
		h.req.Recipient = trimAngle(arg)
		if v := h.check(Rcpt); v.Decision != Reject {
			h.req.RecipientCount++
			h.lastRcpt = h.req.Recipient
		}
		h.req.Recipient = h.lastRcpt
	case "data", "eod":
		h.check(stages[cmd])
	case "etrn":
		h.req.EtrnDomain = arg
		h.check(Etrn)
	case "rset":
		h.txn.Reset()
		h.req.Sender, h.req.Recipient, h.req.RecipientCount, h.lastRcpt = "", "", 0, ""
		h.out.WriteString("OK\n")
	case "sasl":
		h.req.SASLUser = arg
		h.out.WriteString("OK\n")
	case "compile":
		if h.compile() {
			h.out.WriteString("OK\n")
			for _, w := range h.lists.Warnings() {
				h.out.WriteString("    warning: " + w + "\n")
			}
		}
	case "relay_guarded":
		if h.compile() {
			h.out.WriteString(strconv.FormatBool(h.lists.RelayGuarded()) + "\n")
		}
	case "not_implemented":
		if h.compile() {
			h.out.WriteString(strings.Join(h.lists.NotImplemented(), "\n") + "\n")
		}
	default:
		h.params[cmd] = strings.ReplaceAll(arg, "$TMP", h.tmp)
		h.dirty = true
		h.out.WriteString("OK\n")
	}
}

func trimAngle(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
}

func (h *harness) check(stage Stage) Verdict {
	if !h.compile() {
		return Verdict{Decision: Reject}
	}
	req := h.req
	v := h.lists.Check(context.Background(), stage, &req, h.txn)
	if v.Decision == Reject {
		h.out.WriteString(v.Reply.String() + "\n")
	} else {
		h.out.WriteString("OK (" + v.Decision.String() + ")\n")
	}
	for _, l := range v.Log {
		switch l.Kind {
		case LogAction:
			h.out.WriteString("    log: " + l.What + ": " + l.Text + "\n")
		case LogWarning:
			h.out.WriteString("    log: warning: " + l.Text + "\n")
		default:
			h.out.WriteString("    log: " + l.Text + "\n")
		}
	}
	for _, e := range v.Effects {
		fmt.Fprintf(&h.out, "    effect: %s arg=%q text=%q\n", e.Action, e.Arg, e.Text)
	}
	if v.Disconnect {
		h.out.WriteString("    disconnect\n")
	}
	return v
}

// compile (re)builds the lists after settings changed; false after an
// error, which is written to the transcript.
func (h *harness) compile() bool {
	if h.dirty {
		h.dirty = false
		h.lists, h.err = h.build()
	}
	if h.err != nil {
		h.out.WriteString("compile error: " + h.err.Error() + "\n")
		return false
	}
	return true
}

func (h *harness) build() (*Lists, error) {
	p := h.params
	parent := DefaultParentDomainMatchesSubdomains
	if v, ok := p["parent_domain_matches_subdomains"]; ok {
		set := map[string]bool{}
		for _, f := range rules.SplitList(v) {
			set[f] = true
		}
		parent = func(f string) bool { return set[f] }
	}
	yes := func(name string) bool { return strings.EqualFold(p[name], "yes") }
	code := func(name string) int { n, _ := strconv.Atoi(p[name]); return n }
	o := Options{
		RejectCode:                     code("reject_code"),
		DeferCode:                      code("defer_code"),
		RelayDomainsRejectCode:         code("relay_domains_reject_code"),
		AccessMapRejectCode:            code("access_map_reject_code"),
		AccessMapDeferCode:             code("access_map_defer_code"),
		InvalidHostnameRejectCode:      code("invalid_hostname_reject_code"),
		NonFQDNRejectCode:              code("non_fqdn_reject_code"),
		MultiRecipientBounceRejectCode: code("multi_recipient_bounce_reject_code"),
		SoftBounce:                     yes("soft_bounce"),
		DelayReject:                    yes("smtpd_delay_reject"),
		RelayBeforeRecipient:           yes("smtpd_relay_before_recipient_restrictions"),
		ParentDomainMatchesSubdomains:  parent,
		Myorigin:                       p["myorigin"],
		RecipientDelimiter:             p["recipient_delimiter"],
		NullAccessLookupKey:            p["smtpd_null_access_lookup_key"],
		LogAccessPermitActions:         rules.SplitList(p["smtpd_log_access_permit_actions"]),
		Classes:                        map[string]string{},
	}
	var err error
	if o.Mynetworks, err = rules.NewAddrList(rules.SplitList(p["mynetworks"])); err != nil {
		return nil, fmt.Errorf("mynetworks: %w", err)
	}
	if o.RelayDomains, err = rules.NewDomainList(rules.SplitList(p["relay_domains"]), parent("relay_domains")); err != nil {
		return nil, fmt.Errorf("relay_domains: %w", err)
	}
	if o.MyDestination, err = rules.NewDomainList(rules.SplitList(p["mydestination"]), parent("mydestination")); err != nil {
		return nil, fmt.Errorf("mydestination: %w", err)
	}
	if o.Route, err = h.route(parent); err != nil {
		return nil, err
	}
	for _, c := range rules.SplitList(p["smtpd_restriction_classes"]) {
		o.Classes[c] = p[c]
	}
	return Compile(p, o)
}

// route builds the address resolver from the script's settings, as the
// gateway does from main.cf.
func (h *harness) route(parent func(string) bool) (*route.Resolver, error) {
	p := h.params
	o := route.Options{
		Myorigin:                      p["myorigin"],
		Myhostname:                    p["myhostname"],
		RecipientDelimiter:            p["recipient_delimiter"],
		ParentDomainMatchesSubdomains: parent,
	}
	if o.Myhostname == "" {
		o.Myhostname = o.Myorigin
	}
	for _, d := range []struct {
		param string
		list  **rules.DomainList
	}{
		{"mydestination", &o.MyDestination},
		{"relay_domains", &o.RelayDomains},
		{"virtual_alias_domains", &o.VirtualAliasDomains},
		{"virtual_mailbox_domains", &o.VirtualMailboxDomains},
	} {
		l, err := rules.NewDomainList(rules.SplitList(p[d.param]), parent(d.param))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.param, err)
		}
		*d.list = l
	}
	for _, a := range rules.SplitList(p["inet_interfaces"]) {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("inet_interfaces: %w", err)
		}
		o.InetInterfaces = append(o.InetInterfaces, addr)
	}
	return route.New(o), nil
}
