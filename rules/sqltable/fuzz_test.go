package sqltable

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzExpand: any templates either load or are refused, expanding never
// panics, and a key put in a '%s' literal reads back, as each server reads
// the literal, as the key itself (the literal does not end early).
func FuzzExpand(f *testing.F) {
	f.Add("SELECT v FROM t WHERE k='%s' AND d='%d'", "%u@%D %1", "o'neil@a.b.c", "x@y")
	f.Add("%2.%1", "%S", `a\'@x..y.`, "@")
	f.Add("%%%s", "%U%%", "\x1a\n\r\"\\'", "")
	f.Fuzz(func(t *testing.T, query, result, key, value string) {
		if tm, err := parseTemplates(query, result); err == nil {
			tm.expandQuery(key, quotePgsql)
			tm.expandQuery(key, quoteMysql)
			tm.expandResult(value, key)
		}
		if !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
			return
		}
		tm, err := parseTemplates("'%s'", "%s")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name    string
			quote   quoteFunc
			unquote func(string) (string, bool)
		}{{"pgsql", quotePgsql, readPgsqlLiteral}, {"mysql", quoteMysql, readMysqlLiteral}} {
			q, ok, err := tm.expandQuery(key, c.quote)
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
