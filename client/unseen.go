package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// The per-conversation markers, kept as settings (encrypted like the rest
// of the store). Both hold a local position (Message.Seq) as decimal.
func shownSetting(conv protocol.ConversationID) string { return fmt.Sprintf("shown/%d", conv) }
func readSetting(conv protocol.ConversationID) string  { return fmt.Sprintf(readPrefix+"%d", conv) }

// readPrefix starts the names of the read positions.
const readPrefix = "read/"

// marker reads a position setting (0 when unset).
func marker(tx store.Tx, name string) (int64, error) {
	b, err := tx.Setting(name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return parseMarker(name, b)
}

// parseMarker decodes the value b of the position setting name.
func parseMarker(name string, b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("setting %s: %v", name, err)
	}
	return n, nil
}

// advanceMarker moves a position setting forward to upTo (never back).
func advanceMarker(tx store.Tx, name string, upTo int64) error {
	cur, err := marker(tx, name)
	if err != nil || upTo <= cur {
		return err
	}
	return tx.SetSetting(name, []byte(strconv.FormatInt(upTo, 10)))
}

// MarkShown records that the application showed the messages of a
// conversation up to local position upTo (Message.Seq): Unseen no longer
// returns them. Positions only move forward.
//
// Events are a live stream: those queued when the process stops (Close,
// a crash) are lost, while the messages they report are in the store. An
// application that must show every message once calls MarkShown for each
// message right after showing it, and Unseen when it starts. MarkShown
// never waits for the store: it appends a record to a file of the profile
// (ShownFile) in one system call, so a kill shows a message again only
// when it lands between the application's write of the message and that
// call — at most the one message being shown. Marking before showing
// would instead lose the display of a message killed in between, which is
// worse for a messenger. A crash of the whole machine may also show again
// the messages of its last moments.
func (c *Client) MarkShown(ctx context.Context, conv protocol.ConversationID, upTo int64) error {
	if err := c.shown.advance(conv, upTo); err != nil {
		return fmt.Errorf("client: mark conversation %d shown up to %d: %w", conv, upTo, err)
	}
	return nil
}

// Unseen returns an EventMessage for every message in the store that
// another device sent after the position recorded by MarkShown (every
// message when none was), and an EventSystem for every system line of a
// change that another device made, by conversation and in local history
// order (Message.Seq). It is
// how an application started after a crash or a Close shows the messages
// whose events it never received; call it before Run, since events of
// Run report only messages applied from then on.
func (c *Client) Unseen(ctx context.Context) ([]Event, error) {
	if c.id == nil {
		return nil, fmt.Errorf("client: unseen messages: %w", ErrNotRegistered)
	}
	var out []Event
	err := c.st.View(ctx, func(tx store.Tx) error {
		cvs, err := tx.Conversations()
		if err != nil {
			return err
		}
		for _, cv := range cvs {
			// Profiles of earlier versions kept the position in the
			// store; the larger of the two counts.
			shown, err := marker(tx, shownSetting(cv.ID))
			if err != nil {
				return err
			}
			shown = max(shown, c.shown.position(cv.ID))
			ms, err := tx.Messages(cv.ID, shown, 0)
			if err != nil {
				return err
			}
			for i := range ms {
				m := &ms[i]
				if (m.Sender == c.id.User && m.SenderDevice == c.id.Device) || m.Expired {
					continue
				}
				kind := EventMessage
				if m.System != nil {
					kind = EventSystem
				}
				out = append(out, Event{Kind: kind, Time: m.Received, Conversation: cv.ID,
					Message: viewMessage(m), User: m.Sender, Device: m.SenderDevice})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: unseen messages: %w", err)
	}
	for i := range out {
		setMentionsMe(out[i].Message, c.selfUser())
		out[i].Muted = c.muted.has(out[i].Conversation)
	}
	return out, nil
}

// countsUnread says whether a history entry counts in
// Conversation.Unread: a message of another user that is not deleted
// or expired (system lines are no messages).
func (c *Client) countsUnread(m *store.MessageHead) bool {
	return m.Sender != c.id.User && !m.Deleted && !m.Expired && !m.System
}

// unread counts the unread messages of a conversation whose latest
// history entry is last (nil for an empty history): those after the read
// position, which it reads only when last lies after it.
func (c *Client) unread(tx store.Tx, conv protocol.ConversationID, last *store.Message) (int, error) {
	pos, err := marker(tx, readSetting(conv))
	if err != nil || last == nil || last.Seq <= pos {
		return 0, err
	}
	n := 0
	err = tx.MessageHeadsAfter(map[protocol.ConversationID]int64{conv: pos}, func(m *store.MessageHead) error {
		if c.countsUnread(m) {
			n++
		}
		return nil
	})
	return n, err
}

// unreadCounts counts the unread messages of every conversation of cvs,
// whose latest history entries latest holds: it reads the read positions
// in one query and, in one more, the entries after them of the
// conversations not read to their end. A conversation missing from the
// result has none.
func (c *Client) unreadCounts(tx store.Tx, cvs []store.Conversation, latest map[protocol.ConversationID]*store.Message) (map[protocol.ConversationID]int, error) {
	reads, err := tx.Settings(readPrefix)
	if err != nil {
		return nil, err
	}
	after := map[protocol.ConversationID]int64{}
	for _, cv := range cvs {
		last := latest[cv.ID]
		if last == nil {
			continue
		}
		var pos int64
		name := readSetting(cv.ID)
		if b, ok := reads[name]; ok {
			if pos, err = parseMarker(name, b); err != nil {
				return nil, err
			}
		}
		if last.Seq > pos {
			after[cv.ID] = pos
		}
	}
	counts := map[protocol.ConversationID]int{}
	err = tx.MessageHeadsAfter(after, func(m *store.MessageHead) error {
		if c.countsUnread(m) {
			counts[m.Conversation]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// MarkReadUpTo records that the user read a conversation up to local
// position upTo (Message.Seq), without sending a read receipt: the
// messages up to it no longer count in Conversation.Unread. Positions
// only move forward. MarkRead does this for the newest message and also
// tells the other members.
func (c *Client) MarkReadUpTo(ctx context.Context, conv protocol.ConversationID, upTo int64) error {
	err := c.st.Update(ctx, func(tx store.Tx) error { return advanceMarker(tx, readSetting(conv), upTo) })
	if err != nil {
		return fmt.Errorf("client: mark conversation %d read up to %d: %w", conv, upTo, err)
	}
	return nil
}

// readElsewhere applies the read receipt m that another device of this
// account sent (docs/content.md, "Read positions across devices"): the
// messages it read up to are read here too, so the read position moves
// forward to the message it names, if this device has it. It reports an
// EventConversationChanged so that UIs count the unread messages again.
func readElsewhere(tx store.Tx, conv protocol.ConversationID, m *content.Message, target func(content.MessageID) (*store.Message, error)) ([]Event, error) {
	if m.ReadUpTo.IsZero() {
		return nil, nil
	}
	t, err := target(m.ReadUpTo)
	if err != nil || t == nil {
		return nil, err
	}
	cur, err := marker(tx, readSetting(conv))
	if err != nil || t.Seq <= cur {
		return nil, err
	}
	if err := advanceMarker(tx, readSetting(conv), t.Seq); err != nil {
		return nil, err
	}
	return []Event{{Kind: EventConversationChanged, Conversation: conv}}, nil
}
