package sqltable

import (
	"strings"
	"testing"
	"unicode/utf8"

	"postgate/rules/dbcommon"
)

// FuzzQuote: a query expands with each server's quoting without a panic,
// and a key put in a '%s' literal reads back, as each server reads the
// literal, as the key itself (the literal does not end early).
func FuzzQuote(f *testing.F) {
	f.Add("SELECT v FROM t WHERE k='%s' AND d='%d'", "o'neil@a.b.c")
	f.Add("%2.%1", `a\'@x..y.`)
	f.Add("%%%s", "\x1a\n\r\"\\'")
	f.Fuzz(func(t *testing.T, query, key string) {
		if tm, err := dbcommon.ParseTemplates(query, "%s"); err == nil {
			tm.ExpandQuery(key, quotePgsql)
			tm.ExpandQuery(key, quoteMysql)
		}
		if key == "" || !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
			return
		}
		tm, err := dbcommon.ParseTemplates("'%s'", "%s")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name    string
			quote   dbcommon.Quote
			unquote func(string) (string, bool)
		}{{"pgsql", quotePgsql, readPgsqlLiteral}, {"mysql", quoteMysql, readMysqlLiteral}} {
			q, ok, err := tm.ExpandQuery(key, c.quote)
			if err != nil || !ok {
				t.Fatalf("%s: %q: %v %v", c.name, key, ok, err)
			}
			if got, ok := c.unquote(q); !ok || got != key {
				t.Errorf("%s: key %q quoted as %s reads back as %q (whole literal: %v)", c.name, key, q, got, ok)
			}
		}
	})
}

// readPgsqlLiteral reads a '...' literal with standard_conforming_strings
// on; ok is false when it ends before the end of s.
func readPgsqlLiteral(s string) (string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == '\'' {
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			return b.String(), i == len(s)-1
		}
		b.WriteByte(s[i])
	}
	return b.String(), false
}

// readMysqlLiteral reads a '...' literal in MySQL's default sql_mode.
func readMysqlLiteral(s string) (string, bool) {
	unescape := map[byte]byte{'n': '\n', 'r': '\r', 'Z': '\x1a', '0': 0, '\\': '\\', '\'': '\'', '"': '"'}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			c, ok := unescape[s[i+1]]
			if !ok {
				c = s[i+1]
			}
			b.WriteByte(c)
			i++
		case s[i] == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case s[i] == '\'':
			return b.String(), i == len(s)-1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), false
}
