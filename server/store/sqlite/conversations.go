package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/server/store"
)

// convCols are the columns scanConv reads, from convFrom.
const (
	convCols = `c.id, c.group_id, c.suite, c.epoch, c.group_info, c.tree, c.follower_state, h.proposals, h.proposal_bytes, h.proposals_digest, h.head, c.created`
	convFrom = `conversations c JOIN conversation_heads h ON h.conversation_id = c.id`
)

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

// nonNil returns b, or an empty slice for nil (columns are NOT NULL).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateConversation implements store.Store.
func (s *Store) CreateConversation(ctx context.Context, nc store.NewConversation) (store.Conversation, error) {
	c := store.Conversation{GroupID: nc.GroupID, Suite: nc.Suite, Epoch: nc.Epoch, GroupInfo: nc.GroupInfo, Tree: nc.Tree, FollowerState: nc.FollowerState, Created: nc.Created}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if len(nc.GroupID) == 0 {
			return store.ErrInvalid
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, nc.Creator).Scan(&one); err != nil {
			return notFound(err)
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO conversations (group_id, suite, epoch, group_info, tree, follower_state, created) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			nc.GroupID, nc.Suite, nc.Epoch, nonNil(nc.GroupInfo), nonNil(nc.Tree), nonNil(nc.FollowerState), micros(nc.Created)).Scan(&c.ID)
		if isUnique(err) {
			return store.ErrConflict
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_heads (conversation_id, head) VALUES ($1, 0)`, c.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO members (conversation_id, device_id, cursor) VALUES ($1, $2, 0)`, c.ID, nc.Creator)
		return err
	})
	if err != nil {
		return store.Conversation{}, fmt.Errorf("sqlite: create conversation by device %q: %w", nc.Creator, err)
	}
	return c, nil
}

// Conversation implements store.Store.
func (s *Store) Conversation(ctx context.Context, id store.ConversationID) (store.Conversation, error) {
	c, err := scanConv(s.r.QueryRowContext(ctx, `SELECT `+convCols+` FROM `+convFrom+` WHERE c.id = $1`, id))
	if err != nil {
		return store.Conversation{}, fmt.Errorf("sqlite: conversation %d: %w", id, notFound(err))
	}
	return c, nil
}

// ConversationByGroupID implements store.Store.
func (s *Store) ConversationByGroupID(ctx context.Context, groupID []byte) (store.Conversation, error) {
	c, err := scanConv(s.r.QueryRowContext(ctx, `SELECT `+convCols+` FROM `+convFrom+` WHERE c.group_id = $1`, groupID))
	if err != nil {
		return store.Conversation{}, fmt.Errorf("sqlite: conversation by group id: %w", notFound(err))
	}
	return c, nil
}

// Members implements store.Store.
func (s *Store) Members(ctx context.Context, id store.ConversationID) ([]store.DeviceID, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT device_id FROM members WHERE conversation_id = $1 AND left_seq = 0 ORDER BY device_id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: members of conversation %d: %v", id, err)
	}
	defer rows.Close()
	var out []store.DeviceID
	for rows.Next() {
		var d store.DeviceID
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("sqlite: members of conversation %d: %v", id, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: members of conversation %d: %v", id, err)
	}
	return out, nil
}

