package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// ReplaceLastResort implements sqlstore.Backend: the previous package is
// deleted, then kp inserted (the schema has no unique index on the
// last-resort package; the one writer at a time keeps it single).
func (backend) ReplaceLastResort(ctx context.Context, tx sqlstore.Querier, kp store.KeyPackage) error {
	if _, err := tx.Exec(ctx, `DELETE FROM key_packages WHERE device_id = $1 AND suite = $2 AND last_resort = 1`, kp.Device, kp.Suite); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO key_packages (ref, device_id, suite, data, last_resort, expires, created) VALUES ($1, $2, $3, $4, 1, $5, $6)`,
		kp.Ref, kp.Device, kp.Suite, kp.Data, sqlstore.Micros(kp.Expires), sqlstore.Micros(kp.Created))
	if isUnique(err) {
		return store.ErrConflict
	}
	return err
}

// ClaimDevice implements sqlstore.Backend. Claims run in the one write
// transaction at a time, so a device's budget is read and spent without
// interleaving.
func (backend) ClaimDevice(ctx context.Context, tx sqlstore.Querier, d store.DeviceID, suite uint16, now time.Time, b store.ClaimBudget) (kp store.KeyPackage, ok bool, err error) {
	tokens, updated := float64(b.Burst), now
	if b.Burst > 0 {
		var upd int64
		err := tx.QueryRow(ctx, `SELECT tokens, updated FROM key_package_budgets WHERE device_id = $1`, d).Scan(&tokens, &upd)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return kp, false, err
		}
		if err == nil {
			tokens = b.Tokens(tokens, sqlstore.FromMicros(upd), now)
			if t := sqlstore.FromMicros(upd); t.After(now) {
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
	err = tx.QueryRow(ctx, q, d, suite, sqlstore.Micros(now)).Scan(&id, &kp.Ref, &kp.Suite, &kp.Data, &kp.LastResort, &exp, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return kp, false, nil
	} else if err != nil {
		return kp, false, err
	}
	kp.Expires, kp.Created = sqlstore.FromMicros(exp), sqlstore.FromMicros(created)
	if kp.LastResort {
		_, err := tx.Exec(ctx, `UPDATE key_packages SET claimed = 1 WHERE id = $1`, id)
		return kp, err == nil, err
	}
	if n, err := tx.Exec(ctx, `DELETE FROM key_packages WHERE id = $1`, id); err != nil {
		return kp, false, err
	} else if n == 0 {
		return kp, false, store.ErrNotFound
	}
	if b.Burst > 0 {
		_, err := tx.Exec(ctx, `INSERT INTO key_package_budgets (device_id, tokens, updated) VALUES ($1, $2, $3)
			ON CONFLICT (device_id) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated`, d, tokens-1, sqlstore.Micros(updated))
		if err != nil {
			return kp, false, err
		}
	}
	return kp, true, nil
}
