package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlstore"
)

// AdvanceEpoch implements sqlstore.Backend. The compare-and-set is a
// conditional UPDATE of the conversation row: concurrent commits for one
// epoch, on any node, wait for the row lock and then find the epoch moved.
func (backend) AdvanceEpoch(ctx context.Context, tx sqlstore.Querier, c store.Commit) (uint64, bool, error) {
	var seq uint64
	err := tx.QueryRow(ctx, `UPDATE conversations SET epoch = epoch + 1, proposals = 0, proposal_bytes = 0, proposals_digest = ''::bytea, head = head + 1,
			group_info = $1, follower_state = $2, timer = $6,
			timer_since = CASE WHEN timer = $6 THEN timer_since ELSE $7 END, tree_floor = GREATEST(tree_floor, $8)
		WHERE id = $3 AND epoch = $4 AND proposals = $5 RETURNING head`,
		sqlstore.NonNil(c.GroupInfo), sqlstore.NonNil(c.FollowerState), c.Conversation, c.Epoch, c.Proposals, sqlstore.TimerSeconds(c.Timer), sqlstore.Micros(c.Created), int64(c.TreeFloor())).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return seq, err == nil, err
}

// AddProposal implements sqlstore.Backend. The compare-and-set is a
// conditional UPDATE of the conversation row, which leaves its TOASTed
// columns (GroupInfo, follower state) where they are.
func (backend) AddProposal(ctx context.Context, tx sqlstore.Querier, p store.Proposal) (uint64, bool, error) {
	var seq uint64
	err := tx.QueryRow(ctx, `UPDATE conversations SET head = head + 1, proposals = proposals + 1, proposal_bytes = proposal_bytes + $1, proposals_digest = $2
		WHERE id = $3 AND epoch = $4 AND proposals = $5 RETURNING head`, len(p.Data), sqlstore.NonNil(p.Digest), p.Conversation, p.Epoch, p.Proposals).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return seq, err == nil, err
}

// Depart implements sqlstore.Backend in one statement.
func (backend) Depart(ctx context.Context, tx sqlstore.Querier, id store.ConversationID, seq uint64, devices []store.DeviceID) error {
	_, err := tx.Exec(ctx, `UPDATE members SET left_seq = $1 WHERE conversation_id = $2 AND device_id = ANY($3) AND left_seq = 0`, seq, id, strs(devices))
	return err
}

