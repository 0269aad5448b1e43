package sqltable

import (
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

var pgsql = driver{name: "pgsql", quote: quotePgsql, connect: connectPgsql}

// connectPgsql makes a pool for one pgsql hosts entry: "postgresql://..."
// (used as it is), "unix:/socket/dir", "inet:host[:port]", "host[:port]",
// or "/socket/dir", the forms Postfix accepts.
func connectPgsql(entry string, p params) (*sql.DB, error) {
	var cfg *pgx.ConnConfig
	var err error
	if strings.HasPrefix(entry, "postgresql:") {
		cfg, err = pgx.ParseConfig(entry)
	} else {
		cfg, err = pgx.ParseConfig("")
		if err == nil {
			err = pgsqlHost(cfg, entry, p)
		}
	}
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = connectTimeout
	// The key is put in the SQL text quoted for these settings, which
	// therefore may not be left to the server's configuration.
	cfg.RuntimeParams["standard_conforming_strings"] = "on"
	cfg.RuntimeParams["client_encoding"] = "UTF8"
	// One round trip per lookup, as PQexec: each key is a different text,
	// so caching prepared statements would not help.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return stdlib.OpenDB(*cfg), nil
}

func pgsqlHost(cfg *pgx.ConnConfig, entry string, p params) error {
	name := strings.TrimPrefix(strings.TrimPrefix(entry, "unix:"), "inet:")
	// Only the host named, on the port libpq would use (5432, or $PGPORT
	// as for Postfix's "unix:" form, which names no port).
	cfg.Fallbacks = nil
	cfg.Host = name
	if !strings.HasPrefix(name, "/") {
		if h, port, err := net.SplitHostPort(name); err == nil {
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return fmt.Errorf("bad port %q", port)
			}
			cfg.Host, cfg.Port = h, uint16(n)
		}
	}
	if cfg.Host == "" {
		return fmt.Errorf("no host name")
	}
	cfg.User, cfg.Password, cfg.Database = p.user, p.password, p.dbname
	cfg.TLSConfig = nil // as libpq's default sslmode, without the opportunistic TLS
	return nil
}
