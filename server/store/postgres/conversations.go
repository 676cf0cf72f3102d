package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/server/store"
)

const convCols = `id, group_id, suite, epoch, group_info, tree, follower_state, proposals, proposal_bytes, proposals_digest, head, created`

func scanConv(r scanner) (store.Conversation, error) {
	var c store.Conversation
	var created int64
	err := r.Scan(&c.ID, &c.GroupID, &c.Suite, &c.Epoch, &c.GroupInfo, &c.Tree, &c.FollowerState, &c.Proposals, &c.ProposalBytes, &c.ProposalsDigest, &c.Head, &created)
	c.Created = fromMicros(created)
	if len(c.ProposalsDigest) == 0 {
		c.ProposalsDigest = nil
	}
	return c, err
}

// CreateConversation implements store.Store.
func (s *Store) CreateConversation(ctx context.Context, nc store.NewConversation) (store.Conversation, error) {
	c := store.Conversation{GroupID: nc.GroupID, Suite: nc.Suite, Epoch: nc.Epoch, GroupInfo: nc.GroupInfo, Tree: nc.Tree, FollowerState: nc.FollowerState, Created: nc.Created}
	err := s.write(ctx, func(tx pgx.Tx) error {
		if len(nc.GroupID) == 0 {
			return store.ErrInvalid
		}
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE id = $1`, nc.Creator).Scan(&one); err != nil {
			return notFound(err)
		}
		err := tx.QueryRow(ctx, `INSERT INTO conversations (group_id, suite, epoch, group_info, tree, follower_state, head, created) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING id`,
			nc.GroupID, nc.Suite, nc.Epoch, nonNil(nc.GroupInfo), nonNil(nc.Tree), nonNil(nc.FollowerState), micros(nc.Created)).Scan(&c.ID)
		if err != nil {
			return mapConstraint(err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO members (conversation_id, device_id, cursor) VALUES ($1, $2, 0)`, c.ID, nc.Creator)
		return err
	})
	if err != nil {
		return store.Conversation{}, fmt.Errorf("postgres: create conversation by device %q: %w", nc.Creator, err)
	}
	return c, nil
}

// Conversation implements store.Store.
func (s *Store) Conversation(ctx context.Context, id store.ConversationID) (store.Conversation, error) {
	c, err := scanConv(s.pool.QueryRow(ctx, `SELECT `+convCols+` FROM conversations WHERE id = $1`, id))
	if err != nil {
		return store.Conversation{}, fmt.Errorf("postgres: conversation %d: %w", id, notFound(err))
	}
	return c, nil
}

// ConversationByGroupID implements store.Store.
func (s *Store) ConversationByGroupID(ctx context.Context, groupID []byte) (store.Conversation, error) {
	c, err := scanConv(s.pool.QueryRow(ctx, `SELECT `+convCols+` FROM conversations WHERE group_id = $1`, groupID))
	if err != nil {
		return store.Conversation{}, fmt.Errorf("postgres: conversation by group id: %w", notFound(err))
	}
	return c, nil
}

// Members implements store.Store.
func (s *Store) Members(ctx context.Context, id store.ConversationID) ([]store.DeviceID, error) {
	rows, _ := s.pool.Query(ctx, `SELECT device_id FROM members WHERE conversation_id = $1 AND left_seq = 0 ORDER BY device_id`, id)
	out, err := pgx.CollectRows(rows, pgx.RowTo[store.DeviceID])
	if err != nil {
		return nil, fmt.Errorf("postgres: members of conversation %d: %v", id, err)
	}
	return out, nil
}

