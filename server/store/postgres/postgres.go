// Package postgres is the PostgreSQL backend of the server store, on
// github.com/jackc/pgx/v5 (pgxpool). It is the store for running several
// parleyd nodes against one database: every rule the store interface
// promises is enforced by PostgreSQL itself, so it holds across processes
// and machines, not only within one.
//
// # Correctness across nodes
//
//   - Commit is a conditional UPDATE of the conversation row
//     (WHERE id = $1 AND epoch = $2) inside the transaction; concurrent
//     commits for one epoch serialise on the row lock and the losers find
//     the epoch moved (a *store.StaleEpochError). The primary key
//     (conversation_id, seq) of the log backs this up.
//   - Log seqs come from the conversation row's head column, updated in the
//     appending transaction while the row is locked (SELECT … FOR NO KEY UPDATE in
//     conversation id order, so concurrent batches cannot deadlock).
//   - KeyPackage claims lock the oldest one-time package of each device with
//     FOR UPDATE SKIP LOCKED and delete it in the same transaction: no
//     package is handed out twice, and concurrent claimers take different
//     packages instead of queueing. A unique partial index keeps one
//     last-resort package per device and suite.
//   - Invite uses are decremented by a conditional UPDATE (uses_left > 0).
//   - AppendEntries is one transaction per batch (group commit) with a
//     fixed number of round trips, whatever the batch size.
//
// Transactions run at READ COMMITTED; a transaction that PostgreSQL aborts
// with a deadlock or serialization failure is retried a few times.
//
// # Deployment
//
// The SQL needs PostgreSQL 10 or newer (identity columns, SKIP LOCKED,
// ON CONFLICT on a partial index); only PostgreSQL 15 is tested. Use a
// release that is still supported upstream. The role needs
// CONNECT on the database and either CREATE on the database (Open then
// creates the schema) or ownership of an existing schema named by
// Config.Schema, for example:
//
//	CREATE ROLE parley LOGIN PASSWORD '…';
//	CREATE SCHEMA parley AUTHORIZATION parley;
//
// Every table lives in that schema; each pooled connection sets its
// search_path to it at startup, and nothing is created in public.
//
// Migrations are embedded SQL files (migrations/NNNN_name.sql) recorded in
// the schema_migrations table. Open applies the pending ones, each in its
// own transaction under a transaction-level advisory lock derived from the
// schema name, so nodes that start at the same time migrate exactly once
// and the others wait and then see the migrated schema. A failed migration
// leaves the schema at the previous version. Migrations are additive, so
// during a rolling upgrade nodes of the previous version keep running on a
// schema migrated by a newer one.
//
// Each node keeps its own pool of at most Config.MaxConns connections;
// size max_connections on the server for nodes × MaxConns plus
// administration. Behind PgBouncer use session pooling, or transaction
// pooling with PgBouncer 1.21 or newer (protocol-level prepared
// statements) and the search_path set on the role (ALTER ROLE … SET
// search_path), because startup parameters are not kept per transaction.
//
// A write is durable when its method returns only if the server commits
// durably: keep fsync and synchronous_commit on (the defaults); with
// synchronous replication, acknowledged writes also survive a failover.
//
// # Differences from the SQLite backend
//
// The statements the backends share live in package sqlstore, which Store
// embeds; this package adds what PostgreSQL does its own way (appends
// from unnest in one batch, the compare-and-set of commits and proposals
// on the conversation row, the membership changes of a commit from
// arrays, KeyPackage claims with SKIP LOCKED, pruning, backup and the
// invariant check). The semantics are the same; the conformance suite in
// storetest runs unchanged against both. Beyond it:
//
//   - Backup writes a psql script (data only) instead of a database file.
//   - A claim that finds the last one-time package of a device locked by a
//     concurrent claim returns the last-resort package instead of waiting;
//     if that other claim then rolls back, the one-time package stays for
//     the next claim. SQLite serialises claims and never does this.
//   - Concurrent last-resort uploads for one device and suite replace each
//     other (the last committed wins) rather than failing.
//   - CheckInvariants runs its queries on one snapshot and also reports
//     invalid constraints and indexes; there is no integrity_check pragma.
//   - CHECK constraints also refuse negative heads, epochs and invite uses.
//
// Backups of a PostgreSQL deployment are an operator task: use pg_dump
// (pg_dump --schema=parley) or the server's continuous archiving.
// Store.Backup nevertheless writes a consistent logical copy, see its
// documentation.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/pgschema"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures a Store. Start from NewConfig.
type Config struct {
	// DSN is the connection string, as a URL
	// (postgres://user@host:5432/db?sslmode=verify-full) or in key=value
	// form; see pgx's ParseConfig. It should not set search_path.
	DSN string
	// Schema is the schema holding every table; it is created when
	// missing.
	Schema string
	// MaxConns is the size of the connection pool of this node.
	MaxConns int
	// MinConns is the number of connections kept open when idle.
	MinConns int
	// ConnectTimeout bounds establishing a connection; zero leaves the
	// DSN's connect_timeout (or none).
	ConnectTimeout time.Duration
}

