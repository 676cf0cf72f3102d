package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Typing indicators are ephemeral MLS application messages: a content
// message of kind typing, encrypted in the conversation's group like any
// other and sent over the WebSocket in an "ephemeral" frame, which the
// server relays to the other connected members and never stores
// (docs/protocol.md). Each one takes a generation of the sender's hash
// ratchet, so it is written to the store before it leaves, like a
// message; a receiver that never gets it (offline, dropped by the rate
// limit) skips that generation when the next message arrives, which the
// MLS secret tree allows up to mls.DefaultMaxForward generations ahead,
// keeping the skipped keys within mls.DefaultOutOfOrderWindow (see
// docs/content.md, "typing").

// SendTyping tells the other members of conv that this user started
// (typing true) or stopped typing. It is best effort: it returns nil and
// sends nothing when Config.DisableTyping is set, while the client is not
// connected (Run), or when the conversation cannot be sent to now (this
// device left it, it is unsafe, or its state is stale); the server drops
// it for members that are not connected and beyond a rate of about one
// per second per device, so callers send typing=true at most every few
// seconds while the user types and typing=false when they stop, but not
// when they send: receivers clear the indicator on a message of its
// sender.
// It never reaches the history, this device's or the others'.
func (c *Client) SendTyping(ctx context.Context, conv protocol.ConversationID, typing bool) error {
	if c.cfg.DisableTyping {
		return nil
	}
	if c.id == nil {
		return fmt.Errorf("client: send typing: %w", ErrNotRegistered)
	}
	c.wsMu.Lock()
	w := c.ws
	c.wsMu.Unlock()
	if w == nil {
		return nil // not connected: nobody would learn it in time
	}
	c.mu.Lock()
	msg, err := c.encryptTypingLocked(ctx, conv, typing)
	c.mu.Unlock()
	if err != nil || msg == nil {
		return err
	}
	if err := w.write(ctx, &protocol.EphemeralFrame{Conversation: conv, Message: msg}); err != nil {
		c.log.Debug("typing not sent", "conversation", conv, "err", err)
	}
	return nil
}

// encryptTypingLocked encrypts a typing message and stores the ratchet
// state that made it; nil when the conversation cannot be sent to now.
// c.mu is held.
func (c *Client) encryptTypingLocked(ctx context.Context, conv protocol.ConversationID, typing bool) ([]byte, error) {
	if err := c.checkSendable(ctx, conv); err != nil || c.stale[conv] {
		if errors.Is(err, ErrUnknownConversation) {
			return nil, fmt.Errorf("client: send typing to conversation %d: %w", conv, err)
		}
		return nil, nil
	}
	m := content.New(content.KindTyping, c.cfg.Now())
	m.Remove = !typing
	if c.postRefused(conv, m, c.id.User) {
		return nil, nil // only those who may post type in a channel
	}
	data, err := content.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("client: send typing to conversation %d: %w", conv, err)
	}
	g := c.groups[conv]
	msg, err := g.Encrypt(data, nil)
	if err != nil {
		return nil, fmt.Errorf("client: send typing to conversation %d: %w", conv, err)
	}
	if len(msg) > protocol.MaxEphemeralBytes {
		// Cannot happen with a typing message; the key is spent anyway.
		c.log.Warn("typing message too large", "conversation", conv, "bytes", len(msg))
	}
	put, err := groupWriter(g, conv, messageWrite())
	if err == nil {
		err = c.st.Update(ctx, func(tx store.Tx) error { return put(tx) })
	}
	if err != nil {
		c.reloadGroupLocked(ctx, conv)
		return nil, fmt.Errorf("client: send typing to conversation %d: %w", conv, err)
	}
	if len(msg) > protocol.MaxEphemeralBytes {
		return nil, nil
	}
	return msg, nil
}

// receiveEphemeral decrypts an ephemeral message and reports a typing
// indicator of another user as EventTyping. Anything else is dropped:
// ephemeral messages are best effort, and a member's broken one must not
// disturb the connection.
func (c *Client) receiveEphemeral(ctx context.Context, f *protocol.EphemeralFrame) {
	if c.cfg.DisableTyping {
		return
	}
	conv := f.Conversation
	c.mu.Lock()
	ev, err := c.decryptEphemeralLocked(ctx, conv, f.Message)
	c.mu.Unlock()
	if err != nil {
		c.log.Debug("ephemeral message dropped", "conversation", conv, "device", f.Device, "err", err)
		return
	}
	if ev != nil {
		c.ev.push(*ev)
	}
}

// decryptEphemeralLocked processes an ephemeral message in conv's group
// and stores the ratchet state it changed. c.mu is held.
func (c *Client) decryptEphemeralLocked(ctx context.Context, conv protocol.ConversationID, data []byte) (*Event, error) {
	g := c.groups[conv]
	_, blocked := c.blocked[conv]
	if g == nil || blocked || c.unusable[conv] != nil || c.unsafe[conv] != nil {
		return nil, errors.New("conversation not readable now")
	}
	p, err := g.Process(data)
	if err != nil {
		return nil, err // another epoch, a replay, a forgery
	}
	if p.Kind != mls.KindApplication {
		c.reloadGroupLocked(ctx, conv) // drop what processing it cached
		return nil, errors.New("not an application message")
	}
	// Only a typing message keeps the key it used: anything else (a
	// message of the log that the server passed off as ephemeral, to
	// make its entry look like a key used twice) leaves the state as
	// it was.
	m, err := content.Decode(p.ApplicationData)
	if err == nil && m.Kind != content.KindTyping {
		err = fmt.Errorf("content kind %s in an ephemeral message", m.Kind)
	}
	var cred *Credential
	if err == nil {
		cred, err = c.memberCredential(g, p.Sender.Leaf)
	}
	if err != nil {
		c.reloadGroupLocked(ctx, conv)
		return nil, err
	}
	put, err := groupWriter(g, conv, messageWrite())
	if err == nil {
		err = c.st.Update(ctx, func(tx store.Tx) error { return put(tx) })
	}
	if err != nil {
		c.reloadGroupLocked(ctx, conv)
		return nil, err
	}
	if cred.User() == c.id.User || c.postRefused(conv, m, cred.User()) {
		return nil, nil // this user's other device, or a channel's reader
	}
	return &Event{Kind: EventTyping, Conversation: conv, User: cred.User(), Device: cred.Device(), Typing: !m.Remove}, nil
}
