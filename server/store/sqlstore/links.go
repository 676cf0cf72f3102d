package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// Link mailboxes (store.Links): a row of link_mailboxes and its messages
// in link_messages, deleted together.

// CreateLinkMailbox implements store.Store.
func (s *Store) CreateLinkMailbox(ctx context.Context, m store.LinkMailbox, first store.LinkMessage) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		if m.ID == "" || len(m.TokenHash) == 0 {
			return store.ErrInvalid
		}
		// An expired mailbox of the same id that Prune did not remove yet
		// gives its id up.
		if _, err := tx.Exec(ctx, `DELETE FROM link_messages WHERE mailbox_id = $1 AND EXISTS (SELECT 1 FROM link_mailboxes WHERE id = $1 AND expires <= $2)`, m.ID, Micros(m.Created)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM link_mailboxes WHERE id = $1 AND expires <= $2`, m.ID, Micros(m.Created)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO link_mailboxes (id, token_hash, user_id, created, expires) VALUES ($1, $2, 0, $3, $4)`,
			m.ID, m.TokenHash, Micros(m.Created), Micros(m.Expires))
		if err = s.constraint(err); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO link_messages (mailbox_id, seq, side, data, created) VALUES ($1, 1, $2, $3, $4)`,
			m.ID, store.LinkNew, NonNil(first.Data), Micros(first.Created))
		return err
	})
	if err != nil {
		return s.errorf("create link mailbox %q: %w", m.ID, err)
	}
	return nil
}

// LinkMailbox implements store.Store.
func (s *Store) LinkMailbox(ctx context.Context, id string, now time.Time) (store.LinkMailbox, error) {
	m := store.LinkMailbox{ID: id}
	var created, expires int64
	err := s.b.Read().QueryRow(ctx, `SELECT token_hash, user_id, created, expires FROM link_mailboxes WHERE id = $1 AND expires > $2`,
		id, Micros(now)).Scan(&m.TokenHash, &m.User, &created, &expires)
	if err != nil {
		return store.LinkMailbox{}, s.errorf("link mailbox %q: %w", id, notFound(err))
	}
	m.Created, m.Expires = FromMicros(created), FromMicros(expires)
	return m, nil
}

// AppendLinkMessage implements store.Store.
func (s *Store) AppendLinkMessage(ctx context.Context, id string, user store.UserID, m store.LinkMessage, limit int) (uint64, error) {
	var seq uint64
	err := s.b.Write(ctx, func(tx Querier) error {
		if m.From == store.LinkExisting && user == 0 {
			return store.ErrInvalid
		}
		claim := store.UserID(0)
		if m.From == store.LinkExisting {
			claim = user
		}
		// The update claims an unclaimed mailbox and locks the row, so
		// that concurrent appends take their seqs one after the other.
		var owner store.UserID
		err := tx.QueryRow(ctx, `UPDATE link_mailboxes SET user_id = CASE WHEN user_id = 0 THEN $2 ELSE user_id END
			WHERE id = $1 AND expires > $3 RETURNING user_id`, id, claim, Micros(m.Created)).Scan(&owner)
		if err != nil {
			return notFound(err)
		}
		if m.From == store.LinkExisting && owner != user {
			return store.ErrNotFound
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*), CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM link_messages WHERE mailbox_id = $1`, id).Scan(&n, &seq); err != nil {
			return err
		}
		if n >= limit {
			return store.ErrQuotaExceeded
		}
		seq++
		_, err = tx.Exec(ctx, `INSERT INTO link_messages (mailbox_id, seq, side, data, created) VALUES ($1, $2, $3, $4, $5)`,
			id, seq, m.From, NonNil(m.Data), Micros(m.Created))
		return s.constraint(err)
	})
	if err != nil {
		return 0, s.errorf("append to link mailbox %q: %w", id, err)
	}
	return seq, nil
}

// LinkMessages implements store.Store.
func (s *Store) LinkMessages(ctx context.Context, id string, after uint64) ([]store.LinkMessage, error) {
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.LinkMessage, error) {
		var m store.LinkMessage
		var created int64
		err := r.Scan(&m.Seq, &m.From, &m.Data, &created)
		m.Created = FromMicros(created)
		return m, err
	}, `SELECT seq, side, data, created FROM link_messages WHERE mailbox_id = $1 AND seq > $2 ORDER BY seq`, id, after)
	if err != nil {
		return nil, s.errorf("link mailbox %q messages: %w", id, err)
	}
	return out, nil
}

// DeleteLinkMailbox implements store.Store.
func (s *Store) DeleteLinkMailbox(ctx context.Context, id string) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		if _, err := tx.Exec(ctx, `DELETE FROM link_messages WHERE mailbox_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM link_mailboxes WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return s.errorf("delete link mailbox %q: %w", id, err)
	}
	return nil
}
