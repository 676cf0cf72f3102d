package sqlite

import (
	"context"
	"database/sql"

	"github.com/parley-chat/parley/server/store/sqlstore"
)

// dbQuerier is a sqlstore.Querier on database/sql: the reader pool, or a
// write transaction.
type dbQuerier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

// Exec implements sqlstore.Querier.
func (d dbQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// QueryRow implements sqlstore.Querier.
func (d dbQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return d.q.QueryRowContext(ctx, query, args...)
}

// Query implements sqlstore.Querier.
func (d dbQuerier) Query(ctx context.Context, query string, args []any, each func(sqlstore.Row) error) error {
	rows, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// backend is the Store as sqlstore sees it: the reader pool, the writer
// connection, and the statements SQLite writes its own way (in
// conversations.go and keypackages.go).
type backend struct{ s *Store }

var _ sqlstore.Backend = backend{}

// Read implements sqlstore.Backend.
func (b backend) Read() sqlstore.Querier { return b.s.reader }

// Write implements sqlstore.Backend.
func (b backend) Write(ctx context.Context, fn func(tx sqlstore.Querier) error) error {
	return b.s.write(ctx, func(tx *sql.Tx) error { return fn(dbQuerier{tx}) })
}
