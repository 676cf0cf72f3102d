package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// Counted is a statement of Prune with the count its changed rows add to.
type Counted struct {
	N   *int64
	SQL string
}

// PruneExpired returns Prune's deletions of expired rows, each given now
// ($1) and counted in r (expired blob reservations are not reported). Run
// them in one transaction or in one each.
func PruneExpired(r *store.PruneResult) []Counted {
	return []Counted{
		{new(int64), `DELETE FROM blob_reservations WHERE expires <= $1`},
		{&r.Sessions, `DELETE FROM sessions WHERE expires <= $1`},
		{&r.Challenges, `DELETE FROM challenges WHERE expires <= $1`},
		{&r.KeyPackages, `DELETE FROM key_packages WHERE expires <> 0 AND expires <= $1`},
		{&r.Invites, `DELETE FROM invites WHERE expires <= $1 OR uses_left <= 0`},
		{new(int64), `DELETE FROM link_messages WHERE mailbox_id IN (SELECT id FROM link_mailboxes WHERE expires <= $1)`},
		{&r.LinkMailboxes, `DELETE FROM link_mailboxes WHERE expires <= $1`},
	}
}

// PruneTimedEntries is Prune's emptying of the application entries
// appended since their conversation's timer was set that are older than
// it, given now ($1, Unix microseconds) and the empty data ($2). Entries
// from before (sent with another timer, or none) wait for the retention.
const PruneTimedEntries = `UPDATE entries SET data = $2 WHERE kind = 1 AND length(data) > 0
	AND conversation_id IN (SELECT id FROM conversations WHERE timer > 0)
	AND created >= (SELECT c.timer_since FROM conversations c WHERE c.id = entries.conversation_id)
	AND created < $1 - (SELECT c.timer FROM conversations c WHERE c.id = entries.conversation_id) * 1000000`

// TimerSeconds is a timer as stored: whole seconds.
func TimerSeconds(d time.Duration) int64 { return int64(d / time.Second) }

// PruneOldInbox is Prune's deletion of the inbox entries created before the
// retention's cutoff ($1).
const PruneOldInbox = `DELETE FROM inbox WHERE created < $1`

// PruneBlobs deletes in tx the blob records whose lifetime ended at now
// and, when cutoff is not 0, those created before cutoff (the retention's),
// and returns their ids (Unix microseconds both).
func PruneBlobs(ctx context.Context, tx Querier, now, cutoff int64) ([]string, error) {
	return collect(ctx, tx, func(r Row) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	}, `DELETE FROM blobs WHERE (expires <> 0 AND expires <= $1) OR created < $2 RETURNING id`, now, cutoff)
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	var st store.Stats
	err := s.b.Read().QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM users),
		(SELECT COUNT(*) FROM devices WHERE revoked = 0 AND NOT disabled),
		(SELECT COUNT(*) FROM conversations),
		(SELECT COUNT(*) FROM entries),
		(SELECT COUNT(*) FROM inbox),
		(SELECT COUNT(*) FROM key_packages),
		(SELECT COUNT(*) FROM blobs),
		(SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs)`).Scan(&st.Users, &st.Devices, &st.Conversations, &st.Entries, &st.InboxEntries, &st.KeyPackages, &st.Blobs, &st.BlobBytes)
	if err != nil {
		return st, s.errorf("stats: %v", err)
	}
	return st, nil
}
