// Package sqlite is the embedded SQLite backend of the server store, on the
// pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so a transaction is
// durable when it commits. All writes go through one connection (SQLite
// has one writer; serializing in the process avoids busy retries), while
// reads use a pool of connections that see the last committed state.
// Migrations are embedded and versioned in the schema_migrations table.
//
// The statements it shares with the PostgreSQL backend live in package
// sqlstore, which Store embeds; this package adds what SQLite does its own
// way: group-committed appends with prepared multi-row inserts, the
// compare-and-set of commits and proposals on the narrow
// conversation_heads table, the membership changes of a commit, KeyPackage
// claims, pruning, backup and the integrity checks.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures a Store. Start from NewConfig.
type Config struct {
	// Path is the database file.
	Path string
	// BusyTimeout is how long a connection waits for a lock.
	BusyTimeout time.Duration
	// Readers is the size of the reader pool.
	Readers int
}

// NewConfig returns the default configuration for the database file.
func NewConfig(path string) Config {
	return Config{Path: path, BusyTimeout: 10 * time.Second, Readers: 4}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("sqlite: config: empty path")
	case c.BusyTimeout < 0:
		return fmt.Errorf("sqlite: config: negative busy timeout %v", c.BusyTimeout)
	case c.Readers < 1:
		return fmt.Errorf("sqlite: config: readers %d, want at least 1", c.Readers)
	}
	return nil
}

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	// Store holds the methods whose SQL is shared with PostgreSQL.
	*sqlstore.Store

	w      *sql.DB          // w is the single writer connection.
	r      *sql.DB          // r is the reader pool.
	reader sqlstore.Querier // reader is r as sqlstore queries it.
	path   string

	memberOf, convHead, bumpHead *sql.Stmt
	insEntries                   []*sql.Stmt // insEntries[i] inserts insertChunks[i] entries
}

var _ store.Store = (*Store)(nil)

// dsn builds the driver's connection string.
func dsn(c Config, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Statement journals (kept while a statement in a transaction runs,
	// to undo just it) in memory rather than in a temporary file.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(c.BusyTimeout.Milliseconds(), 10)+")")
	if writer {
		q.Set("_txlock", "immediate")
	}
	return "file:" + c.Path + "?" + q.Encode()
}

// Open opens (creating if needed) the database and applies pending
// migrations. A new database file is created with mode 0600 whatever the
// process umask; SQLite gives the -wal and -shm files it creates later
// the mode of the database file, so they are 0600 too.
func Open(ctx context.Context, c Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := createPrivate(c.Path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: open %s: %v", c.Path, err)
	}
	w, err := sql.Open("sqlite", dsn(c, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %v", c.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, path: c.Path}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(c, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %v", c.Path, err)
	}
	r.SetMaxOpenConns(c.Readers)
	r.SetMaxIdleConns(c.Readers)
	s.r, s.reader = r, dbQuerier{r}
	s.Store = sqlstore.New(backend{s}, sqlstore.Dialect{
		Name:         "sqlite",
		IsUnique:     isUnique,
		IsForeignKey: isForeignKey,
		Heads:        "conversation_heads",
	})
	s.insEntries = make([]*sql.Stmt, len(insertChunks))
	stmts := []struct {
		st  **sql.Stmt
		sql string
	}{
		{&s.memberOf, `SELECT 1 FROM members WHERE conversation_id = $1 AND device_id = $2 AND left_seq = 0`},
		{&s.convHead, `SELECT 1 FROM conversations WHERE id = $1`},
		{&s.bumpHead, `UPDATE conversation_heads SET head = head + $1 WHERE conversation_id = $2 RETURNING head`},
	}
	for i, n := range insertChunks {
		stmts = append(stmts, struct {
			st  **sql.Stmt
			sql string
		}{&s.insEntries[i], insertEntriesSQL(n)})
	}
	for _, p := range stmts {
		if *p.st, err = w.PrepareContext(ctx, p.sql); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: prepare: %v", err)
		}
	}
	if err := s.ConvertTreeNodes(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations not yet recorded.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %v", s.path, err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %v", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("sqlite: migrate: bad migration name %q", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %v", err)
		}
		err = s.write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)`, version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s to version %d: %v", s.path, version, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	for _, st := range append([]*sql.Stmt{s.memberOf, s.convHead, s.bumpHead}, s.insEntries...) {
		if st != nil {
			st.Close()
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %v", s.path, err)
	}
	return nil
}

// write runs fn in a write transaction and commits it; any error (or
// panic) rolls it back.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

// isForeignKey reports whether err is a FOREIGN KEY violation.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Backup writes a consistent copy of the database to path with VACUUM
// INTO, without blocking writers. path must not exist; the copy is
// created with mode 0600, and removed again if the backup fails.
func (s *Store) Backup(ctx context.Context, path string) error {
	// VACUUM INTO accepts an existing empty file and keeps its mode.
	if err := createPrivate(path); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %v", path, err)
	}
	if _, err := s.r.ExecContext(ctx, `VACUUM INTO $1`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlite: backup to %s: %v", path, err)
	}
	return nil
}

// createPrivate creates path as an empty file with mode 0600 (explicitly
// set, so the umask cannot widen or narrow it); it fails with an error
// matching fs.ErrExist when path exists.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
