package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// CheckFile runs SQLite's own structural check on the database file at
// path without opening it as a Store (so no migration runs on a damaged
// file): PRAGMA quick_check, or with full PRAGMA integrity_check, which
// also compares every index with its table. It returns at most maxErrors
// findings; none means the check passed. A file SQLite cannot read as a
// database at all (SQLITE_CORRUPT, SQLITE_NOTADB) is a finding too, not an
// error. The file must exist: CheckFile never creates one.
//
// Cancelling ctx interrupts the check; the error then wraps ctx.Err(), so
// that a caller with a time budget can tell "did not finish" from "found
// nothing". Other errors (permissions, I/O) are returned as they are.
func CheckFile(ctx context.Context, path string, full bool, maxErrors int) ([]string, error) {
	if maxErrors < 1 {
		return nil, fmt.Errorf("sqlite: check %s: max errors %d, want at least 1", path, maxErrors)
	}
	// mode=rw: never create the file. No journal_mode pragma: the file's
	// header says WAL, and a -wal left by a crash is recovered first.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: check %s: %v", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	pragma := "quick_check"
	if full {
		pragma = "integrity_check"
	}
	problems, err := pragmaCheck(ctx, db, pragma, maxErrors)
	switch {
	case err == nil:
		return problems, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("sqlite: check %s: %s interrupted: %w", path, pragma, ctx.Err())
	case IsCorrupt(err):
		return []string{err.Error()}, nil
	}
	return nil, fmt.Errorf("sqlite: check %s: %s: %v", path, pragma, err)
}

// pragmaCheck runs PRAGMA name(maxErrors), one of SQLite's checks that
// answer the single row "ok" or one row per problem, and returns the
// problems.
func pragmaCheck(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, name string, maxErrors int) ([]string, error) {
	rows, err := q.QueryContext(ctx, `PRAGMA `+name+`(`+strconv.Itoa(maxErrors)+`)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var msg string
		if err := rows.Scan(&msg); err != nil {
			return nil, err
		}
		if msg != "ok" {
			problems = append(problems, msg)
		}
	}
	return problems, rows.Err()
}

// IsCorrupt reports whether err is SQLite's verdict that a file is
// damaged (SQLITE_CORRUPT) or not a database (SQLITE_NOTADB).
func IsCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}
