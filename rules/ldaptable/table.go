// Package ldaptable serves ldap:/file.cf lookup tables (Postfix's
// ldap_table(5)) over one reused connection per table, so that package
// rules does not import the LDAP client.
package ldaptable

import (
	"context"
	"crypto/tls"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"postgate/rules"
	"postgate/rules/dbcommon"
)

func init() {
	rules.Register("ldap", func(typ, name string, o rules.OpenOptions) (rules.Table, error) {
		t, err := open(typ, name, o)
		if err != nil {
			return nil, err // not a nil *Table in a non-nil Table
		}
		return t, nil
	})
}

// knownParams are the names ldap_table(5) defines; others are reported.
var knownParams = []string{"server_host", "server_port", "version", "start_tls", "search_base",
	"scope", "query_filter", "result_format", "result_attribute", "special_result_attribute",
	"leaf_result_attribute", "terminal_result_attribute", "bind", "bind_dn", "bind_pw",
	"timeout", "size_limit", "domain", "expansion_limit", "recursion_limit", "dereference",
	"chase_referrals", "tls_ca_cert_file", "tls_ca_cert_dir", "tls_cert", "tls_key",
	"tls_require_cert", "tls_cipher_suite", "tls_random_file", "sasl_mechs", "sasl_realm",
	"sasl_authz_id", "sasl_minssf", "cache", "cache_expiry", "cache_size", "debuglevel", "result_filter"}

// unusedParams tune Postfix's own client or its long-gone cache: set, they
// are reported and ignored (Postfix ignores the cache ones too).
var unusedParams = []string{"tls_cipher_suite", "tls_random_file", "cache", "cache_expiry", "cache_size", "debuglevel"}

// Table is an LDAP lookup table.
type Table struct {
	spec      string // "ldap:/etc/postfix/file.cf", for errors
	servers   []server
	startTLS  bool
	tlsConfig *tls.Config
	bind      bool
	bindDN    string
	bindPW    string
	conn      *connSlot
	timeout   time.Duration

	base        *dbcommon.Templates // search_base, quoted as a DN
	dynamicBase bool                // search_base depends on the key
	query       *dbcommon.Templates // query_filter and result_format
	domain      *dbcommon.DomainFilter
	scope       int
	deref       int

	// attrs are the result attributes in Postfix's order: terminal, leaf,
	// ordinary, then special (DN or LDAP URL values to follow).
	attrs                              []string
	numTerminal, numLeaf, numAttribute int

	sizeLimit, expansionLimit, recursionLimit int
}

func open(typ, name string, o rules.OpenOptions) (*Table, error) {
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, ".") {
		// Postfix reads NAME_server_host... from main.cf for these.
		return nil, fmt.Errorf("open %s:%s: tables configured in main.cf (%s_server_host...) are not supported: use %s:/path/file.cf", typ, name, name, typ)
	}
	c, err := dbcommon.ReadConfig(name, knownParams, o.Warn)
	if err != nil {
		return nil, fmt.Errorf("open %s:%s: %w", typ, name, err)
	}
	if c.IsSet("result_filter") {
		return nil, fmt.Errorf("%s: the old name of result_format: rename it", c.Where("result_filter"))
	}
	for _, p := range unusedParams {
		if c.IsSet(p) && o.Warn != nil {
			o.Warn(fmt.Sprintf("%s: ignored: postgate does not use it", c.Where(p)))
		}
	}
	t := &Table{spec: typ + ":" + name}
	if v, err := c.Int("version", 3, 2); err != nil {
		return nil, err
	} else if v != 3 {
		return nil, fmt.Errorf("%s: LDAP version %d is not supported: postgate speaks LDAPv3 only (set version = 3)", c.Where("version"), v)
	}
	if t.timeout, err = c.Seconds("timeout", 10); err != nil {
		return nil, err
	}
	if t.scope, err = scope(c, o); err != nil {
		return nil, err
	}
	if t.deref, err = c.Int("dereference", 0, 0); err != nil {
		return nil, err
	} else if t.deref > 3 {
		return nil, fmt.Errorf("%s: bad value %d: want 0 (never), 1 (searching), 2 (finding) or 3 (always)", c.Where("dereference"), t.deref)
	}
	if chase, err := c.Bool("chase_referrals", false); err != nil {
		return nil, err
	} else if chase {
		return nil, fmt.Errorf("%s: following referrals is not supported", c.Where("chase_referrals"))
	}
	if t.expansionLimit, err = c.Int("expansion_limit", 0, 0); err != nil {
		return nil, err
	}
	if t.sizeLimit, err = c.Int("size_limit", t.expansionLimit, 0); err != nil {
		return nil, err
	}
	if t.recursionLimit, err = c.Int("recursion_limit", 1000, 1); err != nil {
		return nil, err
	}
	if err := t.parseTemplates(c); err != nil {
		return nil, err
	}
	if t.domain, err = c.DomainFilter(o); err != nil {
		return nil, err
	}
	t.parseAttributes(c)
	if err := t.parseServers(c); err != nil {
		return nil, err
	}
	t.conn = &connSlot{dialing: make(chan struct{}, 1)}
	// A reload drops the old tables without closing them: the connection
	// closes once the table is unreachable.
	runtime.AddCleanup(t, (*connSlot).close, t.conn)
	return t, nil
}

