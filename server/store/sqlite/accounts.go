package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/server/store"
)

const userCols = `id, name, identity_key, admin, disabled, created`

// scanner is *sql.Row or *sql.Rows.
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
func insertDevice(ctx context.Context, tx *sql.Tx, d store.Device) error {
	if d.ID == "" || len(d.SignatureKey) == 0 {
		return store.ErrInvalid
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO devices (id, user_id, scheme, signature_key, certificate, created, revoked, disabled, inbox_head) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0)`,
		d.ID, d.User, d.Scheme, d.SignatureKey, nonNil(d.Certificate), micros(d.Created))
	switch {
	case isUnique(err):
		return store.ErrConflict
	case isForeignKey(err):
		return store.ErrNotFound
	}
	return err
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, nu store.NewUser) (store.User, store.Device, error) {
	u := store.User{Name: nu.Name, IdentityKey: nu.IdentityKey, Admin: nu.Admin, Created: nu.Created}
	d := nu.Device
	d.Revoked, d.Disabled, d.InboxHead = time.Time{}, false, 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		if nu.Name == "" {
			return store.ErrInvalid
		}
		if nu.InviteHash != nil {
			res, err := tx.ExecContext(ctx, `UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash = $1 AND uses_left > 0 AND expires > $2`, nu.InviteHash, micros(nu.Created))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return errors.Join(store.ErrInviteInvalid, err)
			}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO users (name, identity_key, admin, disabled, created) VALUES ($1, $2, $3, 0, $4) RETURNING id`,
			nu.Name, nu.IdentityKey, b2i(nu.Admin), micros(nu.Created)).Scan(&u.ID)
		if isUnique(err) {
			return store.ErrConflict
		} else if err != nil {
			return err
		}
		d.User = u.ID
		return insertDevice(ctx, tx, d)
	})
	if err != nil {
		return store.User{}, store.Device{}, fmt.Errorf("sqlite: create user %q with device %q: %w", nu.Name, nu.Device.ID, err)
	}
	return u, d, nil
}

// User implements store.Store.
func (s *Store) User(ctx context.Context, id store.UserID) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: user %d: %w", id, notFound(err))
	}
	return u, nil
}

// UserByName implements store.Store.
func (s *Store) UserByName(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: user %q: %w", name, notFound(err))
	}
	return u, nil
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users: %v", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: users: %v", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: users: %v", err)
	}
	return out, nil
}

// mustAffect returns ErrNotFound unless res changed exactly one row.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// SetUserDisabled implements store.Store.
func (s *Store) SetUserDisabled(ctx context.Context, id store.UserID, disabled bool) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, b2i(disabled), id)); err != nil {
			return err
		}
		if disabled {
			_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, id)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set user %d disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// SetUserAdmin implements store.Store.
func (s *Store) SetUserAdmin(ctx context.Context, id store.UserID, admin bool) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, `UPDATE users SET admin = $1 WHERE id = $2`, b2i(admin), id))
	})
	if err != nil {
		return fmt.Errorf("sqlite: set user %d admin=%t: %w", id, admin, err)
	}
	return nil
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, d store.Device) (store.Device, error) {
	d.Revoked, d.Disabled, d.InboxHead = time.Time{}, false, 0
	err := s.write(ctx, func(tx *sql.Tx) error { return insertDevice(ctx, tx, d) })
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: add device %q to user %d: %w", d.ID, d.User, err)
	}
	return d, nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, id store.DeviceID) (store.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: device %q: %w", id, notFound(err))
	}
	return d, nil
}

// DeviceByKey implements store.Store.
func (s *Store) DeviceByKey(ctx context.Context, key []byte) (store.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE signature_key = $1`, key))
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: device by signature key: %w", notFound(err))
	}
	return d, nil
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, user store.UserID) ([]store.Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE user_id = $1 ORDER BY created, id`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices of user %d: %v", user, err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: devices of user %d: %v", user, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: devices of user %d: %v", user, err)
	}
	return out, nil
}

