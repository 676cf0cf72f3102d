package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// AddKeyPackages implements store.Store. The device row is read with
// Dialect.ForShare, so the device cannot be revoked or disabled before
// the packages are committed.
func (s *Store) AddKeyPackages(ctx context.Context, kps []store.KeyPackage) error {
	return s.addKeyPackages(ctx, "add", kps, false)
}

// ReplaceKeyPackages implements store.Store: AddKeyPackages, deleting the
// one-time packages of each (device, suite) of the batch when its first
// package is stored.
func (s *Store) ReplaceKeyPackages(ctx context.Context, kps []store.KeyPackage) error {
	return s.addKeyPackages(ctx, "replace", kps, true)
}

// kpPool is a device's pool of one suite.
type kpPool struct {
	device store.DeviceID
	suite  uint16
}

func (s *Store) addKeyPackages(ctx context.Context, op string, kps []store.KeyPackage, replace bool) error {
	var at int
	err := s.b.Write(ctx, func(tx Querier) error {
		cleared := map[kpPool]bool{}
		for i, kp := range kps {
			at = i
			if len(kp.Ref) == 0 || len(kp.Data) == 0 {
				return store.ErrInvalid
			}
			var one int
			if err := tx.QueryRow(ctx, s.q.activeDevice, kp.Device).Scan(&one); err != nil {
				return notFound(err)
			}
			if pool := (kpPool{kp.Device, kp.Suite}); replace && !cleared[pool] {
				cleared[pool] = true
				if _, err := tx.Exec(ctx, `DELETE FROM key_packages WHERE device_id = $1 AND suite = $2 AND NOT last_resort`, kp.Device, kp.Suite); err != nil {
					return err
				}
			}
			if kp.LastResort {
				if err := s.b.ReplaceLastResort(ctx, tx, kp); err != nil {
					return err
				}
				continue
			}
			_, err := tx.Exec(ctx, `INSERT INTO key_packages (ref, device_id, suite, data, last_resort, expires, created) VALUES ($1, $2, $3, $4, false, $5, $6)`,
				kp.Ref, kp.Device, kp.Suite, kp.Data, Micros(kp.Expires), Micros(kp.Created))
			if err != nil {
				return s.constraint(err)
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("%s key packages: package %d of %d (device %q): %w", op, at, len(kps), kps[at].Device, err)
	}
	return nil
}

// CountKeyPackages implements store.Store.
func (s *Store) CountKeyPackages(ctx context.Context, device store.DeviceID, suite uint16, now time.Time) (store.KeyPackageCount, error) {
	var c store.KeyPackageCount
	var avail, lr, lrClaimed int
	err := s.b.Read().QueryRow(ctx, `SELECT
			COUNT(*) FILTER (WHERE NOT last_resort),
			COUNT(*) FILTER (WHERE last_resort),
			COUNT(*) FILTER (WHERE last_resort AND claimed)
		FROM key_packages WHERE device_id = $1 AND suite = $2 AND (expires = 0 OR expires > $3)`,
		device, suite, Micros(now)).Scan(&avail, &lr, &lrClaimed)
	if err != nil {
		return c, s.errorf("count key packages of device %q: %v", device, err)
	}
	c.Available, c.LastResort, c.LastResortClaimed = avail, lr > 0, lrClaimed > 0
	return c, nil
}

// ClaimKeyPackages implements store.Store.
func (s *Store) ClaimKeyPackages(ctx context.Context, user store.UserID, suite uint16, now time.Time) ([]store.KeyPackage, error) {
	return s.ClaimKeyPackagesBudgeted(ctx, user, suite, now, store.ClaimBudget{})
}

// ClaimKeyPackagesBudgeted implements store.Store: one transaction claims
// a package of every active device of the user, as claimUsers does for a
// batch.
func (s *Store) ClaimKeyPackagesBudgeted(ctx context.Context, user store.UserID, suite uint16, now time.Time, b store.ClaimBudget) ([]store.KeyPackage, error) {
	var out []store.KeyPackage
	err := s.b.Write(ctx, func(tx Querier) error {
		out = out[:0]
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1`, user).Scan(&one); err != nil {
			return notFound(err)
		}
		claims, err := s.claimUsers(ctx, tx, []store.UserID{user}, suite, now, b)
		if err != nil {
			return err
		}
		out = claims[0].KeyPackages
		if len(out) == 0 {
			return store.ErrNoKeyPackage
		}
		return nil
	})
	if err != nil {
		return nil, s.errorf("claim key packages of user %d, suite %d: %w", user, suite, err)
	}
	return out, nil
}

// ClaimKeyPackagesBatch implements store.Store: one transaction reads the
// active devices of every user, then claims a package of each in device
// id order across the batch (as the backend's ClaimDevice decides), so
// that concurrent batches lock budget rows in one order.
func (s *Store) ClaimKeyPackagesBatch(ctx context.Context, users []store.UserID, suite uint16, now time.Time, b store.ClaimBudget) ([]store.UserClaim, error) {
	index := make(map[store.UserID]int, len(users))
	for i, u := range users {
		if _, dup := index[u]; dup {
			return nil, s.errorf("claim key packages of %d users: user %d twice: %w", len(users), u, store.ErrInvalid)
		}
		index[u] = i
	}
	var out []store.UserClaim
	err := s.b.Write(ctx, func(tx Querier) error {
		var err error
		out, err = s.claimUsers(ctx, tx, users, suite, now, b)
		return err
	})
	if err != nil {
		return nil, s.errorf("claim key packages of %d users, suite %d: %w", len(users), suite, err)
	}
	return out, nil
}

// claimUsers claims in tx a package of every active device of the users
// (each once), in device id order (byte order, the same for every claim
// on every backend, so that concurrent claims lock budget rows in one
// order), as the backend's ClaimDevice decides; it answers per user, in
// the order of users.
func (s *Store) claimUsers(ctx context.Context, tx Querier, users []store.UserID, suite uint16, now time.Time, b store.ClaimBudget) ([]store.UserClaim, error) {
	out := make([]store.UserClaim, len(users))
	type owned struct {
		device store.DeviceID
		at     int // at is the user's index in users
	}
	var devices []owned
	for i, u := range users {
		out[i].User = u
		ds, err := collect(ctx, tx, scanDeviceID, `SELECT id FROM devices WHERE user_id = $1 AND revoked = 0 AND NOT disabled`, u)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			devices = append(devices, owned{d, i})
		}
	}
	slices.SortFunc(devices, func(a, b owned) int { return cmp.Compare(a.device, b.device) })
	for _, d := range devices {
		kp, ok, err := s.b.ClaimDevice(ctx, tx, d.device, suite, now, b)
		if err != nil {
			return nil, err
		}
		uc := &out[d.at]
		if ok {
			uc.KeyPackages = append(uc.KeyPackages, kp)
		} else {
			uc.Missing = append(uc.Missing, d.device)
		}
	}
	return out, nil
}