// scope reads sub, one or base; another value is warned about and taken
// as sub, as Postfix does.
func scope(c *dbcommon.Config, o rules.OpenOptions) (int, error) {
	switch v := strings.ToLower(c.Str("scope", "sub")); v {
	case "sub":
		return ldap.ScopeWholeSubtree, nil
	case "one":
		return ldap.ScopeSingleLevel, nil
	case "base":
		return ldap.ScopeBaseObject, nil
	default:
		if o.Warn != nil {
			o.Warn(fmt.Sprintf("%s: unrecognized value %q: using sub", c.Where("scope"), v))
		}
		return ldap.ScopeWholeSubtree, nil
	}
}

// parseTemplates checks search_base, query_filter and result_format; a
// filter that LDAP cannot read is a load error, not a failure per lookup.
func (t *Table) parseTemplates(c *dbcommon.Config) error {
	var err error
	base := c.Str("search_base", "")
	if t.base, err = c.Templates("search_base", base); err != nil {
		return err
	}
	t.dynamicBase = strings.Contains(strings.ReplaceAll(base, "%%", ""), "%")
	if t.query, err = c.Templates("query_filter", c.Str("query_filter", "(mailacceptinggeneralid=%s)")); err != nil {
		return err
	}
	// A key with every part any template can ask for.
	probe, _, _ := t.query.ExpandQuery("user@a.b.c.d.e.f.g.h.i", quoteFilter)
	if _, err := ldap.CompileFilter(filter(probe)); err != nil {
		return fmt.Errorf("%s: %q is not a valid LDAP filter: %w", c.Where("query_filter"), c.Str("query_filter", ""), err)
	}
	return nil
}

// parseAttributes lists the result attributes in Postfix's order.
func (t *Table) parseAttributes(c *dbcommon.Config) {
	split := func(name, def string) []string {
		return strings.FieldsFunc(c.Str(name, def), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	}
	t.attrs = split("terminal_result_attribute", "")
	t.numTerminal = len(t.attrs)
	t.attrs = append(t.attrs, split("leaf_result_attribute", "")...)
	t.numLeaf = len(t.attrs) - t.numTerminal
	t.attrs = append(t.attrs, split("result_attribute", "maildrop")...)
	t.numAttribute = len(t.attrs)
	t.attrs = append(t.attrs, split("special_result_attribute", "")...)
}

// quoteFilter escapes a key for an LDAP filter (RFC 4515): '*', '(', ')',
// '\' and NUL (and bytes above 0x7f) become \XX, so a key is always one
// literal value, never a wildcard or more filter.
func quoteFilter(s string) (string, error) { return ldap.EscapeFilter(s), nil }

// quoteDN escapes a key for a DN (RFC 4514) as Postfix's rfc2253_quote
// does: white space and " # + , ; < > \ become \XX.
func quoteDN(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(" \t\"#+,;<>\\", s[i]) >= 0 {
			fmt.Fprintf(&b, "\\%02X", s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// filter puts parentheses around a filter written without them
// ("mail=%s"), as libldap does.
func filter(f string) string {
	if strings.HasPrefix(strings.TrimSpace(f), "(") {
		return f
	}
	return "(" + f + ")"
}

// FixedString: keys are literal strings; the restrictions try parent
// domains and user@ as they do with hash tables (as Postfix marks LDAP
// tables DICT_FLAG_FIXED).
func (t *Table) FixedString() bool { return true }

func (t *Table) String() string { return t.spec }

// Close closes the connection.
func (t *Table) Close() error {
	t.conn.close()
	return nil
}

// Lookup searches for key and joins the result_format expansions of the
// result attributes' values with commas. A key that is not UTF-8, is
// outside the domain list or lacks the parts the templates need is not
// found without a search. A connection the server has closed is opened
// again (trying the servers in order) and the search made once more; any
// other failure is an error, never "not found".
func (t *Table) Lookup(ctx context.Context, key string) (string, bool, error) {
	if !utf8.ValidString(key) { // checked first: ToLower would make it valid
		return "", false, nil
	}
	key = strings.ToLower(key)
	if ok, err := t.domain.Allows(ctx, key); err != nil || !ok {
		return "", false, err
	}
	base, okBase, _ := t.base.ExpandQuery(key, quoteDN) // no error from quoteDN
	query, ok, _ := t.query.ExpandQuery(key, quoteFilter)
	if !ok || !okBase && t.dynamicBase {
		return "", false, nil
	}
	req := t.request(base, t.scope, filter(query))
	for try := 0; ; try++ {
		c, reused, err := t.conn.get(ctx, t.connect)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", t.spec, err)
		}
		r := &results{t: t, c: c, key: key}
		err = r.search(ctx, req, 1)
		switch {
		case err == nil:
			return strings.Join(r.out, ","), len(r.out) > 0, nil
		case t.dynamicBase && ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
			// The key names a base that does not exist: not found.
			return "", false, nil
		case reused && try == 0 && c.IsClosing() && ctx.Err() == nil:
			t.conn.drop(c) // closed by the server while idle: once more
			continue
		}
		// A request the server left unanswered past timeout is a network
		// error too. When only the caller gave up, the connection stays:
		// other lookups share it.
		if ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
			t.conn.drop(c)
		}
		return "", false, fmt.Errorf("%s: %w", t.spec, err)
	}
}

// request is a search for the result attributes, limited to size_limit
// entries and timeout seconds on the server.
func (t *Table) request(base string, scope int, filter string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(base, scope, t.deref, t.sizeLimit, int(t.timeout/time.Second), false, filter, t.attrs, nil)
}

// call runs f, which is bounded by the connection's request timeout, and
// returns early when ctx ends.
func call(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
