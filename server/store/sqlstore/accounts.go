package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// userCols are the columns scanUser reads.
const userCols = `id, name, identity_key, admin, disabled, created`

func scanUser(r Row) (store.User, error) {
	var u store.User
	var created int64
	err := r.Scan(&u.ID, &u.Name, &u.IdentityKey, &u.Admin, &u.Disabled, &created)
	u.Created = FromMicros(created)
	return u, err
}

// deviceCols are the columns scanDevice reads; a new column of devices
// joins them, scanDevice and insertDevice.
const deviceCols = `id, user_id, scheme, signature_key, certificate, created, revoked, disabled, inbox_head, last_seen, sealed_name`

func scanDevice(r Row) (store.Device, error) {
	var d store.Device
	var created, revoked, seen int64
	err := r.Scan(&d.ID, &d.User, &d.Scheme, &d.SignatureKey, &d.Certificate, &created, &revoked, &d.Disabled, &d.InboxHead, &seen, &d.SealedName)
	d.Created, d.Revoked, d.LastSeen = FromMicros(created), FromMicros(revoked), FromMicros(seen)
	if len(d.SealedName) == 0 {
		d.SealedName = nil
	}
	return d, err
}

// insertDevice inserts d as a new, active device, mapping a taken id or key
// to ErrConflict and a missing user to ErrNotFound.
func (s *Store) insertDevice(ctx context.Context, tx Querier, d store.Device) error {
	if d.ID == "" || len(d.SignatureKey) == 0 {
		return store.ErrInvalid
	}
	_, err := tx.Exec(ctx, `INSERT INTO devices (id, user_id, scheme, signature_key, certificate, created, revoked, disabled, inbox_head) VALUES ($1, $2, $3, $4, $5, $6, 0, false, 0)`,
		d.ID, d.User, d.Scheme, d.SignatureKey, NonNil(d.Certificate), Micros(d.Created))
	return s.constraint(err)
}

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, nu store.NewUser) (store.User, store.Device, error) {
	u := store.User{Name: nu.Name, IdentityKey: nu.IdentityKey, Admin: nu.Admin, Created: nu.Created}
	d := nu.Device
	d.Revoked, d.Disabled, d.InboxHead = time.Time{}, false, 0
	err := s.b.Write(ctx, func(tx Querier) error {
		if nu.Name == "" {
			return store.ErrInvalid
		}
		if nu.InviteHash != nil {
			// The conditional update is re-checked on the latest row
			// version, so concurrent registrations cannot overspend.
			n, err := tx.Exec(ctx, `UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash = $1 AND uses_left > 0 AND expires > $2`, nu.InviteHash, Micros(nu.Created))
			if err != nil {
				return err
			}
			if n != 1 {
				return store.ErrInviteInvalid
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO users (name, identity_key, admin, disabled, created) VALUES ($1, $2, $3, false, $4) RETURNING id`,
			nu.Name, nu.IdentityKey, nu.Admin, Micros(nu.Created)).Scan(&u.ID)
		if s.d.IsUnique(err) {
			return store.ErrConflict
		} else if err != nil {
			return err
		}
		d.User = u.ID
		return s.insertDevice(ctx, tx, d)
	})
	if err != nil {
		return store.User{}, store.Device{}, s.errorf("create user %q with device %q: %w", nu.Name, nu.Device.ID, err)
	}
	return u, d, nil
}

// User implements store.Store.
func (s *Store) User(ctx context.Context, id store.UserID) (store.User, error) {
	u, err := scanUser(s.b.Read().QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return store.User{}, s.errorf("user %d: %w", id, notFound(err))
	}
	return u, nil
}

// UserByName implements store.Store.
func (s *Store) UserByName(ctx context.Context, name string) (store.User, error) {
	u, err := scanUser(s.b.Read().QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if err != nil {
		return store.User{}, s.errorf("user %q: %w", name, notFound(err))
	}
	return u, nil
}

// Users implements store.Store.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	out, err := collect(ctx, s.b.Read(), scanUser, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, s.errorf("users: %v", err)
	}
	return out, nil
}

// SetUserDisabled implements store.Store.
func (s *Store) SetUserDisabled(ctx context.Context, id store.UserID, disabled bool) error {
	err := s.b.Write(ctx, func(tx Querier) error {
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
		return s.errorf("set user %d disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// SetUserAdmin implements store.Store.
func (s *Store) SetUserAdmin(ctx context.Context, id store.UserID, admin bool) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		return mustAffect(tx.Exec(ctx, `UPDATE users SET admin = $1 WHERE id = $2`, admin, id))
	})
	if err != nil {
		return s.errorf("set user %d admin=%t: %w", id, admin, err)
	}
	return nil
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, d store.Device) (store.Device, error) {
	d.Revoked, d.Disabled, d.InboxHead = time.Time{}, false, 0
	err := s.b.Write(ctx, func(tx Querier) error { return s.insertDevice(ctx, tx, d) })
	if err != nil {
		return store.Device{}, s.errorf("add device %q to user %d: %w", d.ID, d.User, err)
	}
	return d, nil
}

// Device implements store.Store.
func (s *Store) Device(ctx context.Context, id store.DeviceID) (store.Device, error) {
	d, err := scanDevice(s.b.Read().QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	if err != nil {
		return store.Device{}, s.errorf("device %q: %w", id, notFound(err))
	}
	return d, nil
}

// DeviceByKey implements store.Store.
func (s *Store) DeviceByKey(ctx context.Context, key []byte) (store.Device, error) {
	d, err := scanDevice(s.b.Read().QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE signature_key = $1`, key))
	if err != nil {
		return store.Device{}, s.errorf("device by signature key: %w", notFound(err))
	}
	return d, nil
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, user store.UserID) ([]store.Device, error) {
	out, err := collect(ctx, s.b.Read(), scanDevice, `SELECT `+deviceCols+` FROM devices WHERE user_id = $1 ORDER BY created, id`, user)
	if err != nil {
		return nil, s.errorf("devices of user %d: %v", user, err)
	}
	return out, nil
}

// RevokeDevice implements store.Store.
func (s *Store) RevokeDevice(ctx context.Context, id store.DeviceID, at time.Time, revocation []byte) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		// One statement: concurrent revocations keep the first time.
		var one int
		if err := tx.QueryRow(ctx, `UPDATE devices SET revoked = CASE WHEN revoked = 0 THEN $1 ELSE revoked END WHERE id = $2 RETURNING 1`, Micros(at), id).Scan(&one); err != nil {
			return notFound(err)
		}
		if err := keepRevocation(ctx, tx, id, revocation); err != nil {
			return err
		}
		return deleteDeviceAuth(ctx, tx, id, true)
	})
	if err != nil {
		return s.errorf("revoke device %q: %w", id, err)
	}
	return nil
}

