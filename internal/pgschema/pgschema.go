// Package pgschema opens PostgreSQL connection pools confined to one
// schema and applies versioned migrations to that schema. The PostgreSQL
// store (server/store/postgres) and the PostgreSQL blob store
// (server/blob/pgblob) share one schema and this mechanism, each with its
// own version table and advisory lock.
package pgschema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool configures a connection pool.
type Pool struct {
	// DSN is the connection string (URL or key=value; see pgx's
	// ParseConfig). It should not set search_path.
	DSN string
	// Schema is the schema every connection uses (its search_path).
	Schema string
	// MaxConns and MinConns size the pool.
	MaxConns, MinConns int
	// ConnectTimeout bounds establishing a connection; zero leaves the
	// DSN's connect_timeout (or none).
	ConnectTimeout time.Duration
}

// Validate checks the configuration, DSN included.
func (c Pool) Validate() error {
	switch {
	case c.DSN == "":
		return errors.New("empty DSN")
	case c.Schema == "" || len(c.Schema) > 63 || strings.ContainsRune(c.Schema, 0):
		return fmt.Errorf("schema %q, want 1 to 63 bytes", c.Schema)
	case c.MaxConns < 1:
		return fmt.Errorf("max conns %d, want at least 1", c.MaxConns)
	case c.MinConns < 0 || c.MinConns > c.MaxConns:
		return fmt.Errorf("min conns %d, want 0 to %d", c.MinConns, c.MaxConns)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("negative connect timeout %v", c.ConnectTimeout)
	}
	if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		return fmt.Errorf("DSN: %v", err)
	}
	return nil
}

// Open validates c and opens a pool whose connections use c.Schema (which
// need not exist yet) and, unless the DSN names one, the application name
// "parleyd". Errors name the server without secrets.
func Open(ctx context.Context, c Pool) (*pgxpool.Pool, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("config: DSN: %v", err)
	}
	pc.MaxConns = int32(c.MaxConns)
	pc.MinConns = int32(c.MinConns)
	if c.ConnectTimeout > 0 {
		pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{c.Schema}.Sanitize()
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "parleyd"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		cc := pc.ConnConfig
		return nil, fmt.Errorf("open %s:%d/%s as %s: %v", cc.Host, cc.Port, cc.Database, cc.User, err)
	}
	return pool, nil
}

// Migration is one schema version.
type Migration struct {
	Version int    // Version is 1, 2, … in order.
	Name    string // Name is recorded with the version (a file name, say).
	SQL     string // SQL is run in the migration's transaction.
}

// Migrations is a set of migrations with its own version table and
// advisory lock in a schema.
type Migrations struct {
	// Table records the applied versions: (version, name, applied).
	Table string
	// LockClass is the first key of the advisory lock that serialises
	// migrations; the second is a hash of the schema name, so schemas
	// migrate independently.
	LockClass int32
	// List is the migrations in version order.
	List []Migration
}

// Apply applies to schema the migrations not yet recorded in m.Table, each
// in a transaction holding the advisory lock, so that nodes starting
// together migrate once. It creates the schema when missing (the role
// then needs CREATE on the database; a role that owns an existing schema
// needs nothing more).
func (m Migrations) Apply(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	table := pgx.Identifier{m.Table}.Sanitize()
	for _, mg := range m.List {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, m.LockClass, schema); err != nil {
				return err
			}
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
					return err
				}
			}
			// Version tables created before names were recorded get the
			// column.
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', applied TIMESTAMPTZ NOT NULL DEFAULT now());
				ALTER TABLE `+table+` ADD COLUMN IF NOT EXISTS name TEXT NOT NULL DEFAULT ''`); err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE version = $1)`, mg.Version).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, mg.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` (version, name) VALUES ($1, $2)`, mg.Version, mg.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema %q to version %d (%s): %v", schema, mg.Version, mg.Name, err)
		}
	}
	return nil
}

// Version returns the newest version recorded in m.Table, 0 for none.
func (m Migrations) Version(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var v *int
	if err := pool.QueryRow(ctx, `SELECT MAX(version) FROM `+pgx.Identifier{m.Table}.Sanitize()).Scan(&v); err != nil {
		return 0, err
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}
