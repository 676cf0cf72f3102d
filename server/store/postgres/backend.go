package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-chat/parley/server/store/sqlstore"
)

// pgxQuerier is a sqlstore.Querier on pgx: the pool, or a transaction.
// pgx's ErrNoRows matches sql.ErrNoRows, as sqlstore expects.
type pgxQuerier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

// Exec implements sqlstore.Querier.
func (p pgxQuerier) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// QueryRow implements sqlstore.Querier.
func (p pgxQuerier) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	return p.q.QueryRow(ctx, sql, args...)
}

// Query implements sqlstore.Querier.
func (p pgxQuerier) Query(ctx context.Context, sql string, args []any, each func(sqlstore.Row) error) error {
	rows, err := p.q.Query(ctx, sql, args...)
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

// backend is the Store as sqlstore sees it: the pool, its transactions,
// and the statements PostgreSQL writes its own way (in conversations.go
// and keypackages.go).
type backend struct{ s *Store }

var _ sqlstore.Backend = backend{}

// Read implements sqlstore.Backend.
func (b backend) Read() sqlstore.Querier { return b.s.reader }

// Write implements sqlstore.Backend.
func (b backend) Write(ctx context.Context, fn func(tx sqlstore.Querier) error) error {
	return b.s.write(ctx, func(tx pgx.Tx) error { return fn(pgxQuerier{tx}) })
}
