package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
)

const userCols = `id, name, identity_key, admin, disabled, created`

// scanner is pgx.Row or pgx.Rows.
type scanner interface{ Scan(...any) error }

func scanUser(r scanner) (store.User, error) {
	var u store.User
	var created int64
	err := r.Scan(&u.ID, &u.Name, &u.IdentityKey, &u.Admin, &u.Disabled, &created)
	u.Created = fromMicros(created)
	return u, err
}

const deviceCols = `id, user_id, scheme, signature_key, certificate, created, revoked, disabled, inbox_head`

func scanDevice(r scanner) (store.Device, error) {
	var d store.Device
	var created, revoked int64
	err := r.Scan(&d.ID, &d.User, &d.Scheme, &d.SignatureKey, &d.Certificate, &created, &revoked, &d.Disabled, &d.InboxHead)
	d.Created, d.Revoked = fromMicros(created), fromMicros(revoked)
	return d, err
}

// insertDevice inserts d, mapping unique violations to ErrConflict.
func insertDevice(ctx context.Context, tx pgx.Tx, d store.Device) error {
	if d.ID == "" || len(d.SignatureKey) == 0 {
		return store.ErrInvalid
	}
	_, err := tx.Exec(ctx, `INSERT INTO devices (id, user_id, scheme, signature_key, certificate, created, revoked, disabled, inbox_head) VALUES ($1, $2, $3, $4, $5, $6, 0, false, 0)`,
		d.ID, d.User, d.Scheme, d.SignatureKey, nonNil(d.Certificate), micros(d.Created))
	return mapConstraint(err)
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, nu store.NewUser) (store.User, store.Device, error) {
	u := store.User{Name: nu.Name, IdentityKey: nu.IdentityKey, Admin: nu.Admin, Created: nu.Created}
	d := nu.Device
	d.Revoked, d.Disabled, d.InboxHead = time.Time{}, false, 0
	err := s.write(ctx, func(tx pgx.Tx) error {
		if nu.Name == "" {
			return store.ErrInvalid
		}
		if nu.InviteHash != nil {
			// The row lock serialises concurrent registrations, and
			// the condition is re-checked on the latest row version.
			tag, err := tx.Exec(ctx, `UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash = $1 AND uses_left > 0 AND expires > $2`, nu.InviteHash, micros(nu.Created))
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return store.ErrInviteInvalid
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO users (name, identity_key, admin, disabled, created) VALUES ($1, $2, $3, false, $4) RETURNING id`,
			nu.Name, nu.IdentityKey, nu.Admin, micros(nu.Created)).Scan(&u.ID)
		if isUnique(err) {
			return store.ErrConflict
		} else if err != nil {
			return err
		}
		d.User = u.ID
		return insertDevice(ctx, tx, d)
	})
	if err != nil {
		return store.User{}, store.Device{}, fmt.Errorf("postgres: create user %q with device %q: %w", nu.Name, nu.Device.ID, err)
	}
	return u, d, nil
}

// User implements store.Store.
func (s *Store) User(ctx context.Context, id store.UserID) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: user %d: %w", id, notFound(err))
	}
	return u, nil
}

// UserByName implements store.Store.
func (s *Store) UserByName(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: user %q: %w", name, notFound(err))
	}
	return u, nil
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: users: %v", err)
	}
	return out, nil
}

// SetUserDisabled implements store.Store.
func (s *Store) SetUserDisabled(ctx context.Context, id store.UserID, disabled bool) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := mustAffect(tx.Exec(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, id)); err != nil {
			return err
		}
		if disabled {
			_, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: set user %d disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// SetUserAdmin implements store.Store.
func (s *Store) SetUserAdmin(ctx context.Context, id store.UserID, admin bool) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		return mustAffect(tx.Exec(ctx, `UPDATE users SET admin = $1 WHERE id = $2`, admin, id))
	})
	if err != nil {
		return fmt.Errorf("postgres: set user %d admin=%t: %w", id, admin, err)
	}
	return nil
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, d store.Device) (store.Device, error) {
	d.Revoked, d.Disabled, d.InboxHead = time.Time{}, false, 0
	err := s.write(ctx, func(tx pgx.Tx) error { return insertDevice(ctx, tx, d) })
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: add device %q to user %d: %w", d.ID, d.User, err)
	}
	return d, nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, id store.DeviceID) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: device %q: %w", id, notFound(err))
	}
	return d, nil
}

// DeviceByKey implements store.Store.
func (s *Store) DeviceByKey(ctx context.Context, key []byte) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE signature_key = $1`, key))
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: device by signature key: %w", notFound(err))
	}
	return d, nil
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, user store.UserID) ([]store.Device, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices WHERE user_id = $1 ORDER BY created, id`, user)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: devices of user %d: %v", user, err)
	}
	return out, nil
}

// RevokeDevice implements store.Store.
func (s *Store) RevokeDevice(ctx context.Context, id store.DeviceID, at time.Time, revocation []byte) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		// One statement: concurrent revocations keep the first time.
		var one int
		if err := tx.QueryRow(ctx, `UPDATE devices SET revoked = CASE WHEN revoked = 0 THEN $1 ELSE revoked END WHERE id = $2 RETURNING 1`, micros(at), id).Scan(&one); err != nil {
			return notFound(err)
		}
		if err := keepRevocation(ctx, tx, id, revocation); err != nil {
			return err
		}
		return deleteDeviceAuth(ctx, tx, id, true)
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke device %q: %w", id, err)
	}
	return nil
}

// deleteDeviceAuth deletes a device's sessions and challenges, and its
// KeyPackages when keyPackages is set.
func deleteDeviceAuth(ctx context.Context, tx pgx.Tx, id store.DeviceID, keyPackages bool) error {
	qs := []string{`DELETE FROM sessions WHERE device_id = $1`, `DELETE FROM challenges WHERE device_id = $1`}
	if keyPackages {
		qs = append(qs, `DELETE FROM key_packages WHERE device_id = $1`)
	}
	for _, q := range qs {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// SetDeviceDisabled implements store.Store.
func (s *Store) SetDeviceDisabled(ctx context.Context, id store.DeviceID, disabled bool) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := mustAffect(tx.Exec(ctx, `UPDATE devices SET disabled = $1 WHERE id = $2`, disabled, id)); err != nil {
			return err
		}
		if disabled {
			return deleteDeviceAuth(ctx, tx, id, false)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: set device %q disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// CreateInvite implements store.Store.
func (s *Store) CreateInvite(ctx context.Context, inv store.Invite) (store.Invite, error) {
	err := s.write(ctx, func(tx pgx.Tx) error {
		if len(inv.CodeHash) == 0 || inv.UsesLeft < 1 {
			return store.ErrInvalid
		}
		err := tx.QueryRow(ctx, `INSERT INTO invites (code_hash, uses_left, expires, created) VALUES ($1, $2, $3, $4) RETURNING id`,
			inv.CodeHash, inv.UsesLeft, micros(inv.Expires), micros(inv.Created)).Scan(&inv.ID)
		return mapConstraint(err)
	})
	if err != nil {
		return store.Invite{}, fmt.Errorf("postgres: create invite with %d uses: %w", inv.UsesLeft, err)
	}
	return inv, nil
}

// Invites implements store.Store.
func (s *Store) Invites(ctx context.Context) ([]store.Invite, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, code_hash, uses_left, expires, created FROM invites ORDER BY id`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Invite, error) {
		var inv store.Invite
		var exp, created int64
		err := r.Scan(&inv.ID, &inv.CodeHash, &inv.UsesLeft, &exp, &created)
		inv.Expires, inv.Created = fromMicros(exp), fromMicros(created)
		return inv, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: invites: %v", err)
	}
	return out, nil
}

