package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// cut is a conversation and the seq up to which its log is deleted.
type cut struct {
	conv store.ConversationID
	seq  uint64
}

// deleteLogPrefixes deletes, per conversation, the entries up to the seq
// the query yields; it returns the number deleted.
func (s *Store) deleteLogPrefixes(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		var cuts []cut
		for rows.Next() {
			var c cut
			var seq sql.NullInt64
			if err := rows.Scan(&c.conv, &seq); err != nil {
				rows.Close()
				return err
			}
			if seq.Valid && seq.Int64 > 0 {
				c.seq = uint64(seq.Int64)
				cuts = append(cuts, c)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range cuts {
			res, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE conversation_id = $1 AND seq <= $2`, c.conv, c.seq)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}

// Prune implements store.Store. Each rule runs in its own transaction, so
// writers wait for one rule at a time.
func (s *Store) Prune(ctx context.Context, o store.PruneOptions) (store.PruneResult, error) {
	var r store.PruneResult
	now := sqlstore.Micros(o.Now)
	var errs []error
	// Entries acknowledged by every member device; a conversation with no
	// members keeps no log.
	n, err := s.deleteLogPrefixes(ctx, `SELECT h.conversation_id, CASE WHEN MIN(m.cursor) IS NULL THEN h.head ELSE MIN(m.cursor) END
		FROM conversation_heads h LEFT JOIN members m ON m.conversation_id = h.conversation_id GROUP BY h.conversation_id, h.head`)
	r.Entries += n
	errs = append(errs, err)
	var cutoff int64
	if o.Retention > 0 {
		cutoff = sqlstore.Micros(o.Now.Add(-o.Retention))
		n, err := s.deleteLogPrefixes(ctx, `SELECT conversation_id, MAX(seq) FROM entries WHERE created < $1 GROUP BY conversation_id`, cutoff)
		r.Entries += n
		errs = append(errs, err)
		errs = append(errs, s.write(ctx, func(tx *sql.Tx) error {
			n, err := dbQuerier{tx}.Exec(ctx, sqlstore.PruneOldInbox, cutoff)
			r.Inbox = n
			return err
		}))
	}
	errs = append(errs, s.write(ctx, func(tx *sql.Tx) error {
		var err error
		r.Blobs, err = sqlstore.PruneBlobs(ctx, dbQuerier{tx}, now, cutoff)
		return err
	}))
	errs = append(errs, s.write(ctx, func(tx *sql.Tx) error {
		n, err := dbQuerier{tx}.Exec(ctx, sqlstore.PruneTimedEntries, now, []byte{})
		r.Expired = n
		return err
	}))
	errs = append(errs, s.write(ctx, func(tx *sql.Tx) error {
		q := dbQuerier{tx}
		for _, c := range sqlstore.PruneExpired(&r) {
			n, err := q.Exec(ctx, c.SQL, now)
			if err != nil {
				return err
			}
			*c.N = n
		}
		return nil
	}))
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("sqlite: prune: %w", err)
	}
	return r, nil
}

// invariants are queries that must return no rows, with what a row means.
var invariants = slices.Concat(sqlstore.Invariants, []sqlstore.Invariant{
	{What: "log seqs not contiguous up to the head", SQL: `SELECT conversation_id FROM entries GROUP BY conversation_id
		HAVING MAX(seq) - MIN(seq) + 1 <> COUNT(*) OR MAX(seq) <> (SELECT head FROM conversation_heads h WHERE h.conversation_id = entries.conversation_id)`},
	{What: "conversation without exactly one head", SQL: `SELECT c.id FROM conversations c LEFT JOIN conversation_heads h ON h.conversation_id = c.id WHERE h.conversation_id IS NULL
		UNION ALL SELECT h.conversation_id FROM conversation_heads h LEFT JOIN conversations c ON c.id = h.conversation_id WHERE c.id IS NULL`},
	{What: "log entry of a missing conversation", SQL: `SELECT e.conversation_id FROM entries e LEFT JOIN conversations c ON c.id = e.conversation_id WHERE c.id IS NULL`},
	{What: "log entry with seq < 1 or unknown kind", SQL: `SELECT conversation_id FROM entries WHERE seq < 1 OR kind NOT IN (1, 2)`},
	{What: "cursor beyond the log head", SQL: `SELECT m.conversation_id FROM members m JOIN conversation_heads h ON h.conversation_id = m.conversation_id WHERE m.cursor > h.head OR m.cursor < 0`},
	{What: "departed member beyond the log head, or with its cursor at or beyond its last readable seq", SQL: `SELECT m.conversation_id FROM members m JOIN conversation_heads h ON h.conversation_id = m.conversation_id
		WHERE m.left_seq > h.head OR m.left_seq < 0 OR (m.left_seq <> 0 AND m.cursor >= m.left_seq)`},
	{What: "joined seq beyond the cursor, or not before the removing commit", SQL: `SELECT m.conversation_id FROM members m
		WHERE m.joined_seq < 0 OR m.joined_seq > m.cursor OR (m.left_seq <> 0 AND m.joined_seq >= m.left_seq)`},
	{What: "gap not between the joined seq and the cursor", SQL: `SELECT m.conversation_id FROM members m
		WHERE NOT (m.gap_from = 0 AND m.gap_to = 0) AND NOT (m.joined_seq <= m.gap_from AND m.gap_from < m.gap_to AND m.gap_to <= m.cursor)`},
	{What: "hash or epoch on an application entry, or handshake epoch beyond the conversation's", SQL: `SELECT e.conversation_id FROM entries e JOIN conversations c ON c.id = e.conversation_id
		WHERE (e.kind = 1 AND (e.hash IS NOT NULL OR e.epoch <> 0)) OR e.epoch > c.epoch`},
	{What: "pending proposals not the epoch's proposals 0 to count-1, or not of the counted size", SQL: `SELECT h.conversation_id FROM conversation_heads h JOIN conversations c ON c.id = h.conversation_id
		WHERE h.proposals < 0 OR h.proposals <> (SELECT COUNT(*) FROM pending_proposals p WHERE p.conversation_id = h.conversation_id)
			OR h.proposal_bytes <> (SELECT COALESCE(SUM(LENGTH(p.data)), 0) FROM pending_proposals p WHERE p.conversation_id = h.conversation_id)
			OR EXISTS (SELECT 1 FROM pending_proposals p WHERE p.conversation_id = h.conversation_id AND (p.epoch <> c.epoch OR p.idx < 0 OR p.idx >= h.proposals))`},
	{What: "member of a missing conversation", SQL: `SELECT m.conversation_id FROM members m LEFT JOIN conversations c ON c.id = m.conversation_id WHERE c.id IS NULL`},
	{What: "member that is a missing device", SQL: `SELECT m.device_id FROM members m LEFT JOIN devices d ON d.id = m.device_id WHERE d.id IS NULL`},
	{What: "more than one last-resort key package per device and suite", SQL: `SELECT device_id FROM key_packages WHERE last_resort = 1 GROUP BY device_id, suite HAVING COUNT(*) > 1`},
})

// checkMaxErrors bounds the findings of each of SQLite's checks that
// CheckInvariants reports.
const checkMaxErrors = 100

// CheckInvariants checks the database's internal consistency, as bbolt's
// Tx.Check does: SQLite's own full integrity check (every page, and every
// index against its table) and foreign key check, then the store's
// invariants: contiguous logs up to each head, cursors within the log, no
// rows referring to missing users, devices or conversations. Everything
// runs in one read transaction, so it checks one snapshot even while the
// server writes. It returns every violation found (at most 100 per
// SQLite check), one joined error each.
func (s *Store) CheckInvariants(ctx context.Context) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: check invariants of %s: begin: %v", s.path, err)
	}
	defer tx.Rollback()
	var errs []error
	problems, err := pragmaCheck(ctx, tx, "integrity_check", checkMaxErrors)
	if err != nil {
		errs = append(errs, fmt.Errorf("integrity_check: %v", err))
	}
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("integrity_check: %s", p))
	}
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		errs = append(errs, fmt.Errorf("foreign_key_check: %v", err))
	} else {
		n := 0
		for rows.Next() {
			var table, parent string
			var rowid sql.NullInt64
			var fkid int64
			if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
				errs = append(errs, fmt.Errorf("foreign_key_check: %v", err))
				break
			}
			if n++; n <= checkMaxErrors {
				errs = append(errs, fmt.Errorf("foreign_key_check: row %d of %s refers to a missing row of %s", rowid.Int64, table, parent))
			}
		}
		if err := rows.Err(); err != nil {
			errs = append(errs, fmt.Errorf("foreign_key_check: %v", err))
		}
		rows.Close()
	}
	for _, inv := range invariants {
		rows, err := tx.QueryContext(ctx, inv.SQL)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", inv.What, err))
			continue
		}
		var bad []any
		for rows.Next() {
			var v any
			if err := rows.Scan(&v); err != nil {
				errs = append(errs, err)
			}
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			bad = append(bad, v)
		}
		if err := rows.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", inv.What, err))
		}
		rows.Close()
		if len(bad) > 0 {
			errs = append(errs, fmt.Errorf("%s: %v", inv.What, bad))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: check invariants of %s: %w", s.path, err)
	}
	return nil
}
