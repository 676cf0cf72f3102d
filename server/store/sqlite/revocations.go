package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/parley-chat/parley/server/store"
)

// Device revocations: the signed statements of revoked devices
// (devices.revocation, migration 8) and the revoked or disabled devices
// still in a device's conversations.

// keepRevocation stores a revocation statement for the device unless one
// is stored already (the first statement stays) or revocation is empty.
func keepRevocation(ctx context.Context, tx *sql.Tx, id store.DeviceID, revocation []byte) error {
	if len(revocation) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE devices SET revocation = $1 WHERE id = $2 AND revocation = x''`, revocation, id)
	return err
}

// Revocations implements store.Store.
func (s *Store) Revocations(ctx context.Context, user store.UserID) ([]store.Revocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, revocation FROM devices WHERE user_id = $1 AND revocation <> x'' ORDER BY id`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations of user %d: %v", user, err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		if err := rows.Scan(&r.Device, &r.Statement); err != nil {
			return nil, fmt.Errorf("sqlite: revocations of user %d: %v", user, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revocations of user %d: %v", user, err)
	}
	return out, nil
}

// InactiveMembers implements store.Store. The join starts from the
// revoked and disabled devices (the partial index devices_inactive), then
// their memberships, then the caller's membership of the same
// conversation: CROSS JOIN keeps SQLite to that order.
func (s *Store) InactiveMembers(ctx context.Context, device store.DeviceID, limit int) ([]store.InactiveMember, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: inactive members for device %q: limit %d: %w", device, limit, store.ErrInvalid)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT r.conversation_id, d.id, u.name, d.revoked, d.revocation, d.disabled
		FROM devices d CROSS JOIN members r CROSS JOIN members m CROSS JOIN users u
		WHERE (d.revoked <> 0 OR d.disabled <> 0) AND d.id <> $1
			AND r.device_id = d.id AND r.left_seq = 0
			AND m.conversation_id = r.conversation_id AND m.device_id = $1 AND m.left_seq = 0
			AND u.id = d.user_id
		ORDER BY d.id, r.conversation_id LIMIT $2`, device, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: inactive members for device %q: %v", device, err)
	}
	defer rows.Close()
	var out []store.InactiveMember
	for rows.Next() {
		var im store.InactiveMember
		var revoked int64
		if err := rows.Scan(&im.Conversation, &im.Device, &im.UserName, &revoked, &im.Revocation, &im.Disabled); err != nil {
			return nil, fmt.Errorf("sqlite: inactive members for device %q: %v", device, err)
		}
		im.Revoked = fromMicros(revoked)
		if len(im.Revocation) == 0 {
			im.Revocation = nil
		}
		out = append(out, im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: inactive members for device %q: %v", device, err)
	}
	return out, nil
}
