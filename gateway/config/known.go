package config

import (
	_ "embed"
	"strings"
	"sync"
)

// postfix_params.txt lists every parameter name Postfix knows (see
// gen_params.sh), so a main.cf copied from Postfix is told "not implemented"
// rather than "unknown parameter".
//
//go:generate sh gen_params.sh postfix_params.txt
//go:embed postfix_params.txt
var postfixParamsText string

type postfixParam struct {
	raw      bool // never $-expanded at load; expanded per request with extra names
	readonly bool // set by the program itself; a main.cf setting is ignored
}

var postfixParams = sync.OnceValue(func() map[string]postfixParam {
	m := make(map[string]postfixParam, 1000)
	for _, line := range strings.Split(postfixParamsText, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var p postfixParam
		for _, mark := range f[1:] {
			p.raw = p.raw || mark == "raw"
			p.readonly = p.readonly || mark == "readonly"
		}
		m[f[0]] = p
	}
	return m
})

// Parameters Postfix derives from master.cf service names, by the command the
// service runs (postconf's service-defined parameters).
var (
	deliverySuffixes = []string{
		"_delivery_slot_cost", "_delivery_slot_discount", "_delivery_slot_loan",
		"_destination_concurrency_failed_cohort_limit", "_destination_concurrency_limit",
		"_destination_concurrency_negative_feedback", "_destination_concurrency_positive_feedback",
		"_destination_rate_delay", "_destination_recipient_limit", "_extra_recipient_limit",
		"_initial_destination_concurrency", "_minimum_delivery_slots", "_recipient_limit",
		"_recipient_refill_delay", "_recipient_refill_limit", "_transport_rate_delay",
	}
	timeLimitSuffix = "_time_limit"
)

// serviceSuffixes returns the derived-parameter suffixes for a service command.
func serviceSuffixes(command string) []string {
	switch command {
	case "local", "error", "virtual", "smtp", "lmtp":
		return deliverySuffixes
	case "pipe":
		return append([]string{timeLimitSuffix}, deliverySuffixes...)
	case "spawn":
		return []string{timeLimitSuffix}
	}
	return nil
}

// looksServiceDerived reports whether name has the shape of a service-derived
// parameter for some service, e.g. "policy_time_limit" or
// "relay_destination_concurrency_limit".
func looksServiceDerived(name string) bool {
	for _, s := range append([]string{timeLimitSuffix}, deliverySuffixes...) {
		if len(name) > len(s) && strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// Legacy database configuration: "ldap:name" in a value makes "name_server_host"
// and friends parameters of main.cf. Suffixes as Postfix 3.7's postconf knows them.
var dbmsSuffixes = map[string][]string{
	"ldap": {"bind", "bind_dn", "bind_pw", "cache", "cache_expiry", "cache_size",
		"chase_referrals", "debuglevel", "dereference", "domain", "expansion_limit",
		"leaf_result_attribute", "query_filter", "recursion_limit", "result_attribute",
		"result_filter", "result_format", "sasl_authz_id", "sasl_mechs", "sasl_minssf",
		"sasl_realm", "scope", "search_base", "server_host", "server_port", "size_limit",
		"special_result_attribute", "start_tls", "terminal_result_attribute", "timeout",
		"tls_ca_cert_dir", "tls_ca_cert_file", "tls_cert", "tls_cipher_suite", "tls_key",
		"tls_random_file", "tls_require_cert", "version"},
	"mysql": {"additional_conditions", "dbname", "domain", "expansion_limit", "hosts",
		"option_file", "option_group", "password", "query", "require_result_set",
		"result_format", "select_field", "table", "tls_CAfile", "tls_CApath",
		"tls_cert_file", "tls_ciphers", "tls_key_file", "tls_verify_cert", "user",
		"where_field"},
	"pgsql": {"additional_conditions", "dbname", "domain", "expansion_limit", "hosts",
		"password", "query", "result_format", "select_field", "select_function", "table",
		"user", "where_field"},
	"sqlite": {"additional_conditions", "dbpath", "domain", "expansion_limit", "query",
		"result_format", "select_field", "table", "where_field"},
	"memcache": {"backup", "data_size_limit", "domain", "flags", "key_format",
		"line_size_limit", "max_try", "memcache", "retry_pause", "timeout", "ttl"},
}

// dbmsNames calls visit for the legacy database parameter names that an
// expanded value brings into use.
func dbmsNames(expanded string, visit func(name string)) {
	for _, tok := range splitWords(expanded) {
		typ, rest, ok := strings.Cut(tok, ":")
		for ok && typ == "proxy" {
			typ, rest, ok = strings.Cut(rest, ":")
		}
		if !ok || rest == "" || rest[0] == '/' || rest[0] == '.' {
			continue
		}
		for _, s := range dbmsSuffixes[typ] {
			visit(rest + "_" + s)
		}
	}
}

// isKnown reports whether name is a parameter of Postfix or postgate.
func isKnown(name string) bool {
	if lookupParam(name) != nil {
		return true
	}
	_, ok := postfixParams()[name]
	return ok
}

func isRaw(name string) bool      { return postfixParams()[name].raw }
func isReadOnly(name string) bool { return postfixParams()[name].readonly }
