package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// The revoked or disabled devices still in a device's conversations (the
// statements of devices.revocation are kept and read in package
// sqlstore).

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
		im.Revoked = sqlstore.FromMicros(revoked)
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
