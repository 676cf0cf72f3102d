package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/parley-chat/parley/server/store"
)

func scanConv(r Row) (store.Conversation, error) {
	var c store.Conversation
	var created, timer, legacy int64
	err := r.Scan(&c.ID, &c.GroupID, &c.Suite, &c.Epoch, &c.GroupInfo, &c.FollowerState, &c.Proposals, &c.ProposalBytes, &c.ProposalsDigest, &c.Head, &created, &timer, &legacy)
	c.LegacyTree = legacy != 0
	c.Created = FromMicros(created)
	c.Timer = time.Duration(timer) * time.Second
	if len(c.ProposalsDigest) == 0 {
		c.ProposalsDigest = nil
	}
	return c, err
}

// CreateConversation implements store.Store.
func (s *Store) CreateConversation(ctx context.Context, nc store.NewConversation) (store.Conversation, error) {
	c := store.Conversation{GroupID: nc.GroupID, Suite: nc.Suite, Epoch: nc.Epoch, GroupInfo: nc.GroupInfo, FollowerState: nc.FollowerState, Created: nc.Created, Timer: nc.Timer.Truncate(time.Second)}
	err := s.b.Write(ctx, func(tx Querier) error {
		if len(nc.GroupID) == 0 {
			return store.ErrInvalid
		}
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE id = $1`, nc.Creator).Scan(&one); err != nil {
			return notFound(err)
		}
		err := tx.QueryRow(ctx, `INSERT INTO conversations (group_id, suite, epoch, group_info, follower_state, created, timer, timer_since, tree_floor) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $3) RETURNING id`,
			nc.GroupID, nc.Suite, nc.Epoch, NonNil(nc.GroupInfo), NonNil(nc.FollowerState), Micros(nc.Created), TimerSeconds(nc.Timer)).Scan(&c.ID)
		if err != nil {
			return s.constraint(err)
		}
		if err := insertSnapshot(ctx, tx, c.ID, nc.Epoch, nc.Tree); err != nil {
			return err
		}
		if s.q.newHeads != "" {
			if _, err := tx.Exec(ctx, s.q.newHeads, c.ID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO members (conversation_id, device_id, cursor) VALUES ($1, $2, 0)`, c.ID, nc.Creator)
		return err
	})
	if err != nil {
		return store.Conversation{}, s.errorf("create conversation by device %q: %w", nc.Creator, err)
	}
	return c, nil
}

// Conversation implements store.Store.
func (s *Store) Conversation(ctx context.Context, id store.ConversationID) (store.Conversation, error) {
	c, err := scanConv(s.b.Read().QueryRow(ctx, s.q.conversation, id))
	if err != nil {
		return store.Conversation{}, s.errorf("conversation %d: %w", id, notFound(err))
	}
	return c, nil
}

// ConversationByGroupID implements store.Store.
func (s *Store) ConversationByGroupID(ctx context.Context, groupID []byte) (store.Conversation, error) {
	c, err := scanConv(s.b.Read().QueryRow(ctx, s.q.conversationByGroupID, groupID))
	if err != nil {
		return store.Conversation{}, s.errorf("conversation by group id: %w", notFound(err))
	}
	return c, nil
}

// Members implements store.Store.
func (s *Store) Members(ctx context.Context, id store.ConversationID) ([]store.DeviceID, error) {
	out, err := collect(ctx, s.b.Read(), scanDeviceID, `SELECT device_id FROM members WHERE conversation_id = $1 AND left_seq = 0 ORDER BY device_id`, id)
	if err != nil {
		return nil, s.errorf("members of conversation %d: %v", id, err)
	}
	return out, nil
}

// IsMember implements store.Store.
func (s *Store) IsMember(ctx context.Context, id store.ConversationID, device store.DeviceID) (bool, error) {
	var one int
	err := s.b.Read().QueryRow(ctx, `SELECT 1 FROM members WHERE conversation_id = $1 AND device_id = $2 AND left_seq = 0`, id, device).Scan(&one)
	if isNoRows(err) {
		return false, nil
	} else if err != nil {
		return false, s.errorf("is device %q member of conversation %d: %v", device, id, err)
	}
	return true, nil
}

