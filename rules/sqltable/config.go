package sqltable

import (
	"fmt"

	"postgate/rules/dbcommon"
)

// knownParams are the names pgsql_table(5) and mysql_table(5) define; others
// are reported as unknown. Those that only tune Postfix's own client
// (option_file, tls_*, idle_interval...) are accepted and not used.
var knownParams = []string{"hosts", "user", "password", "dbname", "query", "result_format",
	"domain", "expansion_limit", "table", "select_field", "where_field", "additional_conditions",
	"select_function", "idle_interval", "retry_interval",
	"option_file", "option_group", "require_result_set", "tls_cert_file", "tls_key_file",
	"tls_CAfile", "tls_CApath", "tls_verify_cert", "tls_ciphers"}

// query is the query parameter, or the one Postfix builds from the
// obsolete table, select_field, where_field and additional_conditions.
func query(c *dbcommon.Config) (string, error) {
	if c.IsSet("query") {
		return c.Str("query", ""), nil
	}
	var parts [3]string
	for i, name := range []string{"table", "select_field", "where_field"} {
		v, err := c.Required(name)
		if err != nil {
			return "", fmt.Errorf("%w (and query is not set)", err)
		}
		parts[i] = v
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s='%%s' %s", parts[1], parts[0], parts[2], c.Str("additional_conditions", "")), nil
}