// DeleteInvite implements store.Store.
func (s *Store) DeleteInvite(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		return mustAffect(tx.Exec(ctx, `DELETE FROM invites WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete invite %d: %w", id, err)
	}
	return nil
}

// CreateChallenge implements store.Store.
func (s *Store) CreateChallenge(ctx context.Context, c store.Challenge) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO challenges (nonce, device_id, expires) VALUES ($1, $2, $3)`, c.Nonce, c.Device, micros(c.Expires))
		return mapConstraint(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create challenge for device %q: %w", c.Device, err)
	}
	return nil
}

// ConsumeChallenge implements store.Store.
func (s *Store) ConsumeChallenge(ctx context.Context, nonce []byte, device store.DeviceID, now time.Time) (store.Challenge, error) {
	c := store.Challenge{Nonce: nonce}
	err := s.write(ctx, func(tx pgx.Tx) error {
		var exp int64
		if err := tx.QueryRow(ctx, `DELETE FROM challenges WHERE nonce = $1 RETURNING device_id, expires`, nonce).Scan(&c.Device, &exp); err != nil {
			return notFound(err)
		}
		c.Expires = fromMicros(exp)
		return nil
	})
	if err == nil && (c.Device != device || !c.Expires.After(now)) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Challenge{}, fmt.Errorf("postgres: consume challenge for device %q: %w", device, err)
	}
	return c, nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, device_id, user_id, created, expires) VALUES ($1, $2, $3, $4, $5)`,
			ss.TokenHash, ss.Device, ss.User, micros(ss.Created), micros(ss.Expires))
		return mapConstraint(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create session for device %q: %w", ss.Device, err)
	}
	return nil
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	ss := store.Session{TokenHash: tokenHash}
	var created, exp int64
	err := s.pool.QueryRow(ctx, `SELECT s.device_id, s.user_id, s.created, s.expires FROM sessions s
		JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires > $2 AND d.revoked = 0 AND NOT d.disabled AND NOT u.disabled AND d.user_id = s.user_id`,
		tokenHash, micros(now)).Scan(&ss.Device, &ss.User, &created, &exp)
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: session: %w", notFound(err))
	}
	ss.Created, ss.Expires = fromMicros(created), fromMicros(exp)
	return ss, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		return mustAffect(tx.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}