// RevokeDevice implements store.Store.
func (s *Store) RevokeDevice(ctx context.Context, id store.DeviceID, at time.Time, revocation []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var revoked int64
		if err := tx.QueryRowContext(ctx, `SELECT revoked FROM devices WHERE id = $1`, id).Scan(&revoked); err != nil {
			return notFound(err)
		}
		if revoked == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE devices SET revoked = $1 WHERE id = $2`, micros(at), id); err != nil {
				return err
			}
		}
		if err := keepRevocation(ctx, tx, id, revocation); err != nil {
			return err
		}
		return deleteDeviceAuth(ctx, tx, id, true)
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke device %q: %w", id, err)
	}
	return nil
}

// deleteDeviceAuth deletes a device's sessions and challenges, and its
// KeyPackages when keyPackages is set.
func deleteDeviceAuth(ctx context.Context, tx *sql.Tx, id store.DeviceID, keyPackages bool) error {
	qs := []string{`DELETE FROM sessions WHERE device_id = $1`, `DELETE FROM challenges WHERE device_id = $1`}
	if keyPackages {
		qs = append(qs, `DELETE FROM key_packages WHERE device_id = $1`)
	}
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// SetDeviceDisabled implements store.Store.
func (s *Store) SetDeviceDisabled(ctx context.Context, id store.DeviceID, disabled bool) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, `UPDATE devices SET disabled = $1 WHERE id = $2`, b2i(disabled), id)); err != nil {
			return err
		}
		if disabled {
			return deleteDeviceAuth(ctx, tx, id, false)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set device %q disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// CreateInvite implements store.Store.
func (s *Store) CreateInvite(ctx context.Context, inv store.Invite) (store.Invite, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if len(inv.CodeHash) == 0 || inv.UsesLeft < 1 {
			return store.ErrInvalid
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO invites (code_hash, uses_left, expires, created) VALUES ($1, $2, $3, $4) RETURNING id`,
			inv.CodeHash, inv.UsesLeft, micros(inv.Expires), micros(inv.Created)).Scan(&inv.ID)
		if isUnique(err) {
			return store.ErrConflict
		}
		return err
	})
	if err != nil {
		return store.Invite{}, fmt.Errorf("sqlite: create invite with %d uses: %w", inv.UsesLeft, err)
	}
	return inv, nil
}

// Invites implements store.Store.
func (s *Store) Invites(ctx context.Context) ([]store.Invite, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, code_hash, uses_left, expires, created FROM invites ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: invites: %v", err)
	}
	defer rows.Close()
	var out []store.Invite
	for rows.Next() {
		var inv store.Invite
		var exp, created int64
		if err := rows.Scan(&inv.ID, &inv.CodeHash, &inv.UsesLeft, &exp, &created); err != nil {
			return nil, fmt.Errorf("sqlite: invites: %v", err)
		}
		inv.Expires, inv.Created = fromMicros(exp), fromMicros(created)
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: invites: %v", err)
	}
	return out, nil
}

// DeleteInvite implements store.Store.
func (s *Store) DeleteInvite(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, `DELETE FROM invites WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete invite %d: %w", id, err)
	}
	return nil
}

// CreateChallenge implements store.Store.
func (s *Store) CreateChallenge(ctx context.Context, c store.Challenge) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO challenges (nonce, device_id, expires) VALUES ($1, $2, $3)`, c.Nonce, c.Device, micros(c.Expires))
		if isUnique(err) {
			return store.ErrConflict
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create challenge for device %q: %w", c.Device, err)
	}
	return nil
}

// ConsumeChallenge implements store.Store.
func (s *Store) ConsumeChallenge(ctx context.Context, nonce []byte, device store.DeviceID, now time.Time) (store.Challenge, error) {
	c := store.Challenge{Nonce: nonce}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var exp int64
		if err := tx.QueryRowContext(ctx, `DELETE FROM challenges WHERE nonce = $1 RETURNING device_id, expires`, nonce).Scan(&c.Device, &exp); err != nil {
			return notFound(err)
		}
		c.Expires = fromMicros(exp)
		return nil
	})
	if err == nil && (c.Device != device || !c.Expires.After(now)) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Challenge{}, fmt.Errorf("sqlite: consume challenge for device %q: %w", device, err)
	}
	return c, nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, device_id, user_id, created, expires) VALUES ($1, $2, $3, $4, $5)`,
			ss.TokenHash, ss.Device, ss.User, micros(ss.Created), micros(ss.Expires))
		switch {
		case isUnique(err):
			return store.ErrConflict
		case isForeignKey(err):
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create session for device %q: %w", ss.Device, err)
	}
	return nil
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	ss := store.Session{TokenHash: tokenHash}
	var created, exp int64
	err := s.r.QueryRowContext(ctx, `SELECT s.device_id, s.user_id, s.created, s.expires FROM sessions s
		JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires > $2 AND d.revoked = 0 AND d.disabled = 0 AND u.disabled = 0 AND d.user_id = s.user_id`,
		tokenHash, micros(now)).Scan(&ss.Device, &ss.User, &created, &exp)
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: session: %w", notFound(err))
	}
	ss.Created, ss.Expires = fromMicros(created), fromMicros(exp)
	return ss, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return mustAffect(tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash))
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return nil
}
