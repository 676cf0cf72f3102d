package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// Prune implements store.Store. Each rule is one statement in its own
// transaction, so writers wait for one rule at a time.
func (s *Store) Prune(ctx context.Context, o store.PruneOptions) (store.PruneResult, error) {
	var r store.PruneResult
	now := sqlstore.Micros(o.Now)
	var errs []error
	exec := func(n *int64, q string, args ...any) {
		var k int64
		err := s.write(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, q, args...)
			k = tag.RowsAffected()
			return err
		})
		if err == nil {
			*n += k
		}
		errs = append(errs, err)
	}
	// Entries acknowledged by every member device; a conversation with no
	// members keeps no log.
	exec(&r.Entries, `DELETE FROM entries e USING (
			SELECT c.id, COALESCE(MIN(m.cursor), c.head) AS upto
			FROM conversations c LEFT JOIN members m ON m.conversation_id = c.id
			GROUP BY c.id, c.head) cut
		WHERE e.conversation_id = cut.id AND e.seq <= cut.upto`)
	var cutoff int64
	if o.Retention > 0 {
		cutoff = sqlstore.Micros(o.Now.Add(-o.Retention))
		// Up to the newest old entry, so the log stays a contiguous
		// suffix even when clocks went back.
		exec(&r.Entries, `DELETE FROM entries e USING (
				SELECT conversation_id, MAX(seq) AS upto FROM entries WHERE created < $1 GROUP BY conversation_id) cut
			WHERE e.conversation_id = cut.conversation_id AND e.seq <= cut.upto`, cutoff)
		exec(&r.Inbox, sqlstore.PruneOldInbox, cutoff)
	}
	errs = append(errs, s.write(ctx, func(tx pgx.Tx) error {
		ids, err := sqlstore.PruneBlobs(ctx, pgxQuerier{tx}, now, cutoff)
		r.Blobs = ids
		return err
	}))
	exec(&r.Expired, sqlstore.PruneTimedEntries, now, []byte{})
	for _, c := range sqlstore.PruneExpired(&r) {
		exec(c.N, c.SQL, now)
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("postgres: prune: %w", err)
	}
	return r, nil
}

