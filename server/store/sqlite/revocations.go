package sqlite

import (
	"context"
	"fmt"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// The revoked or disabled devices still in a device's conversations (the
// statements of devices.revocation are kept and read in package
// sqlstore).

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
		im.Revoked = sqlstore.FromMicros(revoked)
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
