package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
)

// ReserveBlobQuota implements store.Store. It must hold across every node
// of a cluster, so the check cannot be in memory, and at READ COMMITTED a
// plain "sum, then insert if it fits" lets two transactions both see the
// old sum. The transaction therefore first locks the owner's user row
// (FOR NO KEY UPDATE, which does not block foreign-key checks of other
// tables): reservations of one owner serialise on it on any node. It then
// reads blobs and unexpired reservations in one statement, so one
// snapshot, taken after the lock was granted: it sees every reservation
// committed before, and a concurrent CommitBlobReservation (which swaps a
// reservation for a blob no larger, in one transaction) is seen either
// before or after, never half. The sum is thus never below what is held,
// and the insert keeps used + reserved ≤ quota.
func (s *Store) ReserveBlobQuota(ctx context.Context, r store.BlobReservation, min, quota int64) (store.BlobReservation, error) {
	if err := r.CheckReserve(min, quota); err != nil {
		return store.BlobReservation{}, fmt.Errorf("postgres: %w", err)
	}
	out := r
	err := s.write(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, r.Owner).Scan(&one); err != nil {
			return notFound(err)
		}
		var used, reserved int64
		err := tx.QueryRow(ctx, `SELECT
				(SELECT COALESCE(SUM(size), 0)::bigint FROM blobs WHERE owner = $1),
				(SELECT COALESCE(SUM(bytes), 0)::bigint FROM blob_reservations WHERE owner = $1 AND expires > $2)`,
			r.Owner, micros(r.Created)).Scan(&used, &reserved)
		if err != nil {
			return err
		}
		out.Bytes = r.Bytes
		if left := quota - used - reserved; left < out.Bytes {
			out.Bytes = left
		}
		if out.Bytes < min {
			return fmt.Errorf("%d bytes used, %d reserved: %w", used, reserved, store.ErrQuotaExceeded)
		}
		return tx.QueryRow(ctx, `INSERT INTO blob_reservations (owner, bytes, created, expires) VALUES ($1, $2, $3, $4) RETURNING id`,
			r.Owner, out.Bytes, micros(r.Created), micros(r.Expires)).Scan(&out.ID)
	})
	if err != nil {
		return store.BlobReservation{}, fmt.Errorf("postgres: reserve %d bytes (at least %d) of user %d's quota of %d: %w", r.Bytes, min, r.Owner, quota, err)
	}
	return out, nil
}

// CommitBlobReservation implements store.Store. The reservation row is
// deleted first (RETURNING it, which locks it), so two commits of one
// reservation cannot both succeed.
func (s *Store) CommitBlobReservation(ctx context.Context, id int64, b store.Blob) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		var owner store.UserID
		var bytes, expires int64
		err := tx.QueryRow(ctx, `DELETE FROM blob_reservations WHERE id = $1 RETURNING owner, bytes, expires`, id).Scan(&owner, &bytes, &expires)
		if err != nil {
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
		_, err = tx.Exec(ctx, `INSERT INTO blobs (id, owner, size, sha256, created) VALUES ($1, $2, $3, $4, $5)`, b.ID, b.Owner, b.Size, nonNil(b.SHA256), micros(b.Created))
		return mapConstraint(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: commit blob reservation %d as blob %q: %w", id, b.ID, err)
	}
	return nil
}

// ReleaseBlobReservation implements store.Store.
func (s *Store) ReleaseBlobReservation(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM blob_reservations WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: release blob reservation %d: %v", id, err)
	}
	return nil
}
