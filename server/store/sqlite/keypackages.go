package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// AddKeyPackages implements store.Store.
func (s *Store) AddKeyPackages(ctx context.Context, kps []store.KeyPackage) error {
	var at int
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i, kp := range kps {
			at = i
			if len(kp.Ref) == 0 || len(kp.Data) == 0 {
				return store.ErrInvalid
			}
			var revoked int64
			var disabled bool
			if err := tx.QueryRowContext(ctx, `SELECT revoked, disabled FROM devices WHERE id = $1`, kp.Device).Scan(&revoked, &disabled); err != nil {
				return notFound(err)
			}
			if revoked != 0 || disabled {
				return store.ErrNotFound
			}
			if kp.LastResort {
				if _, err := tx.ExecContext(ctx, `DELETE FROM key_packages WHERE device_id = $1 AND suite = $2 AND last_resort = 1`, kp.Device, kp.Suite); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO key_packages (ref, device_id, suite, data, last_resort, expires, created) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				kp.Ref, kp.Device, kp.Suite, kp.Data, b2i(kp.LastResort), micros(kp.Expires), micros(kp.Created))
			if isUnique(err) {
				return store.ErrConflict
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: add key packages: package %d of %d (device %q): %w", at, len(kps), kps[at].Device, err)
	}
	return nil
}

// CountKeyPackages implements store.Store.
func (s *Store) CountKeyPackages(ctx context.Context, device store.DeviceID, suite uint16, now time.Time) (store.KeyPackageCount, error) {
	var c store.KeyPackageCount
	var avail, lr, lrClaimed int
	err := s.r.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN last_resort = 0 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN last_resort = 1 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN last_resort = 1 AND claimed = 1 THEN 1 ELSE 0 END), 0)
		FROM key_packages WHERE device_id = $1 AND suite = $2 AND (expires = 0 OR expires > $3)`,
		device, suite, micros(now)).Scan(&avail, &lr, &lrClaimed)
	if err != nil {
		return c, fmt.Errorf("sqlite: count key packages of device %q: %v", device, err)
	}
	c.Available, c.LastResort, c.LastResortClaimed = avail, lr > 0, lrClaimed > 0
	return c, nil
}

// ClaimKeyPackages implements store.Store.
func (s *Store) ClaimKeyPackages(ctx context.Context, user store.UserID, suite uint16, now time.Time) ([]store.KeyPackage, error) {
	return s.ClaimKeyPackagesBudgeted(ctx, user, suite, now, store.ClaimBudget{})
}

// ClaimKeyPackagesBudgeted implements store.Store. Claims run in the one
// write transaction at a time, so a device's budget is read and spent
// without interleaving.
func (s *Store) ClaimKeyPackagesBudgeted(ctx context.Context, user store.UserID, suite uint16, now time.Time, b store.ClaimBudget) ([]store.KeyPackage, error) {
	var out []store.KeyPackage
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = $1`, user).Scan(&one); err != nil {
			return notFound(err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM devices WHERE user_id = $1 AND revoked = 0 AND disabled = 0 ORDER BY id`, user)
		if err != nil {
			return err
		}
		var devices []store.DeviceID
		for rows.Next() {
			var d store.DeviceID
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return err
			}
			devices = append(devices, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
		return nil, fmt.Errorf("sqlite: claim key packages of user %d, suite %d: %w", user, suite, err)
	}
	return out, nil
}

// claimDevice claims device d's package in tx: the oldest one-time package
// if the budget allows (spending a token), else the last-resort package,
// marked claimed. ok is false when the device has neither.
func claimDevice(ctx context.Context, tx *sql.Tx, d store.DeviceID, suite uint16, now time.Time, b store.ClaimBudget) (kp store.KeyPackage, ok bool, err error) {
	tokens, updated := float64(b.Burst), now
	if b.Burst > 0 {
		var upd int64
		err := tx.QueryRowContext(ctx, `SELECT tokens, updated FROM key_package_budgets WHERE device_id = $1`, d).Scan(&tokens, &upd)
		if err != nil && err != sql.ErrNoRows {
			return kp, false, err
		}
		if err == nil {
			tokens = b.Tokens(tokens, fromMicros(upd), now)
			if t := fromMicros(upd); t.After(now) {
				updated = t
			}
		}
	}
	q := `SELECT id, ref, suite, data, last_resort, expires, created FROM key_packages
		WHERE device_id = $1 AND suite = $2 AND (expires = 0 OR expires > $3)
		ORDER BY last_resort, id LIMIT 1`
	if b.Burst > 0 && tokens < 1 {
		q = `SELECT id, ref, suite, data, last_resort, expires, created FROM key_packages
			WHERE device_id = $1 AND suite = $2 AND last_resort = 1 AND (expires = 0 OR expires > $3)
			ORDER BY id DESC LIMIT 1`
	}
	kp.Device = d
	var id, exp, created int64
	err = tx.QueryRowContext(ctx, q, d, suite, micros(now)).Scan(&id, &kp.Ref, &kp.Suite, &kp.Data, &kp.LastResort, &exp, &created)
	if err == sql.ErrNoRows {
		return kp, false, nil
	} else if err != nil {
		return kp, false, err
	}
	kp.Expires, kp.Created = fromMicros(exp), fromMicros(created)
	if kp.LastResort {
		_, err := tx.ExecContext(ctx, `UPDATE key_packages SET claimed = 1 WHERE id = $1`, id)
		return kp, err == nil, err
	}
	if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM key_packages WHERE id = $1`, id)); err != nil {
		return kp, false, err
	}
	if b.Burst > 0 {
		_, err := tx.ExecContext(ctx, `INSERT INTO key_package_budgets (device_id, tokens, updated) VALUES ($1, $2, $3)
			ON CONFLICT (device_id) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated`, d, tokens-1, micros(updated))
		if err != nil {
			return kp, false, err
		}
	}
	return kp, true, nil
}
