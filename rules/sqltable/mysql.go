package sqltable

import (
	"database/sql"
	"net"
	"strings"

	mysqldrv "github.com/go-sql-driver/mysql"
)

var mysql = driver{name: "mysql", quote: quoteMysql, connect: connectMysql}

// connectMysql makes a pool for one mysql hosts entry: "unix:/socket/file",
// "inet:host[:port]" or "host[:port]", as Postfix accepts them.
func connectMysql(entry string, p params) (*sql.DB, error) {
	cfg := mysqldrv.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.user, p.password, p.dbname
	if path, ok := strings.CutPrefix(entry, "unix:"); ok {
		cfg.Net, cfg.Addr = "unix", path
	} else {
		cfg.Net, cfg.Addr = "tcp", strings.TrimPrefix(entry, "inet:")
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			cfg.Addr = net.JoinHostPort(cfg.Addr, "3306")
		}
	}
	cfg.Timeout = connectTimeout
	cfg.ReadTimeout, cfg.WriteTimeout = queryTimeout, queryTimeout
	// Never more than one statement per query text (the default, said
	// because the key is in that text).
	cfg.MultiStatements = false
	conn, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}