// NewConfig returns the default configuration for the connection string:
// schema "parley", at most 16 connections.
func NewConfig(dsn string) Config {
	return Config{DSN: dsn, Schema: "parley", MaxConns: 16, ConnectTimeout: 10 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.pool().Validate(); err != nil {
		return fmt.Errorf("postgres: config: %v", err)
	}
	return nil
}

func (c Config) pool() pgschema.Pool {
	return pgschema.Pool{DSN: c.DSN, Schema: c.Schema, MaxConns: c.MaxConns, MinConns: c.MinConns, ConnectTimeout: c.ConnectTimeout}
}

// Store is the PostgreSQL store. It is safe for concurrent use, and
// several Stores (in one or many processes) may share one schema.
type Store struct {
	// Store holds the methods whose SQL is shared with SQLite.
	*sqlstore.Store

	pool   *pgxpool.Pool
	reader sqlstore.Querier // reader is pool as sqlstore queries it.
	schema string
}

var _ store.Store = (*Store)(nil)

// Open connects to the database, creates the schema if needed and applies
// pending migrations.
func Open(ctx context.Context, c Config) (*Store, error) {
	pool, err := pgschema.Open(ctx, c.pool())
	if err != nil {
		return nil, fmt.Errorf("postgres: %v", err)
	}
	s := &Store{pool: pool, reader: pgxQuerier{pool}, schema: c.Schema}
	s.Store = sqlstore.New(backend{s}, sqlstore.Dialect{
		Name:           "postgres",
		IsUnique:       isUnique,
		IsForeignKey:   isForeignKey,
		Heads:          "conversations",
		ForShare:       " FOR SHARE",
		ForNoKeyUpdate: " FOR NO KEY UPDATE",
	})
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.ConvertTreeNodes(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]pgschema.Migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []pgschema.Migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad migration name %q", base)
		}
		if len(out) > 0 && out[len(out)-1].Version == v {
			return nil, fmt.Errorf("duplicate migration version %d", v)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, pgschema.Migration{Version: v, Name: base, SQL: string(body)})
	}
	return out, nil
}

// migrateLockClass is the first key of the store's migration advisory
// lock ("Parl").
const migrateLockClass = 0x5061726c

// migrate applies the embedded migrations not yet recorded in
// schema_migrations.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %v", err)
	}
	m := pgschema.Migrations{Table: "schema_migrations", LockClass: migrateLockClass, List: ms}
	if err := m.Apply(ctx, s.pool, s.schema); err != nil {
		return fmt.Errorf("postgres: %v", err)
	}
	return nil
}

// Ping checks that the database answers; parleyd's readiness uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %v", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// maxAttempts bounds the retries of a transaction PostgreSQL aborted with a
// deadlock or serialization failure.
const maxAttempts = 5

// write runs fn in a READ COMMITTED transaction and commits it; any error
// (or panic) rolls it back. fn must be safe to run again: a transaction
// aborted by a deadlock or serialization failure is retried.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// PostgreSQL error codes the store maps.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// pgCode returns the SQLSTATE of a PostgreSQL error in err's chain, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether the transaction failed as a whole and may be
// run again.
func retryable(err error) bool {
	c := pgCode(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool { return pgCode(err) == codeUniqueViolation }

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool { return pgCode(err) == codeForeignKeyViolation }

// mapConstraint maps unique violations to store.ErrConflict and foreign key
// violations to store.ErrNotFound.
func mapConstraint(err error) error {
	switch {
	case isUnique(err):
		return store.ErrConflict
	case isForeignKey(err):
		return store.ErrNotFound
	}
	return err
}
