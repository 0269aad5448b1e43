package sqltable

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// errBadKey: the key cannot be put in SQL text. PostgreSQL and MariaDB
// refuse invalid UTF-8 and NUL in text, as PQescapeStringConn does; the
// lookup fails rather than reach the server with it.
var errBadKey = errors.New("lookup key is not valid UTF-8 or contains NUL")

// quotePgsql escapes a value for a '...' literal as PQescapeStringConn
// does with standard_conforming_strings on (postgate sets it on every
// connection): a quote is doubled, and nothing else is special.
func quotePgsql(s string) (string, error) {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return "", errBadKey
	}
	return strings.ReplaceAll(s, "'", "''"), nil
}

// mysqlEscaper escapes as mysql_real_escape_string does, except for the
// single quote, which is doubled: ” is a quote inside '...' both in the
// default sql_mode and with NO_BACKSLASH_ESCAPES, where \' would end the
// literal.
var mysqlEscaper = strings.NewReplacer(
	`\`, `\\`,
	`'`, `''`,
	`"`, `\"`,
	"\n", `\n`,
	"\r", `\r`,
	"\x1a", `\Z`,
)

func quoteMysql(s string) (string, error) {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return "", errBadKey
	}
	return mysqlEscaper.Replace(s), nil
}