// Join implements sqlstore.Backend. It first locks the added devices in id
// order (their inbox heads change), so commits adding overlapping devices
// to different conversations cannot deadlock, then upserts their
// memberships in one statement.
func (backend) Join(ctx context.Context, tx sqlstore.Querier, id store.ConversationID, seq uint64, devices []store.DeviceID) error {
	have := make(map[store.DeviceID]bool, len(devices))
	err := tx.Query(ctx, `SELECT id FROM devices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, []any{strs(devices)}, func(r sqlstore.Row) error {
		var d store.DeviceID
		if err := r.Scan(&d); err != nil {
			return err
		}
		have[d] = true
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range devices {
		if !have[d] {
			return fmt.Errorf("added device %q: %w", d, store.ErrNotFound)
		}
	}
	// A departed device added again restarts at this commit and keeps its
	// joined seq (the rest of its old membership stays readable) but not
	// the time it was out, which becomes its gap; an older gap moves its
	// joined seq to the gap's end. A member stays as it is.
	_, err = tx.Exec(ctx, `INSERT INTO members (conversation_id, device_id, cursor, joined_seq) SELECT $1, d, $2, $2 FROM unnest($3::text[]) AS d
		ON CONFLICT (conversation_id, device_id) DO UPDATE SET cursor = excluded.cursor, left_seq = 0,
			joined_seq = GREATEST(members.joined_seq, members.gap_to), gap_from = members.left_seq, gap_to = excluded.cursor
		WHERE members.left_seq <> 0`, id, seq, strs(devices))
	return err
}

// AppendEntries implements store.Store. The batch is one transaction with
// a fixed number of round trips whatever its size: the batch's
// conversations are locked in id order (SELECT … FOR NO KEY UPDATE, so
// concurrent batches on any node cannot deadlock and seqs cannot
// interleave), the senders' memberships are read, then the accepted
// entries are inserted by one INSERT from unnest and the heads advanced by
// one UPDATE.
func (s *Store) AppendEntries(ctx context.Context, entries []store.NewEntry) ([]store.AppendResult, error) {
	res := make([]store.AppendResult, len(entries))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: append %d entries: %w", len(entries), err)
	}
	if len(entries) == 0 {
		return res, nil
	}
	var convIDs []int64
	var pairConv []int64
	var pairDev []string
	seenConv := make(map[store.ConversationID]bool)
	seenPair := make(map[memberKey]bool)
	for _, ne := range entries {
		if !seenConv[ne.Conversation] {
			seenConv[ne.Conversation] = true
			convIDs = append(convIDs, int64(ne.Conversation))
		}
		if k := (memberKey{ne.Conversation, ne.Sender}); !seenPair[k] {
			seenPair[k] = true
			pairConv = append(pairConv, int64(ne.Conversation))
			pairDev = append(pairDev, string(ne.Sender))
		}
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		heads := make(map[store.ConversationID]uint64, len(convIDs))
		members := make(map[memberKey]bool, len(pairConv))
		b := &pgx.Batch{}
		b.Queue(`SELECT id, head FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, convIDs).Query(func(rows pgx.Rows) error {
			var id store.ConversationID
			var h uint64
			_, err := pgx.ForEachRow(rows, []any{&id, &h}, func() error {
				heads[id] = h
				return nil
			})
			return err
		})
		b.Queue(`SELECT m.conversation_id, m.device_id FROM members m
			JOIN unnest($1::bigint[], $2::text[]) AS k(c, d) ON m.conversation_id = k.c AND m.device_id = k.d
			WHERE m.left_seq = 0`, pairConv, pairDev).Query(func(rows pgx.Rows) error {
			var k memberKey
			_, err := pgx.ForEachRow(rows, []any{&k.c, &k.d}, func() error {
				members[k] = true
				return nil
			})
			return err
		})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		n := 0
		var (
			cs, seqs, created []int64
			senders           []string
			data              [][]byte
		)
		for i, ne := range entries {
			res[i] = store.AppendResult{}
			h, ok := heads[ne.Conversation]
			switch {
			case !ok:
				res[i].Err = fmt.Errorf("postgres: append to conversation %d: %w", ne.Conversation, store.ErrNotFound)
				continue
			case !members[memberKey{ne.Conversation, ne.Sender}]:
				res[i].Err = fmt.Errorf("postgres: append to conversation %d by device %q: %w", ne.Conversation, ne.Sender, store.ErrNotMember)
				continue
			}
			h++
			heads[ne.Conversation] = h
			n++
			cs, seqs, senders = append(cs, int64(ne.Conversation)), append(seqs, int64(h)), append(senders, string(ne.Sender))
			data, created = append(data, sqlstore.NonNil(ne.Data)), append(created, sqlstore.Micros(ne.Created))
			res[i].Entry = store.Entry{Conversation: ne.Conversation, Seq: h, Kind: store.KindApplication, Sender: ne.Sender, Data: ne.Data, Created: ne.Created}
		}
		if n == 0 {
			return nil
		}
		var hc, hv []int64
		for c, h := range heads {
			hc, hv = append(hc, int64(c)), append(hv, int64(h))
		}
		b = &pgx.Batch{}
		b.Queue(`INSERT INTO entries (conversation_id, seq, kind, sender, data, created)
			SELECT c, s, $1, d, x, t FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::bigint[]) AS u(c, s, d, x, t)`,
			int16(store.KindApplication), cs, seqs, senders, data, created)
		b.Queue(`UPDATE conversations c SET head = u.h FROM unnest($1::bigint[], $2::bigint[]) AS u(id, h) WHERE c.id = u.id AND c.head < u.h`, hc, hv)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: append %d entries: %w", len(entries), err)
	}
	return res, nil
}

// memberKey identifies a (conversation, device) pair within a batch.
type memberKey struct {
	c store.ConversationID
	d store.DeviceID
}

// strs converts device ids to a text[] argument.
func strs(ds []store.DeviceID) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}
