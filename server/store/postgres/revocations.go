package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
)

// Device revocations: the signed statements of revoked devices
// (devices.revocation, migration 7) and the revoked or disabled devices
// still in a device's conversations.

// keepRevocation stores a revocation statement for the device unless one
// is stored already (the first statement stays) or revocation is empty.
// The row is locked by the caller's UPDATE, so concurrent revocations
// keep the first statement.
func keepRevocation(ctx context.Context, tx pgx.Tx, id store.DeviceID, revocation []byte) error {
	if len(revocation) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE devices SET revocation = $1 WHERE id = $2 AND revocation = ''::bytea`, revocation, id)
	return err
}

// Revocations implements store.Store.
func (s *Store) Revocations(ctx context.Context, user store.UserID) ([]store.Revocation, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, revocation FROM devices WHERE user_id = $1 AND revocation <> ''::bytea ORDER BY id`, user)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Revocation, error) {
		var rv store.Revocation
		err := r.Scan(&rv.Device, &rv.Statement)
		return rv, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations of user %d: %v", user, err)
	}
	return out, nil
}

// InactiveMembers implements store.Store. The revoked and disabled
// devices are few (the partial index devices_inactive); their memberships
// are found by members_device and the caller's by the primary key.
func (s *Store) InactiveMembers(ctx context.Context, device store.DeviceID, limit int) ([]store.InactiveMember, error) {
	if limit < 1 {
		return nil, fmt.Errorf("postgres: inactive members for device %q: limit %d: %w", device, limit, store.ErrInvalid)
	}
	rows, _ := s.pool.Query(ctx, `SELECT r.conversation_id, d.id, u.name, d.revoked, d.revocation, d.disabled
		FROM devices d
		JOIN members r ON r.device_id = d.id AND r.left_seq = 0
		JOIN members m ON m.conversation_id = r.conversation_id AND m.device_id = $1 AND m.left_seq = 0
		JOIN users u ON u.id = d.user_id
		WHERE (d.revoked <> 0 OR d.disabled) AND d.id <> $1
		ORDER BY d.id, r.conversation_id LIMIT $2`, device, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.InactiveMember, error) {
		var im store.InactiveMember
		var revoked int64
		err := r.Scan(&im.Conversation, &im.Device, &im.UserName, &revoked, &im.Revocation, &im.Disabled)
		im.Revoked = fromMicros(revoked)
		if len(im.Revocation) == 0 {
			im.Revocation = nil
		}
		return im, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: inactive members for device %q: %v", device, err)
	}
	return out, nil
}
