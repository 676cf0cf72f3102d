package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// ReplaceLastResort implements sqlstore.Backend. The package replaces the
// previous one of the device and suite in one statement (an upsert on the
// unique partial index of last-resort packages), so concurrent uploads on
// different nodes cannot leave two.
func (backend) ReplaceLastResort(ctx context.Context, tx sqlstore.Querier, kp store.KeyPackage) error {
	_, err := tx.Exec(ctx, `INSERT INTO key_packages (ref, device_id, suite, data, last_resort, expires, created) VALUES ($1, $2, $3, $4, true, $5, $6)
		ON CONFLICT (device_id, suite) WHERE last_resort DO UPDATE
		SET ref = EXCLUDED.ref, data = EXCLUDED.data, expires = EXCLUDED.expires, created = EXCLUDED.created, claimed = false`,
		kp.Ref, kp.Device, kp.Suite, kp.Data, sqlstore.Micros(kp.Expires), sqlstore.Micros(kp.Created))
	return mapConstraint(err)
}

// ClaimDevice implements sqlstore.Backend. The oldest unexpired one-time
// package is locked with FOR UPDATE SKIP LOCKED and deleted in the
// claiming transaction, so concurrent claims on any number of nodes take
// different packages; a package locked by another claim is skipped, not
// waited for. Only when no one-time package is left (or the device's
// budget is spent) is the last-resort package read, kept and marked
// claimed. The device's budget row is locked (FOR UPDATE) for the rest of
// the transaction, so claims of one device on every node spend it one
// after the other.
func (backend) ClaimDevice(ctx context.Context, tx sqlstore.Querier, d store.DeviceID, suite uint16, now time.Time, b store.ClaimBudget) (kp store.KeyPackage, ok bool, err error) {
	tokens, updated := float64(b.Burst), now
	if b.Burst > 0 {
		// Create the bucket full if missing, then lock it.
		if _, err := tx.Exec(ctx, `INSERT INTO key_package_budgets (device_id, tokens, updated) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO NOTHING`,
			d, float64(b.Burst), sqlstore.Micros(now)); err != nil {
			return kp, false, err
		}
		var upd int64
		if err := tx.QueryRow(ctx, `SELECT tokens, updated FROM key_package_budgets WHERE device_id = $1 FOR UPDATE`, d).Scan(&tokens, &upd); err != nil {
			return kp, false, err
		}
		tokens = b.Tokens(tokens, sqlstore.FromMicros(upd), now)
		if t := sqlstore.FromMicros(upd); t.After(now) {
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
			RETURNING ref, suite, data, last_resort, expires, created`, d, suite, sqlstore.Micros(now)).Scan(&kp.Ref, &kp.Suite, &kp.Data, &kp.LastResort, &exp, &created)
		if err == nil && b.Burst > 0 {
			if _, err := tx.Exec(ctx, `UPDATE key_package_budgets SET tokens = $2, updated = $3 WHERE device_id = $1`, d, tokens-1, sqlstore.Micros(updated)); err != nil {
				return kp, false, err
			}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var id int64
		var claimed bool
		err = tx.QueryRow(ctx, `SELECT id, ref, suite, data, last_resort, expires, created, claimed FROM key_packages
			WHERE device_id = $1 AND suite = $2 AND last_resort AND (expires = 0 OR expires > $3)
			ORDER BY id DESC LIMIT 1`, d, suite, sqlstore.Micros(now)).Scan(&id, &kp.Ref, &kp.Suite, &kp.Data, &kp.LastResort, &exp, &created, &claimed)
		if err == nil && !claimed {
			_, err = tx.Exec(ctx, `UPDATE key_packages SET claimed = true WHERE id = $1`, id)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return kp, false, nil
	} else if err != nil {
		return kp, false, err
	}
	kp.Expires, kp.Created = sqlstore.FromMicros(exp), sqlstore.FromMicros(created)
	return kp, true, nil
}
