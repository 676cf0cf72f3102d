package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// CreateBlob implements store.Store.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob) error {
	err := s.b.Write(ctx, func(tx Querier) error { return s.insertBlob(ctx, tx, b) })
	if err != nil {
		return s.errorf("create blob %q: %w", b.ID, err)
	}
	return nil
}

// insertBlob inserts the blob record b, in place of an expired record of
// the same id (its content is b's): ErrConflict for an id taken by an
// unexpired blob, ErrNotFound for a missing owner, ErrInvalid for an
// Expires not after Created.
func (s *Store) insertBlob(ctx context.Context, tx Querier, b store.Blob) error {
	created, expires := Micros(b.Created), Micros(b.Expires)
	if expires != 0 && expires <= created {
		return fmt.Errorf("blob expiry %v not after its creation %v: %w", b.Expires, b.Created, store.ErrInvalid)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM blobs WHERE id = $1 AND expires <> 0 AND expires <= $2`, b.ID, created); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO blobs (id, owner, size, sha256, created, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
		b.ID, b.Owner, b.Size, NonNil(b.SHA256), created, expires)
	return s.constraint(err)
}

// blobColumns are the columns scanBlob reads, after the id.
const blobColumns = `owner, size, sha256, created, expires`

// scanBlob reads the blobColumns of blob id from r.
func scanBlob(r Row, id string) (store.Blob, error) {
	b := store.Blob{ID: id}
	var created, expires int64
	if err := r.Scan(&b.Owner, &b.Size, &b.SHA256, &created, &expires); err != nil {
		return store.Blob{}, err
	}
	b.Created, b.Expires = FromMicros(created), FromMicros(expires)
	return b, nil
}

// Blob implements store.Store.
func (s *Store) Blob(ctx context.Context, id string) (store.Blob, error) {
	b, err := scanBlob(s.b.Read().QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs WHERE id = $1`, id), id)
	if err != nil {
		return store.Blob{}, s.errorf("blob %q: %w", id, notFound(err))
	}
	return b, nil
}

// ExtendBlob implements store.Store.
func (s *Store) ExtendBlob(ctx context.Context, id string, expires time.Time) (store.Blob, error) {
	var b store.Blob
	err := s.b.Write(ctx, func(tx Querier) error {
		var r Row
		if expires.IsZero() {
			r = tx.QueryRow(ctx, `UPDATE blobs SET expires = 0 WHERE id = $1 RETURNING `+blobColumns, id)
		} else {
			r = tx.QueryRow(ctx, `UPDATE blobs SET expires = CASE WHEN expires = 0 OR expires >= $2 THEN expires ELSE $2 END
				WHERE id = $1 RETURNING `+blobColumns, id, Micros(expires))
		}
		var err error
		b, err = scanBlob(r, id)
		return notFound(err)
	})
	if err != nil {
		return store.Blob{}, s.errorf("extend blob %q until %v: %w", id, expires, err)
	}
	return b, nil
}

// DeleteBlob implements store.Store.
func (s *Store) DeleteBlob(ctx context.Context, id string) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		return mustAffect(tx.Exec(ctx, `DELETE FROM blobs WHERE id = $1`, id))
	})
	if err != nil {
		return s.errorf("delete blob %q: %w", id, err)
	}
	return nil
}

// BlobUsage implements store.Store.
func (s *Store) BlobUsage(ctx context.Context, owner store.UserID) (count, bytes int64, err error) {
	err = s.b.Read().QueryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE owner = $1`, owner).Scan(&count, &bytes)
	if err != nil {
		return 0, 0, s.errorf("blob usage of user %d: %v", owner, err)
	}
	return count, bytes, nil
}

// ReserveBlobQuota implements store.Store. It must hold across every node
// of a PostgreSQL cluster, so the check cannot be in memory, and at READ
// COMMITTED a plain "sum, then insert if it fits" lets two transactions
// both see the old sum. The transaction therefore first locks the owner's
// user row (Dialect.ForNoKeyUpdate, which does not block foreign-key
// checks of other tables; SQLite's write transactions run alone anyway):
// reservations of one owner serialise on it. It then reads blobs and
// unexpired reservations in one statement, so one snapshot, taken after
// the lock was granted: it sees every reservation committed before, and a
// concurrent CommitBlobReservation (which swaps a reservation for a blob
// no larger, in one transaction) is seen either before or after, never
// half. The sum is thus never below what is held, and the insert keeps
// used + reserved ≤ quota.
func (s *Store) ReserveBlobQuota(ctx context.Context, r store.BlobReservation, min, quota int64) (store.BlobReservation, error) {
	if err := r.CheckReserve(min, quota); err != nil {
		return store.BlobReservation{}, s.errorf("%w", err)
	}
	out := r
	err := s.b.Write(ctx, func(tx Querier) error {
		var one int
		if err := tx.QueryRow(ctx, s.q.lockUser, r.Owner).Scan(&one); err != nil {
			return notFound(err)
		}
		var used, reserved int64
		err := tx.QueryRow(ctx, `SELECT
				(SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE owner = $1 AND (expires = 0 OR expires > $2)),
				(SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM blob_reservations WHERE owner = $1 AND expires > $2)`,
			r.Owner, Micros(r.Created)).Scan(&used, &reserved)
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
			r.Owner, out.Bytes, Micros(r.Created), Micros(r.Expires)).Scan(&out.ID)
	})
	if err != nil {
		return store.BlobReservation{}, s.errorf("reserve %d bytes (at least %d) of user %d's quota of %d: %w", r.Bytes, min, r.Owner, quota, err)
	}
	return out, nil
}

// CommitBlobReservation implements store.Store. The reservation row is
// deleted first (RETURNING it, which locks it on PostgreSQL), so two
// commits of one reservation cannot both succeed; any refusal rolls the
// deletion back.
func (s *Store) CommitBlobReservation(ctx context.Context, id int64, b store.Blob) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		var owner store.UserID
		var bytes, expires int64
		err := tx.QueryRow(ctx, `DELETE FROM blob_reservations WHERE id = $1 RETURNING owner, bytes, expires`, id).Scan(&owner, &bytes, &expires)
		if err != nil {
			return notFound(err)
		}
		switch {
		case expires <= Micros(b.Created):
			return fmt.Errorf("reservation expired: %w", store.ErrNotFound)
		case owner != b.Owner:
			return fmt.Errorf("reservation is user %d's: %w", owner, store.ErrInvalid)
		case b.Size < 0 || b.Size > bytes:
			return fmt.Errorf("%d bytes exceed the %d reserved: %w", b.Size, bytes, store.ErrInvalid)
		}
		return s.insertBlob(ctx, tx, b)
	})
	if err != nil {
		return s.errorf("commit blob reservation %d as blob %q: %w", id, b.ID, err)
	}
	return nil
}

// ReleaseBlobReservation implements store.Store.
func (s *Store) ReleaseBlobReservation(ctx context.Context, id int64) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		_, err := tx.Exec(ctx, `DELETE FROM blob_reservations WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return s.errorf("release blob reservation %d: %v", id, err)
	}
	return nil
}
