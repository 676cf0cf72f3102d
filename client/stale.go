package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// A profile copied and restored later holds MLS state older than what
// this device already did: its sending ratchet would use message keys a
// second time, which breaks what MLS promises and makes the other members
// refuse the messages. The client finds out from the conversation's log:
// every message this device posted is there, and the store remembers the
// newest position the server gave one of its posts (postedSetting) or
// still holds the ciphertext in its outbox (a post whose answer was lost).
// An entry of this device beyond both is one its store does not know, so
// the state is stale: before it encrypts anything more in that
// conversation, the device catches up with the log and rejoins by an
// external commit that replaces its own leaf (resyncLocked), which gives
// it fresh keys. To be sure nothing is encrypted from stale state, the
// first message of each conversation after Open is encrypted only once
// the conversation was caught up with the server (ensureCurrentLocked);
// while the server cannot be reached, it waits in the outbox unencrypted.

// postedSetting names the setting holding the newest log position the
// server gave a post of this device in conv.
func postedSetting(conv protocol.ConversationID) string { return fmt.Sprintf("posted/%d", conv) }

// ownEntryKnown says whether the store knows an entry this device sent:
// the server returned its position, or its ciphertext is queued (then it
// leaves the outbox: it was stored, and is not to be sent twice; m is its
// history entry, if any).
func ownEntryKnown(tx store.Tx, e protocol.Entry) (m *Message, known bool, err error) {
	queue, err := tx.Outbox(e.Conversation)
	if err != nil {
		return nil, false, err
	}
	for i := range queue {
		if len(queue[i].Ciphertext) > 0 && bytes.Equal(queue[i].Ciphertext, e.Data) {
			m, err := markPosted(tx, &queue[i], e.Seq)
			return m, true, err
		}
	}
	posted, err := marker(tx, postedSetting(e.Conversation))
	if err != nil {
		return nil, false, err
	}
	return nil, e.Seq <= uint64(max(posted, 0)), nil
}

// ensureCurrentLocked catches a conversation up with the server once per
// Open before this device encrypts in it, and rejoins it with fresh keys
// when the catching up showed that the store is older than the log. It
// reports whether it caught up (the conversation may have changed).
// c.mu is held.
func (c *Client) ensureCurrentLocked(ctx context.Context, conv protocol.ConversationID) (caughtUp bool, err error) {
	if c.current[conv] && !c.stale[conv] {
		return false, nil
	}
	if err := c.catchUpLocked(ctx, conv); err != nil {
		return true, err
	}
	if c.stale[conv] {
		return true, fmt.Errorf("conversation %d: %w", conv, ErrStaleState)
	}
	return true, nil
}

// afterCatchUpLocked runs when a conversation has been caught up with
// the server's log: it is current, and a stale state found on the way is
// replaced by a rejoin. c.mu is held.
func (c *Client) afterCatchUpLocked(ctx context.Context, conv protocol.ConversationID) error {
	c.current[conv] = true
	if !c.stale[conv] {
		return nil
	}
	err := c.resyncLocked(ctx, conv)
	if errors.Is(err, ErrServerUnreachable) || ctx.Err() != nil {
		return err // still stale: tried again by the next catch-up
	}
	ev := Event{Kind: EventStateRestored, Conversation: conv, Time: c.cfg.Now()}
	if err != nil {
		// Still stale: nothing is encrypted in the conversation until a
		// rejoin succeeds (ensureCurrentLocked); other conversations go
		// on.
		err = fmt.Errorf("client: rejoin conversation %d after finding its state older than the server's: %w", conv, err)
		c.log.Warn("restored profile: rejoin failed", "conversation", conv, "err", err)
		ev.Err, ev.Error = err, err.Error()
		c.ev.push(ev)
		return nil
	}
	delete(c.stale, conv)
	c.log.Warn("restored profile: rejoined conversation with fresh keys", "conversation", conv)
	c.ev.push(ev)
	return nil
}
