package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// AdvanceEpoch implements sqlstore.Backend: the compare-and-set updates
// the conversation row, then its narrow conversation_heads row.
func (backend) AdvanceEpoch(ctx context.Context, tx sqlstore.Querier, c store.Commit) (uint64, bool, error) {
	n, err := tx.Exec(ctx, `UPDATE conversations SET epoch = epoch + 1, group_info = $1, follower_state = $2, timer = $6,
			timer_since = CASE WHEN timer = $6 THEN timer_since ELSE $7 END, tree_floor = MAX(tree_floor, $8)
		WHERE id = $3 AND epoch = $4 AND (SELECT proposals FROM conversation_heads WHERE conversation_id = $3) = $5`,
		sqlstore.NonNil(c.GroupInfo), sqlstore.NonNil(c.FollowerState), c.Conversation, c.Epoch, c.Proposals, sqlstore.TimerSeconds(c.Timer), sqlstore.Micros(c.Created), c.TreeFloor())
	if err != nil || n == 0 {
		return 0, false, err
	}
	var seq uint64
	err = tx.QueryRow(ctx, `UPDATE conversation_heads SET head = head + 1, proposals = 0, proposal_bytes = 0, proposals_digest = x''
		WHERE conversation_id = $1 RETURNING head`, c.Conversation).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, store.ErrNotFound
	}
	return seq, err == nil, err
}

// AddProposal implements sqlstore.Backend. It writes only the narrow
// conversation_heads row.
func (backend) AddProposal(ctx context.Context, tx sqlstore.Querier, p store.Proposal) (uint64, bool, error) {
	var seq uint64
	err := tx.QueryRow(ctx, `UPDATE conversation_heads SET head = head + 1, proposals = proposals + 1, proposal_bytes = proposal_bytes + $1, proposals_digest = $2
		WHERE conversation_id = $3 AND proposals = $4 AND (SELECT epoch FROM conversations WHERE id = $3) = $5 RETURNING head`,
		len(p.Data), sqlstore.NonNil(p.Digest), p.Conversation, p.Proposals, p.Epoch).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return seq, err == nil, err
}

// Depart implements sqlstore.Backend, one device at a time.
func (backend) Depart(ctx context.Context, tx sqlstore.Querier, id store.ConversationID, seq uint64, devices []store.DeviceID) error {
	for _, d := range devices {
		if _, err := tx.Exec(ctx, `UPDATE members SET left_seq = $1 WHERE conversation_id = $2 AND device_id = $3 AND left_seq = 0`, seq, id, d); err != nil {
			return err
		}
	}
	return nil
}