// UserIsMember implements store.Store.
func (s *Store) UserIsMember(ctx context.Context, id store.ConversationID, user store.UserID) (bool, error) {
	var one int
	err := s.b.Read().QueryRow(ctx, `SELECT 1 FROM members m JOIN devices d ON d.id = m.device_id
		WHERE m.conversation_id = $1 AND d.user_id = $2 AND m.left_seq = 0 LIMIT 1`, id, user).Scan(&one)
	if isNoRows(err) {
		return false, nil
	} else if err != nil {
		return false, s.errorf("is a device of user %d member of conversation %d: %v", user, id, err)
	}
	return true, nil
}

// Membership implements store.Store.
func (s *Store) Membership(ctx context.Context, id store.ConversationID, device store.DeviceID) (store.Membership, error) {
	m := store.Membership{Conversation: id}
	err := s.b.Read().QueryRow(ctx, s.q.membership, id, device).Scan(&m.Cursor, &m.Head, &m.Epoch, &m.Left, &m.Joined, &m.GapFrom, &m.GapTo)
	if isNoRows(err) {
		return store.Membership{}, s.errorf("membership of device %q in conversation %d: %w", device, id, store.ErrNotMember)
	} else if err != nil {
		return store.Membership{}, s.errorf("membership of device %q in conversation %d: %v", device, id, err)
	}
	return m, nil
}

// Conversations implements store.Store.
func (s *Store) Conversations(ctx context.Context, device store.DeviceID) ([]store.Membership, error) {
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.Membership, error) {
		var m store.Membership
		err := r.Scan(&m.Conversation, &m.Cursor, &m.Head, &m.Epoch, &m.Left, &m.Joined, &m.GapFrom, &m.GapTo)
		return m, err
	}, s.q.memberships, device)
	if err != nil {
		return nil, s.errorf("conversations of device %q: %v", device, err)
	}
	return out, nil
}

// staleOrMissing explains a failed compare-and-set on (epoch, proposals).
func (s *Store) staleOrMissing(ctx context.Context, tx Querier, id store.ConversationID, epoch, proposals uint64) error {
	var cur, props uint64
	if err := tx.QueryRow(ctx, s.q.epochAndProposals, id).Scan(&cur, &props); err != nil {
		return notFound(err)
	}
	if cur != epoch {
		return &store.StaleEpochError{Conversation: id, Expected: epoch, Current: cur}
	}
	return fmt.Errorf("%d proposals accepted in epoch %d, not %d: %w", props, cur, proposals, store.ErrStaleState)
}

// insertHandshake appends a handshake entry with its hash and the epoch
// after it.
func (s *Store) insertHandshake(ctx context.Context, tx Querier, e store.Entry, hash []byte, epoch uint64) error {
	_, err := tx.Exec(ctx, `INSERT INTO entries (conversation_id, seq, kind, sender, data, created, hash, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Conversation, e.Seq, store.KindHandshake, e.Sender, NonNil(e.Data), Micros(e.Created), nullBytes(hash), epoch)
	if s.d.IsUnique(err) {
		return fmt.Errorf("handshake with this hash already stored: %w", store.ErrConflict)
	}
	return s.constraint(err)
}

// checkWelcomes checks that every Welcome of c goes to a device c adds.
func checkWelcomes(c store.Commit) error {
	adding := make(map[store.DeviceID]bool, len(c.Add))
	for _, d := range c.Add {
		adding[d] = true
	}
	for _, w := range c.Welcomes {
		if !adding[w.Device] {
			return fmt.Errorf("welcome for device %q, which is not added: %w", w.Device, store.ErrInvalid)
		}
	}
	return nil
}

// Commit implements store.Store. The backend's AdvanceEpoch is the
// compare-and-set; then the old epoch's pending proposals are dropped,
// the handshake appended, the membership changed (Depart, then Join) and
// the Welcomes delivered, all in its transaction.
func (s *Store) Commit(ctx context.Context, c store.Commit) (store.Entry, error) {
	e := store.Entry{Conversation: c.Conversation, Kind: store.KindHandshake, Sender: c.Sender, Data: c.Data, Created: c.Created}
	err := s.b.Write(ctx, func(tx Querier) error {
		if err := checkWelcomes(c); err != nil {
			return err
		}
		seq, ok, err := s.b.AdvanceEpoch(ctx, tx, c)
		if err != nil {
			return err
		}
		if !ok {
			return s.staleOrMissing(ctx, tx, c.Conversation, c.Epoch, c.Proposals)
		}
		e.Seq = seq
		if err := s.storeTreeChanges(ctx, tx, c); err != nil {
			return err
		}
		// The old epoch's pending proposals end with it.
		if _, err := tx.Exec(ctx, `DELETE FROM pending_proposals WHERE conversation_id = $1`, c.Conversation); err != nil {
			return err
		}
		if err := s.insertHandshake(ctx, tx, e, c.Hash, c.Epoch+1); err != nil {
			return err
		}
		if len(c.Remove) > 0 {
			// Removed devices depart: they may still read up to this
			// commit, which tells them they were removed.
			if err := s.b.Depart(ctx, tx, c.Conversation, e.Seq, c.Remove); err != nil {
				return err
			}
		}
		if len(c.Add) > 0 {
			if err := s.b.Join(ctx, tx, c.Conversation, e.Seq, c.Add); err != nil {
				return err
			}
		}
		return deliverWelcomes(ctx, tx, c)
	})
	if err != nil {
		return store.Entry{}, s.errorf("commit to conversation %d at epoch %d by device %q: %w", c.Conversation, c.Epoch, c.Sender, err)
	}
	return e, nil
}

// deliverWelcomes puts each Welcome of c in its device's inbox.
func deliverWelcomes(ctx context.Context, tx Querier, c store.Commit) error {
	for _, w := range c.Welcomes {
		var seq uint64
		if err := tx.QueryRow(ctx, `UPDATE devices SET inbox_head = inbox_head + 1 WHERE id = $1 RETURNING inbox_head`, w.Device).Scan(&seq); err != nil {
			return notFound(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inbox (device_id, seq, conversation_id, data, created) VALUES ($1, $2, $3, $4, $5)`,
			w.Device, seq, c.Conversation, NonNil(w.Data), Micros(c.Created)); err != nil {
			return err
		}
	}
	return nil
}

