package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
)

// AddKeyPackages implements store.Store.
func (s *Store) AddKeyPackages(ctx context.Context, kps []store.KeyPackage) error {
	var at int
	err := s.write(ctx, func(tx pgx.Tx) error {
		for i, kp := range kps {
			at = i
			if len(kp.Ref) == 0 || len(kp.Data) == 0 {
				return store.ErrInvalid
			}
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE id = $1 AND revoked = 0 AND NOT disabled FOR SHARE`, kp.Device).Scan(&one)
			if err != nil {
				return notFound(err)
			}
			// A last-resort package replaces the previous one of the
			// device and suite in one statement, so concurrent uploads
			// on different nodes cannot leave two.
			q := `INSERT INTO key_packages (ref, device_id, suite, data, last_resort, expires, created) VALUES ($1, $2, $3, $4, false, $5, $6)`
			if kp.LastResort {
				q = `INSERT INTO key_packages (ref, device_id, suite, data, last_resort, expires, created) VALUES ($1, $2, $3, $4, true, $5, $6)
					ON CONFLICT (device_id, suite) WHERE last_resort DO UPDATE
					SET ref = EXCLUDED.ref, data = EXCLUDED.data, expires = EXCLUDED.expires, created = EXCLUDED.created, claimed = false`
			}
			if _, err := tx.Exec(ctx, q, kp.Ref, kp.Device, kp.Suite, kp.Data, micros(kp.Expires), micros(kp.Created)); err != nil {
				return mapConstraint(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: add key packages: package %d of %d (device %q): %w", at, len(kps), kps[at].Device, err)
	}
	return nil
}

// CountKeyPackages implements store.Store.
func (s *Store) CountKeyPackages(ctx context.Context, device store.DeviceID, suite uint16, now time.Time) (store.KeyPackageCount, error) {
	var c store.KeyPackageCount
	var avail, lr, lrClaimed int
	err := s.pool.QueryRow(ctx, `SELECT
			COUNT(*) FILTER (WHERE NOT last_resort),
			COUNT(*) FILTER (WHERE last_resort),
			COUNT(*) FILTER (WHERE last_resort AND claimed)
		FROM key_packages WHERE device_id = $1 AND suite = $2 AND (expires = 0 OR expires > $3)`,
		device, suite, micros(now)).Scan(&avail, &lr, &lrClaimed)
	if err != nil {
		return c, fmt.Errorf("postgres: count key packages of device %q: %v", device, err)
	}
	c.Available, c.LastResort, c.LastResortClaimed = avail, lr > 0, lrClaimed > 0
	return c, nil
}

// ClaimKeyPackages implements store.Store.
func (s *Store) ClaimKeyPackages(ctx context.Context, user store.UserID, suite uint16, now time.Time) ([]store.KeyPackage, error) {
	return s.ClaimKeyPackagesBudgeted(ctx, user, suite, now, store.ClaimBudget{})
}

// ClaimKeyPackagesBudgeted implements store.Store. Per device, the oldest
// unexpired one-time package is locked with FOR UPDATE SKIP LOCKED and
// deleted in the claiming transaction, so concurrent claims on any number
// of nodes take different packages; a package locked by another claim is
// skipped, not waited for. Only when no one-time package is left (or the
// device's budget is spent) is the last-resort package read, kept and
// marked claimed. A device's budget row is locked (FOR UPDATE) for the
// rest of the transaction, so claims of one device on every node spend it
// one after the other.
func (s *Store) ClaimKeyPackagesBudgeted(ctx context.Context, user store.UserID, suite uint16, now time.Time, b store.ClaimBudget) ([]store.KeyPackage, error) {
	var out []store.KeyPackage
	err := s.write(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1`, user).Scan(&one); err != nil {
			return notFound(err)
		}
		rows, _ := tx.Query(ctx, `SELECT id FROM devices WHERE user_id = $1 AND revoked = 0 AND NOT disabled ORDER BY id`, user)
		devices, err := pgx.CollectRows(rows, pgx.RowTo[store.DeviceID])
		if err != nil {
			return err
		}
		for _, d := range devices {
			kp, ok, err := claimDevice(ctx, tx, d, suite, now, b)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, kp)
			}
		}
		if len(out) == 0 {
			return store.ErrNoKeyPackage
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim key packages of user %d, suite %d: %w", user, suite, err)
	}
	return out, nil
}

// claimDevice claims device d's package in tx: the oldest one-time package
// if the budget allows (spending a token), else the last-resort package,
// marked claimed. ok is false when the device has neither.
func claimDevice(ctx context.Context, tx pgx.Tx, d store.DeviceID, suite uint16, now time.Time, b store.ClaimBudget) (kp store.KeyPackage, ok bool, err error) {
	tokens, updated := float64(b.Burst), now
	if b.Burst > 0 {
		// Create the bucket full if missing, then lock it.
		if _, err := tx.Exec(ctx, `INSERT INTO key_package_budgets (device_id, tokens, updated) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO NOTHING`,
			d, float64(b.Burst), micros(now)); err != nil {
			return kp, false, err
		}
		var upd int64
		if err := tx.QueryRow(ctx, `SELECT tokens, updated FROM key_package_budgets WHERE device_id = $1 FOR UPDATE`, d).Scan(&tokens, &upd); err != nil {
			return kp, false, err
		}
		tokens = b.Tokens(tokens, fromMicros(upd), now)
		if t := fromMicros(upd); t.After(now) {
			updated = t
		}
	}
	kp.Device = d
	var exp, created int64
	err = pgx.ErrNoRows
	if b.Burst == 0 || tokens >= 1 {
		err = tx.QueryRow(ctx, `DELETE FROM key_packages WHERE id = (
				SELECT id FROM key_packages
				WHERE device_id = $1 AND suite = $2 AND NOT last_resort AND (expires = 0 OR expires > $3)
				ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING ref, suite, data, last_resort, expires, created`, d, suite, micros(now)).Scan(&kp.Ref, &kp.Suite, &kp.Data, &kp.LastResort, &exp, &created)
		if err == nil && b.Burst > 0 {
			if _, err := tx.Exec(ctx, `UPDATE key_package_budgets SET tokens = $2, updated = $3 WHERE device_id = $1`, d, tokens-1, micros(updated)); err != nil {
				return kp, false, err
			}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var id int64
		var claimed bool
		err = tx.QueryRow(ctx, `SELECT id, ref, suite, data, last_resort, expires, created, claimed FROM key_packages
			WHERE device_id = $1 AND suite = $2 AND last_resort AND (expires = 0 OR expires > $3)
			ORDER BY id DESC LIMIT 1`, d, suite, micros(now)).Scan(&id, &kp.Ref, &kp.Suite, &kp.Data, &kp.LastResort, &exp, &created, &claimed)
		if err == nil && !claimed {
			_, err = tx.Exec(ctx, `UPDATE key_packages SET claimed = true WHERE id = $1`, id)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return kp, false, nil
	} else if err != nil {
		return kp, false, err
	}
	kp.Expires, kp.Created = fromMicros(exp), fromMicros(created)
	return kp, true, nil
}