// Join implements sqlstore.Backend, one device at a time.
func (backend) Join(ctx context.Context, tx sqlstore.Querier, id store.ConversationID, seq uint64, devices []store.DeviceID) error {
	for _, d := range devices {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE id = $1`, d).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("added device %q: %w", d, store.ErrNotFound)
			}
			return err
		}
		// A departed device added again restarts at this commit and
		// keeps its joined seq (the rest of its old membership stays
		// readable) but not the time it was out, which becomes its gap;
		// an older gap moves its joined seq to the gap's end. A member
		// stays as it is.
		if _, err := tx.Exec(ctx, `INSERT INTO members (conversation_id, device_id, cursor, joined_seq) VALUES ($1, $2, $3, $3)
			ON CONFLICT (conversation_id, device_id) DO UPDATE SET cursor = excluded.cursor, left_seq = 0,
				joined_seq = MAX(members.joined_seq, members.gap_to), gap_from = members.left_seq, gap_to = excluded.cursor
			WHERE members.left_seq <> 0`, id, d, seq); err != nil {
			return err
		}
	}
	return nil
}

// memberKey identifies a (conversation, device) pair within a batch.
type memberKey struct {
	c store.ConversationID
	d store.DeviceID
}

// insertChunks are the row counts of the prepared multi-row entry
// inserts, largest first; the last is 1.
var insertChunks = []int{64, 16, 4, 1}

// insertEntriesSQL returns an INSERT of n entries. It uses anonymous
// placeholders: with numbered ones ($1) the driver looks up each
// parameter's name by a linear scan, quadratic in the row count.
func insertEntriesSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO entries (conversation_id, seq, kind, sender, data, created) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?)")
	}
	return b.String()
}

// AppendEntries implements store.Store. Per batch it runs one membership
// lookup per distinct (conversation, sender), one head update per
// conversation and multi-row inserts.
func (s *Store) AppendEntries(ctx context.Context, entries []store.NewEntry) ([]store.AppendResult, error) {
	res := make([]store.AppendResult, len(entries))
	err := s.write(ctx, func(tx *sql.Tx) error {
		member, exists, bump := tx.StmtContext(ctx, s.memberOf), tx.StmtContext(ctx, s.convHead), tx.StmtContext(ctx, s.bumpHead)
		// Membership of each distinct sender, and the accepted entries
		// per conversation.
		members := make(map[memberKey]bool)
		count := make(map[store.ConversationID]uint64)
		var order []store.ConversationID
		for _, ne := range entries {
			k := memberKey{ne.Conversation, ne.Sender}
			isMember, ok := members[k]
			if !ok {
				var one int
				err := member.QueryRowContext(ctx, ne.Conversation, ne.Sender).Scan(&one)
				if err != nil && err != sql.ErrNoRows {
					return err
				}
				isMember = err == nil
				members[k] = isMember
			}
			if !isMember {
				continue
			}
			if _, ok := count[ne.Conversation]; !ok {
				order = append(order, ne.Conversation)
			}
			count[ne.Conversation]++
		}
		// One head update per conversation reserves its seqs.
		next := make(map[store.ConversationID]uint64, len(order))
		for _, c := range order {
			var head uint64
			if err := bump.QueryRowContext(ctx, count[c], c).Scan(&head); err != nil {
				return err // a member's conversation exists
			}
			next[c] = head - count[c] + 1
		}
		args := make([]any, 0, 6*insertChunks[0])
		pending := 0
		flushRows := func() error {
			for pending > 0 {
				for ci, n := range insertChunks {
					if n > pending {
						continue
					}
					if _, err := tx.StmtContext(ctx, s.insEntries[ci]).ExecContext(ctx, args[:6*n]...); err != nil {
						return err
					}
					args = append(args[:0], args[6*n:]...)
					pending -= n
					break
				}
			}
			args = args[:0]
			return nil
		}
		for i, ne := range entries {
			if !members[memberKey{ne.Conversation, ne.Sender}] {
				var one int
				err := exists.QueryRowContext(ctx, ne.Conversation).Scan(&one)
				switch {
				case err == sql.ErrNoRows:
					res[i].Err = fmt.Errorf("sqlite: append to conversation %d: %w", ne.Conversation, store.ErrNotFound)
				case err != nil:
					return err
				default:
					res[i].Err = fmt.Errorf("sqlite: append to conversation %d by device %q: %w", ne.Conversation, ne.Sender, store.ErrNotMember)
				}
				continue
			}
			seq := next[ne.Conversation]
			next[ne.Conversation] = seq + 1
			args = append(args, ne.Conversation, seq, store.KindApplication, ne.Sender, sqlstore.NonNil(ne.Data), sqlstore.Micros(ne.Created))
			if pending++; pending == insertChunks[0] {
				if err := flushRows(); err != nil {
					return err
				}
			}
			res[i] = store.AppendResult{Entry: store.Entry{Conversation: ne.Conversation, Seq: seq, Kind: store.KindApplication, Sender: ne.Sender, Data: ne.Data, Created: ne.Created}}
		}
		return flushRows()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: append %d entries: %w", len(entries), err)
	}
	return res, nil
}
