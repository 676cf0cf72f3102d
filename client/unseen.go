package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/parley-chat/parley/client/sqlitestore"
	"github.com/parley-chat/parley/protocol"
)

// The per-conversation markers, kept as settings (encrypted like the rest
// of the store). Both hold a local position (Message.Seq) as decimal.
func shownSetting(conv protocol.ConversationID) string { return fmt.Sprintf("shown/%d", conv) }
func readSetting(conv protocol.ConversationID) string  { return fmt.Sprintf("read/%d", conv) }

// marker reads a position setting (0 when unset).
func marker(tx *sqlitestore.Tx, name string) (int64, error) {
	b, err := tx.Setting(name)
	if errors.Is(err, sqlitestore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("setting %s: %v", name, err)
	}
	return n, nil
}

// advanceMarker moves a position setting forward to upTo (never back).
func advanceMarker(tx *sqlitestore.Tx, name string, upTo int64) error {
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
	err := c.st.View(ctx, func(tx *sqlitestore.Tx) error {
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
				if m.Sender == c.id.User && m.SenderDevice == c.id.Device {
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
	return out, nil
}

// unread counts the messages of other users after the read position of a
// conversation that are not deleted (system lines are no messages).
func (c *Client) unread(tx *sqlitestore.Tx, conv protocol.ConversationID) (int, error) {
	pos, err := marker(tx, readSetting(conv))
	if err != nil {
		return 0, err
	}
	ms, err := tx.Messages(conv, pos, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range ms {
		if ms[i].Sender != c.id.User && !ms[i].Deleted && ms[i].System == nil {
			n++
		}
	}
	return n, nil
}

// MarkReadUpTo records that the user read a conversation up to local
// position upTo (Message.Seq), without sending a read receipt: the
// messages up to it no longer count in Conversation.Unread. Positions
// only move forward. MarkRead does this for the newest message and also
// tells the other members.
func (c *Client) MarkReadUpTo(ctx context.Context, conv protocol.ConversationID, upTo int64) error {
	err := c.st.Update(ctx, func(tx *sqlitestore.Tx) error { return advanceMarker(tx, readSetting(conv), upTo) })
	if err != nil {
		return fmt.Errorf("client: mark conversation %d read up to %d: %w", conv, upTo, err)
	}
	return nil
}