// IsMember implements store.Store.
func (s *Store) IsMember(ctx context.Context, id store.ConversationID, device store.DeviceID) (bool, error) {
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM members WHERE conversation_id = $1 AND device_id = $2 AND left_seq = 0`, id, device).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("postgres: is device %q member of conversation %d: %v", device, id, err)
	}
	return true, nil
}

// Conversations implements store.Store.
func (s *Store) Conversations(ctx context.Context, device store.DeviceID) ([]store.Membership, error) {
	rows, _ := s.pool.Query(ctx, `SELECT m.conversation_id, m.cursor, c.head, c.epoch, m.left_seq, m.joined_seq, m.gap_from, m.gap_to FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.device_id = $1 ORDER BY m.conversation_id`, device)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Membership, error) {
		var m store.Membership
		err := r.Scan(&m.Conversation, &m.Cursor, &m.Head, &m.Epoch, &m.Left, &m.Joined, &m.GapFrom, &m.GapTo)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: conversations of device %q: %v", device, err)
	}
	return out, nil
}

// staleOrMissing explains a failed compare-and-set on (epoch, proposals).
func staleOrMissing(ctx context.Context, tx pgx.Tx, id store.ConversationID, epoch, proposals uint64) error {
	var cur, props uint64
	if err := tx.QueryRow(ctx, `SELECT epoch, proposals FROM conversations WHERE id = $1`, id).Scan(&cur, &props); err != nil {
		return notFound(err)
	}
	if cur != epoch {
		return &store.StaleEpochError{Conversation: id, Expected: epoch, Current: cur}
	}
	return fmt.Errorf("%d proposals accepted in epoch %d, not %d: %w", props, cur, proposals, store.ErrStaleState)
}

// nullBytes returns b, or NULL for an empty b.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// insertHandshake appends a handshake entry with its hash and the epoch
// after it.
func insertHandshake(ctx context.Context, tx pgx.Tx, e store.Entry, hash []byte, epoch uint64) error {
	_, err := tx.Exec(ctx, `INSERT INTO entries (conversation_id, seq, kind, sender, data, created, hash, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Conversation, e.Seq, store.KindHandshake, e.Sender, nonNil(e.Data), micros(e.Created), nullBytes(hash), epoch)
	return mapConstraint(err)
}

// Membership implements store.Store.
func (s *Store) Membership(ctx context.Context, id store.ConversationID, device store.DeviceID) (store.Membership, error) {
	m := store.Membership{Conversation: id}
	err := s.pool.QueryRow(ctx, `SELECT m.cursor, c.head, c.epoch, m.left_seq, m.joined_seq, m.gap_from, m.gap_to FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.conversation_id = $1 AND m.device_id = $2`, id, device).Scan(&m.Cursor, &m.Head, &m.Epoch, &m.Left, &m.Joined, &m.GapFrom, &m.GapTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Membership{}, fmt.Errorf("postgres: membership of device %q in conversation %d: %w", device, id, store.ErrNotMember)
	} else if err != nil {
		return store.Membership{}, fmt.Errorf("postgres: membership of device %q in conversation %d: %v", device, id, err)
	}
	return m, nil
}

// PendingProposals implements store.Store. Rows of an epoch never change
// and a commit deletes them all at once, so one statement reads them
// consistently.
func (s *Store) PendingProposals(ctx context.Context, id store.ConversationID, epoch, from, to uint64) ([]store.PendingProposal, error) {
	out, err := s.pendingProposals(ctx, id, epoch, from, to)
	if err != nil {
		return nil, fmt.Errorf("postgres: pending proposals %d to %d of conversation %d at epoch %d: %w", from, to, id, epoch, err)
	}
	return out, nil
}