// Propose implements store.Store. The backend's AddProposal is the
// compare-and-set; then the log entry and the pending proposal are
// inserted: what it writes does not grow with the proposals already
// pending.
func (s *Store) Propose(ctx context.Context, p store.Proposal) (store.Entry, error) {
	e := store.Entry{Conversation: p.Conversation, Kind: store.KindHandshake, Sender: p.Sender, Data: p.Data, Created: p.Created}
	err := s.b.Write(ctx, func(tx Querier) error {
		seq, ok, err := s.b.AddProposal(ctx, tx, p)
		if err != nil {
			return err
		}
		if !ok {
			return s.staleOrMissing(ctx, tx, p.Conversation, p.Epoch, p.Proposals)
		}
		e.Seq = seq
		if err := s.insertHandshake(ctx, tx, e, p.Hash, p.Epoch); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO pending_proposals (conversation_id, idx, epoch, data, created) VALUES ($1, $2, $3, $4, $5)`,
			p.Conversation, p.Proposals, p.Epoch, NonNil(p.Data), Micros(p.Created))
		return err
	})
	if err != nil {
		return store.Entry{}, s.errorf("proposal to conversation %d at epoch %d by device %q: %w", p.Conversation, p.Epoch, p.Sender, err)
	}
	return e, nil
}

// PendingProposals implements store.Store. Rows of an epoch never change
// and a commit deletes them all at once, so one statement reads them
// consistently.
func (s *Store) PendingProposals(ctx context.Context, id store.ConversationID, epoch, from, to uint64) ([]store.PendingProposal, error) {
	out, err := s.pendingProposals(ctx, id, epoch, from, to)
	if err != nil {
		return nil, s.errorf("pending proposals %d to %d of conversation %d at epoch %d: %w", from, to, id, epoch, err)
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
	r := s.b.Read()
	out := make([]store.PendingProposal, 0, min(n, 1024))
	err := r.Query(ctx, `SELECT data, created FROM pending_proposals WHERE conversation_id = $1 AND epoch = $2 AND idx >= $3 AND idx < $4 ORDER BY idx`,
		[]any{id, epoch, from, to}, func(row Row) error {
			var p store.PendingProposal
			var created int64
			if err := row.Scan(&p.Data, &created); err != nil {
				return err
			}
			p.Created = FromMicros(created)
			out = append(out, p)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) == n {
		return out, nil
	}
	var cur uint64
	if err := r.QueryRow(ctx, `SELECT epoch FROM conversations WHERE id = $1`, id).Scan(&cur); err != nil {
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
		return store.HandshakeEntry{}, s.errorf("handshake by hash in conversation %d: empty hash: %w", id, store.ErrNotFound)
	}
	var created int64
	var kind int16
	err := s.b.Read().QueryRow(ctx, `SELECT seq, kind, sender, data, created, epoch FROM entries WHERE conversation_id = $1 AND hash = $2`, id, hash).
		Scan(&h.Seq, &kind, &h.Sender, &h.Data, &created, &h.Epoch)
	if err != nil {
		return store.HandshakeEntry{}, s.errorf("handshake by hash in conversation %d: %w", id, notFound(err))
	}
	h.Kind, h.Created = store.EntryKind(kind), FromMicros(created)
	return h, nil
}

// limitArg converts a store limit to a LIMIT argument: a negative limit
// means no limit.
func limitArg(limit int) int64 {
	if limit < 0 {
		return math.MaxInt64
	}
	return int64(limit)
}

// Entries implements store.Store.
func (s *Store) Entries(ctx context.Context, id store.ConversationID, after uint64, limit int) ([]store.Entry, error) {
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.Entry, error) {
		e := store.Entry{Conversation: id}
		var created int64
		var kind int16
		err := r.Scan(&e.Seq, &kind, &e.Sender, &e.Data, &created)
		e.Kind, e.Created = store.EntryKind(kind), FromMicros(created)
		return e, err
	}, `SELECT seq, kind, sender, data, created FROM entries WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limitArg(limit))
	if err != nil {
		return nil, s.errorf("entries of conversation %d after %d: %v", id, after, err)
	}
	return out, nil
}

// Ack implements store.Store.
func (s *Store) Ack(ctx context.Context, device store.DeviceID, id store.ConversationID, seq uint64) error {
	err := s.b.Write(ctx, func(tx Querier) error { return s.ack(ctx, tx, device, id, seq) })
	if err != nil {
		return s.errorf("ack conversation %d to %d by device %q: %w", id, seq, device, err)
	}
	return nil
}

// AckBatch implements store.Store.
func (s *Store) AckBatch(ctx context.Context, acks []store.Ack) ([]error, error) {
	errs := make([]error, len(acks))
	err := s.b.Write(ctx, func(tx Querier) error {
		for i, a := range acks {
			err := s.ack(ctx, tx, a.Device, a.Conversation, a.Seq)
			if err != nil && !errors.Is(err, store.ErrNotMember) && !errors.Is(err, store.ErrInvalid) {
				return err
			}
			if err != nil {
				err = s.errorf("ack conversation %d to %d by device %q: %w", a.Conversation, a.Seq, a.Device, err)
			}
			errs[i] = err
		}
		return nil
	})
	if err != nil {
		return nil, s.errorf("ack batch of %d: %w", len(acks), err)
	}
	return errs, nil
}

// ack applies one acknowledgement in tx. ErrNotMember and ErrInvalid leave
// tx unchanged (and usable).
func (s *Store) ack(ctx context.Context, tx Querier, device store.DeviceID, id store.ConversationID, seq uint64) error {
	n, err := tx.Exec(ctx, s.q.ackForward, seq, id, device)
	if err != nil || n == 1 {
		return err
	}
	var cursor, head, left uint64
	err = tx.QueryRow(ctx, s.q.ackState, id, device).Scan(&cursor, &head, &left)
	if isNoRows(err) {
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
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.InboxEntry, error) {
		e := store.InboxEntry{Device: device}
		var created int64
		err := r.Scan(&e.Seq, &e.Conversation, &e.Data, &created)
		e.Created = FromMicros(created)
		return e, err
	}, `SELECT seq, conversation_id, data, created FROM inbox WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, device, after, limitArg(limit))
	if err != nil {
		return nil, s.errorf("inbox of device %q after %d: %v", device, after, err)
	}
	return out, nil
}

// AckInbox implements store.Store.
func (s *Store) AckInbox(ctx context.Context, device store.DeviceID, seq uint64) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		_, err := tx.Exec(ctx, `DELETE FROM inbox WHERE device_id = $1 AND seq <= $2`, device, seq)
		return err
	})
	if err != nil {
		return s.errorf("ack inbox of device %q to %d: %w", device, seq, err)
	}
	return nil
}