// IsMember implements store.Store.
func (s *Store) IsMember(ctx context.Context, id store.ConversationID, device store.DeviceID) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM members WHERE conversation_id = $1 AND device_id = $2 AND left_seq = 0`, id, device).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("sqlite: is device %q member of conversation %d: %v", device, id, err)
	}
	return true, nil
}

// Conversations implements store.Store.
func (s *Store) Conversations(ctx context.Context, device store.DeviceID) ([]store.Membership, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.conversation_id, m.cursor, h.head, c.epoch, m.left_seq, m.joined_seq, m.gap_from, m.gap_to FROM members m JOIN conversations c ON c.id = m.conversation_id
		JOIN conversation_heads h ON h.conversation_id = m.conversation_id WHERE m.device_id = $1 ORDER BY m.conversation_id`, device)
	if err != nil {
		return nil, fmt.Errorf("sqlite: conversations of device %q: %v", device, err)
	}
	defer rows.Close()
	var out []store.Membership
	for rows.Next() {
		var m store.Membership
		if err := rows.Scan(&m.Conversation, &m.Cursor, &m.Head, &m.Epoch, &m.Left, &m.Joined, &m.GapFrom, &m.GapTo); err != nil {
			return nil, fmt.Errorf("sqlite: conversations of device %q: %v", device, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: conversations of device %q: %v", device, err)
	}
	return out, nil
}

// staleOrMissing explains a failed compare-and-set on (epoch, proposals).
func staleOrMissing(ctx context.Context, tx *sql.Tx, id store.ConversationID, epoch, proposals uint64) error {
	var cur, props uint64
	if err := tx.QueryRowContext(ctx, `SELECT c.epoch, h.proposals FROM `+convFrom+` WHERE c.id = $1`, id).Scan(&cur, &props); err != nil {
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
func insertHandshake(ctx context.Context, tx *sql.Tx, e store.Entry, hash []byte, epoch uint64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO entries (conversation_id, seq, kind, sender, data, created, hash, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Conversation, e.Seq, store.KindHandshake, e.Sender, nonNil(e.Data), micros(e.Created), nullBytes(hash), epoch)
	if isUnique(err) {
		return fmt.Errorf("handshake with this hash already stored: %w", store.ErrConflict)
	}
	return err
}

// Membership implements store.Store.
func (s *Store) Membership(ctx context.Context, id store.ConversationID, device store.DeviceID) (store.Membership, error) {
	m := store.Membership{Conversation: id}
	err := s.r.QueryRowContext(ctx, `SELECT m.cursor, h.head, c.epoch, m.left_seq, m.joined_seq, m.gap_from, m.gap_to FROM members m JOIN conversations c ON c.id = m.conversation_id
		JOIN conversation_heads h ON h.conversation_id = m.conversation_id WHERE m.conversation_id = $1 AND m.device_id = $2`, id, device).Scan(&m.Cursor, &m.Head, &m.Epoch, &m.Left, &m.Joined, &m.GapFrom, &m.GapTo)
	if err == sql.ErrNoRows {
		return store.Membership{}, fmt.Errorf("sqlite: membership of device %q in conversation %d: %w", device, id, store.ErrNotMember)
	} else if err != nil {
		return store.Membership{}, fmt.Errorf("sqlite: membership of device %q in conversation %d: %v", device, id, err)
	}
	return m, nil
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, c store.Commit) (store.Entry, error) {
	e := store.Entry{Conversation: c.Conversation, Kind: store.KindHandshake, Sender: c.Sender, Data: c.Data, Created: c.Created}
	err := s.write(ctx, func(tx *sql.Tx) error {
		adding := make(map[store.DeviceID]bool, len(c.Add))
		for _, d := range c.Add {
			adding[d] = true
		}
		for _, w := range c.Welcomes {
			if !adding[w.Device] {
				return fmt.Errorf("welcome for device %q, which is not added: %w", w.Device, store.ErrInvalid)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE conversations SET epoch = epoch + 1, group_info = $1, tree = $2, follower_state = $3
			WHERE id = $4 AND epoch = $5 AND (SELECT proposals FROM conversation_heads WHERE conversation_id = $4) = $6`,
			nonNil(c.GroupInfo), nonNil(c.Tree), nonNil(c.FollowerState), c.Conversation, c.Epoch, c.Proposals)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return staleOrMissing(ctx, tx, c.Conversation, c.Epoch, c.Proposals)
		}
		// The old epoch's pending proposals end with it.
		err = tx.QueryRowContext(ctx, `UPDATE conversation_heads SET head = head + 1, proposals = 0, proposal_bytes = 0, proposals_digest = x''
			WHERE conversation_id = $1 RETURNING head`, c.Conversation).Scan(&e.Seq)
		if err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_proposals WHERE conversation_id = $1`, c.Conversation); err != nil {
			return err
		}
		if err := insertHandshake(ctx, tx, e, c.Hash, c.Epoch+1); err != nil {
			return err
		}
		for _, d := range c.Remove {
			// The removed device departs: it may still read up to this
			// commit, which tells it that it was removed.
			if _, err := tx.ExecContext(ctx, `UPDATE members SET left_seq = $1 WHERE conversation_id = $2 AND device_id = $3 AND left_seq = 0`, e.Seq, c.Conversation, d); err != nil {
				return err
			}
		}
		for _, d := range c.Add {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE id = $1`, d).Scan(&one); err != nil {
				if err == sql.ErrNoRows {
					return fmt.Errorf("added device %q: %w", d, store.ErrNotFound)
				}
				return err
			}
			// A departed device added again restarts at this commit and
			// keeps its joined seq (the rest of its old membership stays
			// readable) but not the time it was out, which becomes its gap;
			// an older gap moves its joined seq to the gap's end. A member
			// stays as it is.
			if _, err := tx.ExecContext(ctx, `INSERT INTO members (conversation_id, device_id, cursor, joined_seq) VALUES ($1, $2, $3, $3)
				ON CONFLICT (conversation_id, device_id) DO UPDATE SET cursor = excluded.cursor, left_seq = 0,
					joined_seq = MAX(members.joined_seq, members.gap_to), gap_from = members.left_seq, gap_to = excluded.cursor
				WHERE members.left_seq <> 0`, c.Conversation, d, e.Seq); err != nil {
				return err
			}
		}
		for _, w := range c.Welcomes {
			var seq uint64
			if err := tx.QueryRowContext(ctx, `UPDATE devices SET inbox_head = inbox_head + 1 WHERE id = $1 RETURNING inbox_head`, w.Device).Scan(&seq); err != nil {
				return notFound(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO inbox (device_id, seq, conversation_id, data, created) VALUES ($1, $2, $3, $4, $5)`,
				w.Device, seq, c.Conversation, nonNil(w.Data), micros(c.Created)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.Entry{}, fmt.Errorf("sqlite: commit to conversation %d at epoch %d by device %q: %w", c.Conversation, c.Epoch, c.Sender, err)
	}
	return e, nil
}

// Propose implements store.Store. It writes the narrow
// conversation_heads row, the log entry and the pending proposal: what it
// writes does not grow with the proposals already pending.
func (s *Store) Propose(ctx context.Context, p store.Proposal) (store.Entry, error) {
	e := store.Entry{Conversation: p.Conversation, Kind: store.KindHandshake, Sender: p.Sender, Data: p.Data, Created: p.Created}
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE conversation_heads SET head = head + 1, proposals = proposals + 1, proposal_bytes = proposal_bytes + $1, proposals_digest = $2
			WHERE conversation_id = $3 AND proposals = $4 AND (SELECT epoch FROM conversations WHERE id = $3) = $5 RETURNING head`,
			len(p.Data), nonNil(p.Digest), p.Conversation, p.Proposals, p.Epoch).Scan(&e.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			return staleOrMissing(ctx, tx, p.Conversation, p.Epoch, p.Proposals)
		} else if err != nil {
			return err
		}
		if err := insertHandshake(ctx, tx, e, p.Hash, p.Epoch); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pending_proposals (conversation_id, idx, epoch, data, created) VALUES ($1, $2, $3, $4, $5)`,
			p.Conversation, p.Proposals, p.Epoch, nonNil(p.Data), micros(p.Created))
		return err
	})
	if err != nil {
		return store.Entry{}, fmt.Errorf("sqlite: proposal to conversation %d at epoch %d by device %q: %w", p.Conversation, p.Epoch, p.Sender, err)
	}
	return e, nil
}

// PendingProposals implements store.Store.
func (s *Store) PendingProposals(ctx context.Context, id store.ConversationID, epoch, from, to uint64) ([]store.PendingProposal, error) {
	out, err := pendingProposals(ctx, s.r, id, epoch, from, to)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending proposals %d to %d of conversation %d at epoch %d: %w", from, to, id, epoch, err)
	}
	return out, nil
}

func pendingProposals(ctx context.Context, db *sql.DB, id store.ConversationID, epoch, from, to uint64) ([]store.PendingProposal, error) {
	if from > to {
		return nil, store.ErrInvalid
	}
	n := to - from
	if n == 0 {
		return nil, nil
	}
	// Rows of an epoch never change; a commit deletes them all at once.
	rows, err := db.QueryContext(ctx, `SELECT data, created FROM pending_proposals WHERE conversation_id = $1 AND epoch = $2 AND idx >= $3 AND idx < $4 ORDER BY idx`, id, epoch, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]store.PendingProposal, 0, min(n, 1024))
	for rows.Next() {
		var p store.PendingProposal
		var created int64
		if err := rows.Scan(&p.Data, &created); err != nil {
			return nil, err
		}
		p.Created = fromMicros(created)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if uint64(len(out)) == n {
		return out, nil
	}
	var cur uint64
	if err := db.QueryRowContext(ctx, `SELECT epoch FROM conversations WHERE id = $1`, id).Scan(&cur); err != nil {
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
		return store.HandshakeEntry{}, fmt.Errorf("sqlite: handshake by hash in conversation %d: empty hash: %w", id, store.ErrNotFound)
	}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT seq, kind, sender, data, created, epoch FROM entries WHERE conversation_id = $1 AND hash = $2`, id, hash).
		Scan(&h.Seq, &h.Kind, &h.Sender, &h.Data, &created, &h.Epoch)
	if err != nil {
		return store.HandshakeEntry{}, fmt.Errorf("sqlite: handshake by hash in conversation %d: %w", id, notFound(err))
	}
	h.Created = fromMicros(created)
	return h, nil
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
			args = append(args, ne.Conversation, seq, store.KindApplication, ne.Sender, nonNil(ne.Data), micros(ne.Created))
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

// Entries implements store.Store.
func (s *Store) Entries(ctx context.Context, id store.ConversationID, after uint64, limit int) ([]store.Entry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, kind, sender, data, created FROM entries WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: entries of conversation %d after %d: %v", id, after, err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		e := store.Entry{Conversation: id}
		var created int64
		if err := rows.Scan(&e.Seq, &e.Kind, &e.Sender, &e.Data, &created); err != nil {
			return nil, fmt.Errorf("sqlite: entries of conversation %d after %d: %v", id, after, err)
		}
		e.Created = fromMicros(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: entries of conversation %d after %d: %v", id, after, err)
	}
	return out, nil
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, device store.DeviceID, id store.ConversationID, seq uint64) error {
	err := s.write(ctx, func(tx *sql.Tx) error { return ackTx(ctx, tx, device, id, seq) })
	if err != nil {
		return fmt.Errorf("sqlite: ack conversation %d to %d by device %q: %w", id, seq, device, err)
	}
	return nil
}

// AckBatch implements store.Store.
func (s *Store) AckBatch(ctx context.Context, acks []store.Ack) ([]error, error) {
	errs := make([]error, len(acks))
	err := s.write(ctx, func(tx *sql.Tx) error {
		for i, a := range acks {
			err := ackTx(ctx, tx, a.Device, a.Conversation, a.Seq)
			if err != nil && !errors.Is(err, store.ErrNotMember) && !errors.Is(err, store.ErrInvalid) {
				return err
			}
			if err != nil {
				err = fmt.Errorf("sqlite: ack conversation %d to %d by device %q: %w", a.Conversation, a.Seq, a.Device, err)
			}
			errs[i] = err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: ack batch of %d: %w", len(acks), err)
	}
	return errs, nil
}

// ackTx applies one acknowledgement in tx. ErrNotMember and ErrInvalid
// leave tx unchanged.
func ackTx(ctx context.Context, tx *sql.Tx, device store.DeviceID, id store.ConversationID, seq uint64) error {
	res, err := tx.ExecContext(ctx, `UPDATE members SET cursor = $1 WHERE conversation_id = $2 AND device_id = $3 AND cursor < $1 AND left_seq = 0
		AND $1 <= (SELECT head FROM conversation_heads WHERE conversation_id = $2)`, seq, id, device)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var cursor, head, left uint64
	err = tx.QueryRowContext(ctx, `SELECT m.cursor, h.head, m.left_seq FROM members m JOIN conversation_heads h ON h.conversation_id = m.conversation_id
		WHERE m.conversation_id = $1 AND m.device_id = $2`, id, device).Scan(&cursor, &head, &left)
	if err == sql.ErrNoRows {
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
		_, err := tx.ExecContext(ctx, `DELETE FROM members WHERE conversation_id = $1 AND device_id = $2`, id, device)
		return err
	case left != 0 && seq > cursor:
		_, err := tx.ExecContext(ctx, `UPDATE members SET cursor = $1 WHERE conversation_id = $2 AND device_id = $3`, seq, id, device)
		return err
	}
	return nil // not forward: ignored
}

// Inbox implements store.Store.
func (s *Store) Inbox(ctx context.Context, device store.DeviceID, after uint64, limit int) ([]store.InboxEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, conversation_id, data, created FROM inbox WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, device, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: inbox of device %q after %d: %v", device, after, err)
	}
	defer rows.Close()
	var out []store.InboxEntry
	for rows.Next() {
		e := store.InboxEntry{Device: device}
		var created int64
		if err := rows.Scan(&e.Seq, &e.Conversation, &e.Data, &created); err != nil {
			return nil, fmt.Errorf("sqlite: inbox of device %q after %d: %v", device, after, err)
		}
		e.Created = fromMicros(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: inbox of device %q after %d: %v", device, after, err)
	}
	return out, nil
}

// AckInbox implements store.Store.
func (s *Store) AckInbox(ctx context.Context, device store.DeviceID, seq uint64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE device_id = $1 AND seq <= $2`, device, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: ack inbox of device %q to %d: %w", device, seq, err)
	}
	return nil
}