func (s *Store) pendingProposals(ctx context.Context, id store.ConversationID, epoch, from, to uint64) ([]store.PendingProposal, error) {
	if from > to {
		return nil, store.ErrInvalid
	}
	n := to - from
	if n == 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT data, created FROM pending_proposals WHERE conversation_id = $1 AND epoch = $2 AND idx >= $3 AND idx < $4 ORDER BY idx`, id, epoch, from, to)
	out := make([]store.PendingProposal, 0, min(n, 1024))
	var p store.PendingProposal
	var created int64
	_, err := pgx.ForEachRow(rows, []any{&p.Data, &created}, func() error {
		out = append(out, store.PendingProposal{Data: p.Data, Created: fromMicros(created)})
		p.Data = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) == n {
		return out, nil
	}
	var cur uint64
	if err := s.pool.QueryRow(ctx, `SELECT epoch FROM conversations WHERE id = $1`, id).Scan(&cur); err != nil {
		return nil, notFound(err)
	}
	if cur != epoch {
		return nil, &store.StaleEpochError{Conversation: id, Expected: epoch, Current: cur}
	}
	return nil, fmt.Errorf("only %d stored: %w", len(out), store.ErrInvalid)
}

// HandshakeByHash implements store.Store.
func (s *Store) HandshakeByHash(ctx context.Context, id store.ConversationID, hash []byte) (store.HandshakeEntry, error) {
	h := store.HandshakeEntry{Entry: store.Entry{Conversation: id}}
	if len(hash) == 0 {
		return store.HandshakeEntry{}, fmt.Errorf("postgres: handshake by hash in conversation %d: empty hash: %w", id, store.ErrNotFound)
	}
	var created int64
	var kind int16
	err := s.pool.QueryRow(ctx, `SELECT seq, kind, sender, data, created, epoch FROM entries WHERE conversation_id = $1 AND hash = $2`, id, hash).
		Scan(&h.Seq, &kind, &h.Sender, &h.Data, &created, &h.Epoch)
	if err != nil {
		return store.HandshakeEntry{}, fmt.Errorf("postgres: handshake by hash in conversation %d: %w", id, notFound(err))
	}
	h.Kind, h.Created = store.EntryKind(kind), fromMicros(created)
	return h, nil
}

// Commit implements store.Store. The compare-and-set is a conditional
// UPDATE of the conversation row: concurrent commits for one epoch, on any
// node, wait for the row lock and then find the epoch moved.
func (s *Store) Commit(ctx context.Context, c store.Commit) (store.Entry, error) {
	e := store.Entry{Conversation: c.Conversation, Kind: store.KindHandshake, Sender: c.Sender, Data: c.Data, Created: c.Created}
	err := s.write(ctx, func(tx pgx.Tx) error {
		adding := make(map[store.DeviceID]bool, len(c.Add))
		for _, d := range c.Add {
			adding[d] = true
		}
		for _, w := range c.Welcomes {
			if !adding[w.Device] {
				return fmt.Errorf("welcome for device %q, which is not added: %w", w.Device, store.ErrInvalid)
			}
		}
		err := tx.QueryRow(ctx, `UPDATE conversations SET epoch = epoch + 1, proposals = 0, proposal_bytes = 0, proposals_digest = ''::bytea, head = head + 1,
				group_info = $1, tree = $2, follower_state = $3
			WHERE id = $4 AND epoch = $5 AND proposals = $6 RETURNING head`,
			nonNil(c.GroupInfo), nonNil(c.Tree), nonNil(c.FollowerState), c.Conversation, c.Epoch, c.Proposals).Scan(&e.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return staleOrMissing(ctx, tx, c.Conversation, c.Epoch, c.Proposals)
		} else if err != nil {
			return err
		}
		// The old epoch's pending proposals end with it.
		if _, err := tx.Exec(ctx, `DELETE FROM pending_proposals WHERE conversation_id = $1`, c.Conversation); err != nil {
			return err
		}
		if err := insertHandshake(ctx, tx, e, c.Hash, c.Epoch+1); err != nil {
			return err
		}
		if len(c.Remove) > 0 {
			// Removed devices depart: they may still read up to this
			// commit, which tells them they were removed.
			if _, err := tx.Exec(ctx, `UPDATE members SET left_seq = $1 WHERE conversation_id = $2 AND device_id = ANY($3) AND left_seq = 0`, e.Seq, c.Conversation, strs(c.Remove)); err != nil {
				return err
			}
		}
		if len(c.Add) > 0 {
			// Lock the added devices in id order (their inbox heads
			// change), so commits adding overlapping devices to
			// different conversations cannot deadlock.
			rows, _ := tx.Query(ctx, `SELECT id FROM devices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, strs(c.Add))
			found, err := pgx.CollectRows(rows, pgx.RowTo[store.DeviceID])
			if err != nil {
				return err
			}
			have := make(map[store.DeviceID]bool, len(found))
			for _, d := range found {
				have[d] = true
			}
			for _, d := range c.Add {
				if !have[d] {
					return fmt.Errorf("added device %q: %w", d, store.ErrNotFound)
				}
			}
			// A departed device added again restarts at this commit and
			// keeps its joined seq (the rest of its old membership stays
			// readable) but not the time it was out, which becomes its gap;
			// an older gap moves its joined seq to the gap's end. A member
			// stays as it is.
			if _, err := tx.Exec(ctx, `INSERT INTO members (conversation_id, device_id, cursor, joined_seq) SELECT $1, d, $2, $2 FROM unnest($3::text[]) AS d
				ON CONFLICT (conversation_id, device_id) DO UPDATE SET cursor = excluded.cursor, left_seq = 0,
					joined_seq = GREATEST(members.joined_seq, members.gap_to), gap_from = members.left_seq, gap_to = excluded.cursor
				WHERE members.left_seq <> 0`, c.Conversation, e.Seq, strs(c.Add)); err != nil {
				return err
			}
		}
		for _, w := range c.Welcomes {
			var seq uint64
			if err := tx.QueryRow(ctx, `UPDATE devices SET inbox_head = inbox_head + 1 WHERE id = $1 RETURNING inbox_head`, w.Device).Scan(&seq); err != nil {
				return notFound(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO inbox (device_id, seq, conversation_id, data, created) VALUES ($1, $2, $3, $4, $5)`,
				w.Device, seq, c.Conversation, nonNil(w.Data), micros(c.Created)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Entry{}, fmt.Errorf("postgres: commit to conversation %d at epoch %d by device %q: %w", c.Conversation, c.Epoch, c.Sender, err)
	}
	return e, nil
}

// Propose implements store.Store. The compare-and-set is a conditional
// UPDATE of the conversation row, which leaves its large TOASTed columns
// (GroupInfo, tree, follower state) where they are; then the log entry
// and the pending proposal are inserted: what it writes does not grow
// with the proposals already pending.
func (s *Store) Propose(ctx context.Context, p store.Proposal) (store.Entry, error) {
	e := store.Entry{Conversation: p.Conversation, Kind: store.KindHandshake, Sender: p.Sender, Data: p.Data, Created: p.Created}
	err := s.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE conversations SET head = head + 1, proposals = proposals + 1, proposal_bytes = proposal_bytes + $1, proposals_digest = $2
			WHERE id = $3 AND epoch = $4 AND proposals = $5 RETURNING head`, len(p.Data), nonNil(p.Digest), p.Conversation, p.Epoch, p.Proposals).Scan(&e.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return staleOrMissing(ctx, tx, p.Conversation, p.Epoch, p.Proposals)
		} else if err != nil {
			return err
		}
		if err := insertHandshake(ctx, tx, e, p.Hash, p.Epoch); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO pending_proposals (conversation_id, idx, epoch, data, created) VALUES ($1, $2, $3, $4, $5)`,
			p.Conversation, p.Proposals, p.Epoch, nonNil(p.Data), micros(p.Created))
		return err
	})
	if err != nil {
		return store.Entry{}, fmt.Errorf("postgres: proposal to conversation %d at epoch %d by device %q: %w", p.Conversation, p.Epoch, p.Sender, err)
	}
	return e, nil
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
			data, created = append(data, nonNil(ne.Data)), append(created, micros(ne.Created))
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

// limitArg converts a store limit to a LIMIT argument: a negative limit
// means no limit (NULL), as in SQLite.
func limitArg(limit int) *int {
	if limit < 0 {
		return nil
	}
	return &limit
}

// Entries implements store.Store.
func (s *Store) Entries(ctx context.Context, id store.ConversationID, after uint64, limit int) ([]store.Entry, error) {
	rows, _ := s.pool.Query(ctx, `SELECT seq, kind, sender, data, created FROM entries WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limitArg(limit))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Entry, error) {
		e := store.Entry{Conversation: id}
		var created int64
		var kind int16
		err := r.Scan(&e.Seq, &kind, &e.Sender, &e.Data, &created)
		e.Kind, e.Created = store.EntryKind(kind), fromMicros(created)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: entries of conversation %d after %d: %v", id, after, err)
	}
	return out, nil
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, device store.DeviceID, id store.ConversationID, seq uint64) error {
	err := s.write(ctx, func(tx pgx.Tx) error { return ackTx(ctx, tx, device, id, seq) })
	if err != nil {
		return fmt.Errorf("postgres: ack conversation %d to %d by device %q: %w", id, seq, device, err)
	}
	return nil
}

