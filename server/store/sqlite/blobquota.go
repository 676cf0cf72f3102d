package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/parley-chat/parley/server/store"
)

// ReserveBlobQuota implements store.Store. The check and the insert run in
// one write transaction, which SQLite runs alone (BEGIN IMMEDIATE takes
// the database's write lock, also against other processes), so no other
// reservation or blob can slip in between.
func (s *Store) ReserveBlobQuota(ctx context.Context, r store.BlobReservation, min, quota int64) (store.BlobReservation, error) {
	if err := r.CheckReserve(min, quota); err != nil {
		return store.BlobReservation{}, fmt.Errorf("sqlite: %w", err)
	}
	out := r
	err := s.write(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = $1`, r.Owner).Scan(&one); err != nil {
			return notFound(err)
		}
		var used, reserved int64
		err := tx.QueryRowContext(ctx, `SELECT
				(SELECT COALESCE(SUM(size), 0) FROM blobs WHERE owner = $1),
				(SELECT COALESCE(SUM(bytes), 0) FROM blob_reservations WHERE owner = $1 AND expires > $2)`,
			r.Owner, micros(r.Created)).Scan(&used, &reserved)
		if err != nil {
			return err
		}
		left := quota - used - reserved
		out.Bytes = r.Bytes
		if left < out.Bytes {
			out.Bytes = left
		}
		if out.Bytes < min {
			return fmt.Errorf("%d bytes used, %d reserved: %w", used, reserved, store.ErrQuotaExceeded)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO blob_reservations (owner, bytes, created, expires) VALUES ($1, $2, $3, $4) RETURNING id`,
			r.Owner, out.Bytes, micros(r.Created), micros(r.Expires)).Scan(&out.ID)
	})
	if err != nil {
		return store.BlobReservation{}, fmt.Errorf("sqlite: reserve %d bytes (at least %d) of user %d's quota of %d: %w", r.Bytes, min, r.Owner, quota, err)
	}
	return out, nil
}

// CommitBlobReservation implements store.Store.
func (s *Store) CommitBlobReservation(ctx context.Context, id int64, b store.Blob) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var owner store.UserID
		var bytes, expires int64
		if err := tx.QueryRowContext(ctx, `SELECT owner, bytes, expires FROM blob_reservations WHERE id = $1`, id).Scan(&owner, &bytes, &expires); err != nil {
			return notFound(err)
		}
		switch {
		case expires <= micros(b.Created):
			return fmt.Errorf("reservation expired: %w", store.ErrNotFound)
		case owner != b.Owner:
			return fmt.Errorf("reservation is user %d's: %w", owner, store.ErrInvalid)
		case b.Size < 0 || b.Size > bytes:
			return fmt.Errorf("%d bytes exceed the %d reserved: %w", b.Size, bytes, store.ErrInvalid)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO blobs (id, owner, size, sha256, created) VALUES ($1, $2, $3, $4, $5)`, b.ID, b.Owner, b.Size, nonNil(b.SHA256), micros(b.Created))
		switch {
		case isUnique(err):
			return store.ErrConflict
		case isForeignKey(err):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		return mustAffect(tx.ExecContext(ctx, `DELETE FROM blob_reservations WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("sqlite: commit blob reservation %d as blob %q: %w", id, b.ID, err)
	}
	return nil
}

// ReleaseBlobReservation implements store.Store.
func (s *Store) ReleaseBlobReservation(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM blob_reservations WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release blob reservation %d: %v", id, err)
	}
	return nil
}
