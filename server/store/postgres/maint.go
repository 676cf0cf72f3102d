package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
var invariants = slices.Concat(sqlstore.Invariants, []sqlstore.Invariant{
	{What: "log seqs not contiguous up to the head", SQL: `SELECT conversation_id FROM entries GROUP BY conversation_id
		HAVING MAX(seq) - MIN(seq) + 1 <> COUNT(*) OR MAX(seq) <> (SELECT head FROM conversations c WHERE c.id = entries.conversation_id)`},
	{What: "log entry of a missing conversation", SQL: `SELECT e.conversation_id FROM entries e LEFT JOIN conversations c ON c.id = e.conversation_id WHERE c.id IS NULL`},
	{What: "log entry with seq < 1 or unknown kind", SQL: `SELECT conversation_id FROM entries WHERE seq < 1 OR kind NOT IN (1, 2)`},
	{What: "cursor beyond the log head", SQL: `SELECT m.conversation_id FROM members m JOIN conversations c ON c.id = m.conversation_id WHERE m.cursor > c.head OR m.cursor < 0`},
	{What: "departed member beyond the log head, or with its cursor at or beyond its last readable seq", SQL: `SELECT m.conversation_id FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.left_seq > c.head OR (m.left_seq <> 0 AND m.cursor >= m.left_seq)`},
	{What: "joined seq beyond the cursor, or not before the removing commit", SQL: `SELECT m.conversation_id FROM members m
		WHERE m.joined_seq > m.cursor OR (m.left_seq <> 0 AND m.joined_seq >= m.left_seq)`},
	{What: "gap not between the joined seq and the cursor", SQL: `SELECT m.conversation_id FROM members m
		WHERE NOT (m.gap_from = 0 AND m.gap_to = 0) AND NOT (m.joined_seq <= m.gap_from AND m.gap_from < m.gap_to AND m.gap_to <= m.cursor)`},
	{What: "hash or epoch on an application entry, or handshake epoch beyond the conversation's", SQL: `SELECT e.conversation_id FROM entries e JOIN conversations c ON c.id = e.conversation_id
		WHERE (e.kind = 1 AND (e.hash IS NOT NULL OR e.epoch <> 0)) OR e.epoch > c.epoch`},
	{What: "pending proposals not the epoch's proposals 0 to count-1, or not of the counted size", SQL: `SELECT c.id FROM conversations c
		WHERE c.proposals <> (SELECT COUNT(*) FROM pending_proposals p WHERE p.conversation_id = c.id)
			OR c.proposal_bytes <> (SELECT COALESCE(SUM(length(p.data)), 0) FROM pending_proposals p WHERE p.conversation_id = c.id)
			OR EXISTS (SELECT 1 FROM pending_proposals p WHERE p.conversation_id = c.id AND (p.epoch <> c.epoch OR p.idx >= c.proposals))`},
	{What: "member of a missing conversation", SQL: `SELECT m.conversation_id FROM members m LEFT JOIN conversations c ON c.id = m.conversation_id WHERE c.id IS NULL`},
	{What: "member that is a missing device", SQL: `SELECT m.device_id FROM members m LEFT JOIN devices d ON d.id = m.device_id WHERE d.id IS NULL`},
	{What: "more than one last-resort key package per device and suite", SQL: `SELECT device_id FROM key_packages WHERE last_resort GROUP BY device_id, suite HAVING COUNT(*) > 1`},
	{What: "constraint not validated", SQL: `SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND NOT convalidated`},
	{What: "invalid index", SQL: `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid AND i.indisready)`},
})

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
			rows, _ := tx.Query(ctx, `SELECT v::text FROM (`+inv.SQL+`) AS bad(v)`)
			bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("%s: %v", inv.What, err)
			}
			if len(bad) > 0 {
				errs = append(errs, fmt.Errorf("%s: %v", inv.What, bad))
			}
		}
		return nil
	})
	if err := errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("postgres: check invariants: %w", err)
	}
	return nil
}
