package pgschema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/testenv"
)

// openTest opens a pool on a fresh schema (not created yet), dropped when
// the test ends. Without PostgreSQL it skips, or fails under CI=true
// (testenv).
func openTest(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, testenv.NeedPostgres, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "pgschema_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(context.Background())
	})
	pool, err := Open(context.Background(), Pool{DSN: dsn, Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, schema
}

func TestValidate(t *testing.T) {
	good := Pool{DSN: testenv.PostgresURL(), Schema: "parley", MaxConns: 2}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod  func(*Pool)
		want string
	}{
		{func(p *Pool) { p.DSN = "" }, "empty DSN"},
		{func(p *Pool) { p.DSN = "postgres://h:notaport/db" }, "DSN"},
		{func(p *Pool) { p.Schema = strings.Repeat("s", 64) }, "schema"},
		{func(p *Pool) { p.MaxConns = 0 }, "max conns"},
		{func(p *Pool) { p.MinConns = 3 }, "min conns 3"},
		{func(p *Pool) { p.ConnectTimeout = -time.Second }, "connect timeout"},
	} {
		p := good
		tc.mod(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %q", p, err, tc.want)
		}
	}
}

// Nodes starting together apply each migration once, in order, in the
// pool's schema, which Apply creates; a later Apply with more migrations
// applies only the new ones; a failing migration changes nothing and
// names its version.
func TestApply(t *testing.T) {
	pool, schema := openTest(t)
	ctx := context.Background()
	m := Migrations{Table: "test_migrations", LockClass: 0x54657374, List: []Migration{
		{Version: 1, Name: "one", SQL: `CREATE TABLE t (n INTEGER NOT NULL)`},
		{Version: 2, Name: "two", SQL: `INSERT INTO t VALUES (2)`},
	}}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- m.Apply(ctx, pool, schema) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM t`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows after four concurrent Applies, want 1: %v", rows, err)
	}
	if v, err := m.Version(ctx, pool); err != nil || v != 2 {
		t.Fatalf("version %d, %v; want 2", v, err)
	}
	m.List = append(m.List, Migration{Version: 3, Name: "three", SQL: `INSERT INTO t VALUES (3)`})
	if err := m.Apply(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	m.List = append(m.List, Migration{Version: 4, Name: "bad", SQL: `INSERT INTO t VALUES (4); SELECT * FROM missing`})
	err := m.Apply(ctx, pool, schema)
	if err == nil || !strings.Contains(err.Error(), "version 4 (bad)") {
		t.Fatalf("failing migration: %v", err)
	}
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM t`).Scan(&rows); err != nil || rows != 2 {
		t.Errorf("%d rows after the failed migration, want 2: %v", rows, err)
	}
	if v, _ := m.Version(ctx, pool); v != 3 {
		t.Errorf("version %d after the failed migration, want 3", v)
	}
}

// A version table written before names were recorded gains the column.
func TestApplyUpgradesVersionTable(t *testing.T) {
	pool, schema := openTest(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()+`;
		CREATE TABLE old_migrations (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now());
		INSERT INTO old_migrations (version) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	m := Migrations{Table: "old_migrations", LockClass: 0x54657374, List: []Migration{
		{Version: 1, Name: "one", SQL: `CREATE TABLE never (n INTEGER)`},
		{Version: 2, Name: "two", SQL: `CREATE TABLE t (n INTEGER)`},
	}}
	if err := m.Apply(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	rows, _ := pool.Query(ctx, `SELECT name FROM old_migrations ORDER BY version`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != 2 || names[0] != "" || names[1] != "two" {
		t.Fatalf("recorded names %q, %v; want the old version unnamed and \"two\"", names, err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('never') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("an applied migration ran again: %v %v", exists, err)
	}
}