// keepRevocation stores a revocation statement for the device
// (devices.revocation) unless one is stored already (the first statement
// stays; the caller's UPDATE locked the row) or revocation is empty.
func keepRevocation(ctx context.Context, tx Querier, id store.DeviceID, revocation []byte) error {
	if len(revocation) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE devices SET revocation = $1 WHERE id = $2 AND length(revocation) = 0`, revocation, id)
	return err
}

// Revocations implements store.Store.
func (s *Store) Revocations(ctx context.Context, user store.UserID) ([]store.Revocation, error) {
	var out []store.Revocation
	err := s.b.Read().Query(ctx, `SELECT id, revocation FROM devices WHERE user_id = $1 AND length(revocation) > 0 ORDER BY id`, []any{user}, func(r Row) error {
		var rv store.Revocation
		if err := r.Scan(&rv.Device, &rv.Statement); err != nil {
			return err
		}
		out = append(out, rv)
		return nil
	})
	if err != nil {
		return nil, s.errorf("revocations of user %d: %v", user, err)
	}
	return out, nil
}

// deleteDeviceAuth deletes a device's sessions and challenges, and its
// KeyPackages when keyPackages is set.
func deleteDeviceAuth(ctx context.Context, tx Querier, id store.DeviceID, keyPackages bool) error {
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
	err := s.b.Write(ctx, func(tx Querier) error {
		if err := mustAffect(tx.Exec(ctx, `UPDATE devices SET disabled = $1 WHERE id = $2`, disabled, id)); err != nil {
			return err
		}
		if disabled {
			return deleteDeviceAuth(ctx, tx, id, false)
		}
		return nil
	})
	if err != nil {
		return s.errorf("set device %q disabled=%t: %w", id, disabled, err)
	}
	return nil
}

// SetDeviceName implements store.Store.
func (s *Store) SetDeviceName(ctx context.Context, id store.DeviceID, sealed []byte) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		return mustAffect(tx.Exec(ctx, `UPDATE devices SET sealed_name = $1 WHERE id = $2`, NonNil(sealed), id))
	})
	if err != nil {
		return s.errorf("set the name of device %q: %w", id, err)
	}
	return nil
}

// CreateInvite implements store.Store.
func (s *Store) CreateInvite(ctx context.Context, inv store.Invite) (store.Invite, error) {
	err := s.b.Write(ctx, func(tx Querier) error {
		if len(inv.CodeHash) == 0 || inv.UsesLeft < 1 {
			return store.ErrInvalid
		}
		err := tx.QueryRow(ctx, `INSERT INTO invites (code_hash, uses_left, expires, created) VALUES ($1, $2, $3, $4) RETURNING id`,
			inv.CodeHash, inv.UsesLeft, Micros(inv.Expires), Micros(inv.Created)).Scan(&inv.ID)
		return s.constraint(err)
	})
	if err != nil {
		return store.Invite{}, s.errorf("create invite with %d uses: %w", inv.UsesLeft, err)
	}
	return inv, nil
}

// Invites implements store.Store.
func (s *Store) Invites(ctx context.Context) ([]store.Invite, error) {
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.Invite, error) {
		var inv store.Invite
		var exp, created int64
		err := r.Scan(&inv.ID, &inv.CodeHash, &inv.UsesLeft, &exp, &created)
		inv.Expires, inv.Created = FromMicros(exp), FromMicros(created)
		return inv, err
	}, `SELECT id, code_hash, uses_left, expires, created FROM invites ORDER BY id`)
	if err != nil {
		return nil, s.errorf("invites: %v", err)
	}
	return out, nil
}

// DeleteInvite implements store.Store.
func (s *Store) DeleteInvite(ctx context.Context, id int64) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		return mustAffect(tx.Exec(ctx, `DELETE FROM invites WHERE id = $1`, id))
	})
	if err != nil {
		return s.errorf("delete invite %d: %w", id, err)
	}
	return nil
}

// CreateChallenge implements store.Store.
func (s *Store) CreateChallenge(ctx context.Context, c store.Challenge) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		_, err := tx.Exec(ctx, `INSERT INTO challenges (nonce, device_id, expires) VALUES ($1, $2, $3)`, c.Nonce, c.Device, Micros(c.Expires))
		return s.constraint(err)
	})
	if err != nil {
		return s.errorf("create challenge for device %q: %w", c.Device, err)
	}
	return nil
}

// ConsumeChallenge implements store.Store.
func (s *Store) ConsumeChallenge(ctx context.Context, nonce []byte, device store.DeviceID, now time.Time) (store.Challenge, error) {
	c := store.Challenge{Nonce: nonce}
	err := s.b.Write(ctx, func(tx Querier) error {
		var exp int64
		if err := tx.QueryRow(ctx, `DELETE FROM challenges WHERE nonce = $1 RETURNING device_id, expires`, nonce).Scan(&c.Device, &exp); err != nil {
			return notFound(err)
		}
		c.Expires = FromMicros(exp)
		return nil
	})
	if err == nil && (c.Device != device || !c.Expires.After(now)) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Challenge{}, s.errorf("consume challenge for device %q: %w", device, err)
	}
	return c, nil
}

// CreateSession implements store.Store.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		_, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, device_id, user_id, created, expires) VALUES ($1, $2, $3, $4, $5)`,
			ss.TokenHash, ss.Device, ss.User, Micros(ss.Created), Micros(ss.Expires))
		if err != nil {
			return s.constraint(err)
		}
		_, err = tx.Exec(ctx, `UPDATE devices SET last_seen = $2 WHERE id = $1 AND last_seen < $2`, ss.Device, Micros(ss.Created))
		return err
	})
	if err != nil {
		return s.errorf("create session for device %q: %w", ss.Device, err)
	}
	return nil
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (store.Session, error) {
	ss := store.Session{TokenHash: tokenHash}
	var created, exp int64
	err := s.b.Read().QueryRow(ctx, `SELECT s.device_id, s.user_id, s.created, s.expires FROM sessions s
		JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires > $2 AND d.revoked = 0 AND NOT d.disabled AND NOT u.disabled AND d.user_id = s.user_id`,
		tokenHash, Micros(now)).Scan(&ss.Device, &ss.User, &created, &exp)
	if err != nil {
		return store.Session{}, s.errorf("session: %w", notFound(err))
	}
	ss.Created, ss.Expires = FromMicros(created), FromMicros(exp)
	return ss, nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		return mustAffect(tx.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash))
	})
	if err != nil {
		return s.errorf("delete session: %w", err)
	}
	return nil
}
