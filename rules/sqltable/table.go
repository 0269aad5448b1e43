// Package sqltable serves pgsql:/file.cf and mysql:/file.cf lookup tables
// (Postfix's pgsql_table(5) and mysql_table(5)) over pooled connections,
// so that package rules does not import the database drivers.
package sqltable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"postgate/rules"
	"postgate/rules/dbcommon"
)

func init() {
	for _, d := range []driver{pgsql, mysql} {
		rules.Register(d.name, func(typ, name string, o rules.OpenOptions) (rules.Table, error) {
			t, err := open(d, typ, name, o)
			if err != nil {
				return nil, err // not a nil *Table in a non-nil Table
			}
			return t, nil
		})
	}
}

const (
	// retryInterval: a host that failed is not tried again for this long,
	// as in Postfix (RETRY_CONN_INTV).
	retryInterval = 60 * time.Second
	// idleTime: pooled connections idle this long are closed, as Postfix
	// closes its idle connections after about a minute.
	idleTime = 60 * time.Second
	// connectTimeout bounds opening a connection to one host.
	connectTimeout = 5 * time.Second
	// queryTimeout bounds one query on one host.
	queryTimeout = 10 * time.Second
	// maxIdle connections per host are kept open between lookups.
	maxIdle = 4
)

// driver is what differs between PostgreSQL and MySQL.
type driver struct {
	name  string
	quote dbcommon.Quote
	// connect returns a pool for one hosts entry.
	connect func(host string, p params) (*sql.DB, error)
}

// params are a table's login settings.
type params struct {
	user, password, dbname string
}

// Table is an SQL lookup table.
type Table struct {
	spec           string // "pgsql:/etc/postfix/file.cf", for errors
	driver         driver
	tmpl           *dbcommon.Templates
	domain         *dbcommon.DomainFilter
	expansionLimit int
	hosts          []*host
}

// host is one hosts entry with its connection pool.
type host struct {
	name string
	db   *sql.DB

	mu        sync.Mutex
	downUntil time.Time // after a failure, skipped until then
}

func open(d driver, typ, name string, o rules.OpenOptions) (*Table, error) {
	c, err := dbcommon.ReadConfig(name, knownParams, o.Warn)
	if err != nil {
		return nil, fmt.Errorf("open %s:%s: %w", typ, name, err)
	}
	t := &Table{spec: typ + ":" + name, driver: d}
	var p params
	p.user, p.password = c.Str("user", ""), c.Str("password", "")
	if p.dbname, err = c.Required("dbname"); err != nil {
		return nil, err
	}
	q, err := query(c)
	if err != nil {
		return nil, err
	}
	if t.tmpl, err = c.Templates("query", q); err != nil {
		return nil, err
	}
	if t.expansionLimit, err = c.Int("expansion_limit", 0, 0); err != nil {
		return nil, err
	}
	if t.domain, err = c.DomainFilter(o); err != nil {
		return nil, err
	}
	hosts := rules.SplitList(c.Str("hosts", ""))
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	for _, h := range hosts {
		db, err := d.connect(h, p)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("%s: hosts entry %q: %w", name, h, err)
		}
		db.SetMaxIdleConns(maxIdle)
		db.SetConnMaxIdleTime(idleTime)
		t.hosts = append(t.hosts, &host{name: h, db: db})
	}
	// A reload opens new tables and drops the old ones without closing
	// them: their pools close once the table is unreachable.
	runtime.AddCleanup(t, closeHosts, t.hosts)
	return t, nil
}

func closeHosts(hosts []*host) {
	for _, h := range hosts {
		h.db.Close()
	}
}

// Close closes the connection pools.
func (t *Table) Close() error {
	closeHosts(t.hosts)
	return nil
}

// FixedString: keys are literal strings; the restrictions try parent
// domains and user@ as they do with hash tables (as Postfix marks SQL
// tables DICT_FLAG_FIXED).
func (t *Table) FixedString() bool { return true }

// Lookup runs the query for key on the first host that answers, and joins
// the expanded results with commas. A key without the parts the templates
// need, or outside the domain list, is not found without a query; a
// failure on every host is an error.
func (t *Table) Lookup(ctx context.Context, key string) (string, bool, error) {
	key = strings.ToLower(key)
	if ok, err := t.domain.Allows(ctx, key); err != nil || !ok {
		return "", false, err
	}
	query, ok, err := t.tmpl.ExpandQuery(key, t.driver.quote)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("%s: %w", t.spec, err)
		}
		return "", false, err
	}
	var errs []error
	for _, h := range t.hosts {
		if !h.up() {
			errs = append(errs, fmt.Errorf("host %s: down after a failure, retried later", h.name))
			continue
		}
		values, err := h.query(ctx, query)
		if err != nil {
			if ctx.Err() != nil {
				return "", false, fmt.Errorf("%s: host %s: %w", t.spec, h.name, ctx.Err())
			}
			h.down()
			errs = append(errs, fmt.Errorf("host %s: %w", h.name, err))
			continue
		}
		return t.results(key, values)
	}
	return "", false, fmt.Errorf("%s: no host answered: %w", t.spec, errors.Join(errs...))
}

// results expands result_format over the non-NULL values of every row and
// column; more than expansion_limit results is an error.
func (t *Table) results(key string, values []sql.NullString) (string, bool, error) {
	var out []string
	for _, v := range values {
		if !v.Valid {
			continue
		}
		r, ok := t.tmpl.ExpandResult(v.String, key)
		if !ok {
			continue
		}
		out = append(out, r)
		if t.expansionLimit > 0 && len(out) > t.expansionLimit {
			return "", false, fmt.Errorf("%s: expansion limit %d exceeded for key %q", t.spec, t.expansionLimit, key)
		}
	}
	return strings.Join(out, ","), len(out) > 0, nil
}

func (h *host) up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().After(h.downUntil)
}

func (h *host) down() {
	h.mu.Lock()
	h.downUntil = time.Now().Add(retryInterval)
	h.mu.Unlock()
}

// query runs q on the host's pool and returns every column of every row.
func (h *host) query(ctx context.Context, q string) ([]sql.NullString, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := h.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []sql.NullString
	row := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range row {
		ptrs[i] = &row[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, row...)
	}
	return out, rows.Err()
}