// AckBatch implements store.Store.
func (s *Store) AckBatch(ctx context.Context, acks []store.Ack) ([]error, error) {
	errs := make([]error, len(acks))
	err := s.write(ctx, func(tx pgx.Tx) error {
		for i, a := range acks {
			err := ackTx(ctx, tx, a.Device, a.Conversation, a.Seq)
			if err != nil && !errors.Is(err, store.ErrNotMember) && !errors.Is(err, store.ErrInvalid) {
				return err
			}
			if err != nil {
				err = fmt.Errorf("postgres: ack conversation %d to %d by device %q: %w", a.Conversation, a.Seq, a.Device, err)
			}
			errs[i] = err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: ack batch of %d: %w", len(acks), err)
	}
	return errs, nil
}

// ackTx applies one acknowledgement in tx. ErrNotMember and ErrInvalid
// leave tx unchanged (and usable).
func ackTx(ctx context.Context, tx pgx.Tx, device store.DeviceID, id store.ConversationID, seq uint64) error {
	tag, err := tx.Exec(ctx, `UPDATE members SET cursor = $1 WHERE conversation_id = $2 AND device_id = $3 AND cursor < $1 AND left_seq = 0
		AND $1 <= (SELECT head FROM conversations WHERE id = $2)`, seq, id, device)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	var cursor, head, left uint64
	err = tx.QueryRow(ctx, `SELECT m.cursor, c.head, m.left_seq FROM members m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.conversation_id = $1 AND m.device_id = $2`, id, device).Scan(&cursor, &head, &left)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotMember
	} else if err != nil {
		return err
	}
	switch {
	case left != 0 && seq > left:
		return fmt.Errorf("beyond seq %d, the commit that removed the device: %w", left, store.ErrInvalid)
	case seq > head:
		return fmt.Errorf("beyond head %d: %w", head, store.ErrInvalid)
	case left != 0 && seq == left:
		// The departed device has read the commit that removed it.
		_, err := tx.Exec(ctx, `DELETE FROM members WHERE conversation_id = $1 AND device_id = $2`, id, device)
		return err
	case left != 0 && seq > cursor:
		_, err := tx.Exec(ctx, `UPDATE members SET cursor = $1 WHERE conversation_id = $2 AND device_id = $3`, seq, id, device)
		return err
	}
	return nil // not forward: ignored
}

// Inbox implements store.Store.
func (s *Store) Inbox(ctx context.Context, device store.DeviceID, after uint64, limit int) ([]store.InboxEntry, error) {
	rows, _ := s.pool.Query(ctx, `SELECT seq, conversation_id, data, created FROM inbox WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, device, after, limitArg(limit))
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.InboxEntry, error) {
		e := store.InboxEntry{Device: device}
		var created int64
		err := r.Scan(&e.Seq, &e.Conversation, &e.Data, &created)
		e.Created = fromMicros(created)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: inbox of device %q after %d: %v", device, after, err)
	}
	return out, nil
}

// AckInbox implements store.Store.
func (s *Store) AckInbox(ctx context.Context, device store.DeviceID, seq uint64) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM inbox WHERE device_id = $1 AND seq <= $2`, device, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: ack inbox of device %q to %d: %w", device, seq, err)
	}
	return nil
}

// strs converts device ids to a text[] argument.
func strs(ds []store.DeviceID) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return out
}