// invariants are queries that must return no rows, with what a row means.
var invariants = []struct{ what, sql string }{
	{"tree without its latest snapshot, whole", `SELECT c.id FROM conversations c WHERE c.legacy_tree = 0 AND NOT EXISTS (SELECT 1 FROM tree_snapshots s
		WHERE s.conversation_id = c.id AND s.epoch = c.tree_snapshot AND s.parts = (SELECT count(*) FROM tree_snapshot_parts p WHERE p.conversation_id = c.id AND p.epoch = s.epoch))`},
	{"tree not readable from its floor: the oldest snapshot after it, or an epoch's changes missing since", `SELECT c.id FROM conversations c
		JOIN (SELECT conversation_id, min(epoch) AS oldest FROM tree_snapshots GROUP BY conversation_id) s ON s.conversation_id = c.id
		WHERE c.legacy_tree = 0 AND (s.oldest > c.tree_floor OR c.epoch - s.oldest <>
			(SELECT count(*) FROM tree_changes t WHERE t.conversation_id = c.id AND t.epoch > s.oldest AND t.epoch <= c.epoch))`},
	{"log seqs not contiguous up to the head", `SELECT conversation_id FROM entries GROUP BY conversation_id
		HAVING MAX(seq) - MIN(seq) + 1 <> COUNT(*) OR MAX(seq) <> (SELECT head FROM conversations c WHERE c.id = entries.conversation_id)`},
	{"log entry of a missing conversation", `SELECT e.conversation_id FROM entries e LEFT JOIN conversations c ON c.id = e.conversation_id WHERE c.id IS NULL`},
	{"log entry with seq < 1 or unknown kind", `SELECT conversation_id FROM entries WHERE seq < 1 OR kind NOT IN (1, 2)`},
	{"cursor beyond the log head", `SELECT m.conversation_id FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.cursor > c.head OR m.cursor < 0`},
	{"departed member beyond the log head, or with its cursor at or beyond its last readable seq", `SELECT m.conversation_id FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.left_seq > c.head OR (m.left_seq <> 0 AND m.cursor >= m.left_seq)`},
	{"joined seq beyond the cursor, or not before the removing commit", `SELECT m.conversation_id FROM members m
		WHERE m.joined_seq > m.cursor OR (m.left_seq <> 0 AND m.joined_seq >= m.left_seq)`},
	{"gap not between the joined seq and the cursor", `SELECT m.conversation_id FROM members m
		WHERE NOT (m.gap_from = 0 AND m.gap_to = 0) AND NOT (m.joined_seq <= m.gap_from AND m.gap_from < m.gap_to AND m.gap_to <= m.cursor)`},
	{"hash or epoch on an application entry, or handshake epoch beyond the conversation's", `SELECT e.conversation_id FROM entries e JOIN conversations c ON c.id = e.conversation_id
		WHERE (e.kind = 1 AND (e.hash IS NOT NULL OR e.epoch <> 0)) OR e.epoch > c.epoch`},
	{"pending proposals not the epoch's proposals 0 to count-1, or not of the counted size", `SELECT c.id FROM conversations c
		WHERE c.proposals <> (SELECT COUNT(*) FROM pending_proposals p WHERE p.conversation_id = c.id)
			OR c.proposal_bytes <> (SELECT COALESCE(SUM(length(p.data)), 0) FROM pending_proposals p WHERE p.conversation_id = c.id)
			OR EXISTS (SELECT 1 FROM pending_proposals p WHERE p.conversation_id = c.id AND (p.epoch <> c.epoch OR p.idx >= c.proposals))`},
	{"member of a missing conversation", `SELECT m.conversation_id FROM members m LEFT JOIN conversations c ON c.id = m.conversation_id WHERE c.id IS NULL`},
	{"member that is a missing device", `SELECT m.device_id FROM members m LEFT JOIN devices d ON d.id = m.device_id WHERE d.id IS NULL`},
	{"key package of a missing or inactive device", `SELECT k.id FROM key_packages k LEFT JOIN devices d ON d.id = k.device_id WHERE d.id IS NULL OR d.revoked <> 0`},
	{"more than one last-resort key package per device and suite", `SELECT device_id FROM key_packages WHERE last_resort GROUP BY device_id, suite HAVING COUNT(*) > 1`},
	{"device of a missing user", `SELECT d.id FROM devices d LEFT JOIN users u ON u.id = d.user_id WHERE u.id IS NULL`},
	{"inbox entry beyond the device's inbox head", `SELECT i.device_id FROM inbox i LEFT JOIN devices d ON d.id = i.device_id WHERE d.id IS NULL OR i.seq > d.inbox_head OR i.seq < 1`},
	{"inbox entry of a missing conversation", `SELECT i.device_id FROM inbox i LEFT JOIN conversations c ON c.id = i.conversation_id WHERE c.id IS NULL`},
	{"session of a missing device or another user's device", `SELECT s.device_id FROM sessions s LEFT JOIN devices d ON d.id = s.device_id WHERE d.id IS NULL OR d.user_id <> s.user_id`},
	{"negative invite uses", `SELECT id FROM invites WHERE uses_left < 0`},
	{"blob of a missing user", `SELECT b.id FROM blobs b LEFT JOIN users u ON u.id = b.owner WHERE u.id IS NULL`},
	{"blob whose lifetime ends before it was stored", `SELECT id FROM blobs WHERE expires <> 0 AND expires <= created`},
	{"constraint not validated", `SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND NOT convalidated`},
	{"invalid index", `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid AND i.indisready)`},
}

// CheckInvariants checks the store's consistency, as bbolt's Tx.Check
// does: contiguous logs up to each head, cursors within the log, no rows
// referring to missing users, devices or conversations, and no invalid
// constraint or index in the schema. It runs in one REPEATABLE READ
// transaction, so it checks one snapshot even while nodes write, and
// returns every violation found.
func (s *Store) CheckInvariants(ctx context.Context) error {
	var errs []error
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, inv := range invariants {
			rows, _ := tx.Query(ctx, `SELECT v::text FROM (`+inv.sql+`) AS bad(v)`)
			bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("%s: %v", inv.what, err)
			}
			if len(bad) > 0 {
				errs = append(errs, fmt.Errorf("%s: %v", inv.what, bad))
			}
		}
		return nil
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("postgres: check invariants: %w", err)
	}
	return nil
}
