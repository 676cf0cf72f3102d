package client

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley/client/attach"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// DeliveryState is the state of a message: Received for other users'
// messages; Pending, Sent, Read for this user's.
type DeliveryState = store.DeliveryState

// The delivery states.
const (
	Received = store.Received
	Pending  = store.Pending
	Sent     = store.Sent
	Read     = store.Read
	Failed   = store.Failed
)

// Reaction is one user's reaction to a message.
type Reaction = store.Reaction

// Attachment describes the file of an attachment message (its key stays
// in the store; download it with Client.Download).
type Attachment struct {
	// ID is the server's attachment id (hex SHA-256 of the ciphertext).
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
	FileName  string `json:"file_name,omitempty"`
}

// Message is a message of a conversation's history, with edits,
// deletions, reactions and read receipts applied.
type Message struct {
	Conversation protocol.ConversationID `json:"conversation"`
	// Seq is the position in the local history: 1, 2, 3… in the order
	// the server log gave the messages (this device's own in sending
	// order).
	Seq int64 `json:"seq"`
	// ID is the message id that replies, reactions, edits refer to.
	ID           content.MessageID `json:"id"`
	Sender       string            `json:"sender"`
	SenderDevice protocol.DeviceID `json:"sender_device"`
	// Sent is the sender's claimed time; Received this device's.
	Sent     time.Time `json:"sent"`
	Received time.Time `json:"received"`
	// ServerSeq is the entry's seq in the server log (0 while pending).
	ServerSeq  uint64            `json:"server_seq,omitempty"`
	Kind       content.Kind      `json:"kind"`
	Text       string            `json:"text,omitempty"`
	ReplyTo    content.MessageID `json:"reply_to,omitzero"`
	Attachment *Attachment       `json:"attachment,omitempty"`
	Edited     time.Time         `json:"edited,omitzero"`
	Deleted    bool              `json:"deleted,omitempty"`
	// Expires is when the message expires under the conversation's
	// disappearing-message timer (zero: never); Expired says it did,
	// and the message is a tombstone without content.
	Expires   time.Time     `json:"expires,omitzero"`
	Expired   bool          `json:"expired,omitempty"`
	Reactions []Reaction    `json:"reactions,omitempty"`
	ReadBy    []string      `json:"read_by,omitempty"`
	State     DeliveryState `json:"state"`
	// System, when set, makes this a system line of the history (see
	// History), not a message: Sender and SenderDevice made the change
	// it records. System lines carry no content.
	System *System `json:"system,omitempty"`
	// Mentions are the users the sender mentions, sorted: the content's
	// mentions field, as the sender's client set it from "@name" words
	// (never derived from Text on receipt). MentionsMe says that they
	// include this user.
	Mentions   []string `json:"mentions,omitempty"`
	MentionsMe bool     `json:"mentions_me,omitempty"`
}

// viewMessage converts a stored message.
func viewMessage(sm *store.Message) *Message {
	m := &Message{
		Conversation: sm.Conversation, Seq: sm.Seq, ID: content.MessageID(sm.ID),
		Sender: sm.Sender, SenderDevice: sm.SenderDevice, Sent: sm.Sent, Received: sm.Received,
		ServerSeq: sm.ServerSeq, Text: sm.Text, Edited: sm.Edited, Deleted: sm.Deleted,
		Expires: sm.Expires, Expired: sm.Expired, Reactions: sm.Reactions, ReadBy: sm.ReadBy, State: sm.State, System: viewSystem(sm.System),
	}
	if m.System != nil {
		return m
	}
	if cm, err := content.Decode(sm.Content); err == nil {
		m.Kind, m.ReplyTo, m.Mentions = cm.Kind, cm.ReplyTo, cm.Mentions
		if a := cm.Attachment; a != nil {
			m.Attachment = &Attachment{ID: a.BlobID, Size: a.Size, MediaType: a.MediaType, FileName: a.FileName}
		}
	}
	return m
}

// applyContent applies a decrypted (or own, just encrypted) content
// message to the history of conv, inside tx, and returns the events to
// report once tx committed.
func (c *Client) applyContent(tx store.Tx, conv protocol.ConversationID, m *content.Message, user string, device protocol.DeviceID, serverSeq uint64, serverTime time.Time) ([]Event, error) {
	own := user == c.id.User
	self := own && device == c.id.Device
	if !self && c.postRefused(conv, m, user) {
		// Only admins post in a channel: a member's client that posts
		// anyway is not shown, nor counted unread (channel.go).
		if post, _ := postKind(m.Kind); post {
			c.log.Warn("post ignored: only admins post in this channel", "conversation", conv, "user", user, "device", device, "seq", serverSeq, "kind", m.Kind)
		}
		return nil, nil
	}
	// target finds the message that m refers to; a system line is no
	// message (its id is this device's own, or that of the metadata
	// message it records), so nothing refers to it.
	target := func(id content.MessageID) (*store.Message, error) {
		t, err := tx.MessageByID(conv, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.System != nil) {
			return nil, nil
		}
		return t, err
	}
	switch m.Kind {
	case content.KindText, content.KindAttachment:
		data, err := content.Encode(m)
		if err != nil {
			return nil, err
		}
		sm := &store.Message{
			Conversation: conv, ID: m.ID, Sender: user, SenderDevice: device,
			Sent: m.Sent, Received: c.cfg.Now(), ServerSeq: serverSeq, Content: data, Text: m.Text,
		}
		switch {
		case self:
			sm.State = Pending
		case own:
			sm.State = Sent
		}
		if timer := c.timerLocked(conv); timer > 0 {
			sm.Expires = expiryOf(m.Sent, sm.Received, timer)
			if !sm.Expires.After(sm.Received) {
				sm.Erase() // expired on arrival: only the tombstone is kept
			}
		}
		added, err := tx.AddMessage(sm)
		if err != nil || !added {
			return nil, err
		}
		if self || sm.Expired {
			return nil, nil
		}
		return []Event{{Kind: EventMessage, Conversation: conv, Message: viewMessage(sm), User: user, Device: device}}, nil
	case content.KindReaction:
		t, err := target(m.Target)
		if err != nil || t == nil || t.Expired {
			return nil, err
		}
		t.Reactions = slices.DeleteFunc(t.Reactions, func(r Reaction) bool { return r.User == user && r.Emoji == m.Emoji })
		if !m.Remove {
			t.Reactions = append(t.Reactions, Reaction{User: user, Emoji: m.Emoji})
		}
		if err := tx.UpdateMessage(t); err != nil {
			return nil, err
		}
		return []Event{{Kind: EventReaction, Conversation: conv, Message: viewMessage(t), User: user, Device: device}}, nil
	case content.KindEdit, content.KindDelete:
		t, err := target(m.Target)
		if err != nil || t == nil {
			return nil, err
		}
		if t.Sender != user || t.Deleted || t.Expired {
			return nil, nil // only the author edits or deletes
		}
		kind := EventEdited
		if m.Kind == content.KindEdit {
			t.Text, t.Edited = m.Text, m.Sent
		} else {
			t.Deleted, t.Text, t.Content, t.Reactions = true, "", nil, nil
			kind = EventDeleted
		}
		if err := tx.UpdateMessage(t); err != nil {
			return nil, err
		}
		return []Event{{Kind: kind, Conversation: conv, Message: viewMessage(t), User: user, Device: device}}, nil
	case content.KindReadReceipt:
		if own {
			if self {
				return nil, nil
			}
			return readElsewhere(tx, conv, m, target)
		}
		var evs []Event
		mark := func(t *store.Message) error {
			if t.Sender != c.id.User || t.State == Failed || t.System != nil || t.Expired || slices.Contains(t.ReadBy, user) {
				return nil
			}
			t.ReadBy = append(t.ReadBy, user)
			t.State = Read
			if err := tx.UpdateMessage(t); err != nil {
				return err
			}
			evs = append(evs, Event{Kind: EventRead, Conversation: conv, Message: viewMessage(t), User: user, Device: device})
			return nil
		}
		if !m.ReadUpTo.IsZero() {
			t, err := target(m.ReadUpTo)
			if err != nil {
				return nil, err
			}
			if t != nil {
				all, err := tx.Messages(conv, 0, 0)
				if err != nil {
					return nil, err
				}
				for i := range all {
					if all[i].Seq <= t.Seq {
						if err := mark(&all[i]); err != nil {
							return nil, err
						}
					}
				}
			}
		}
		for _, id := range m.ReadIDs {
			t, err := target(id)
			if err != nil {
				return nil, err
			}
			if t != nil {
				if err := mark(t); err != nil {
					return nil, err
				}
			}
		}
		return evs, nil
	case content.KindGroupMetadata:
		cv, err := tx.Conversation(conv)
		if err != nil {
			return nil, err
		}
		old := *cv
		ignored, err := c.dropForbiddenMetadata(tx, conv, m, &old, user, device, serverSeq)
		if err != nil {
			return nil, err
		}
		if m.Name != nil {
			cv.Name = *m.Name
		}
		if m.Topic != nil {
			cv.Topic = *m.Topic
		}
		if m.Direct {
			cv.Direct = true
		}
		if err := tx.PutConversation(cv); err != nil {
			return nil, err
		}
		state := Received
		switch {
		case self:
			state = Pending
		case own:
			state = Sent
		}
		lines, err := putMetadataLines(tx, conv, m, &old, user, device, serverSeq, c.cfg.Now(), state)
		if err != nil {
			return nil, err
		}
		return append(append([]Event{{Kind: EventConversationChanged, Conversation: conv, User: user, Device: device}}, ignored...), lines...), nil
	}
	return nil, nil // a kind this version does not know
}

// SendOptions are the options of Send and SendFile.
type SendOptions struct {
	// ReplyTo is the message answered, or zero.
	ReplyTo content.MessageID
	// Caption is the text of an attachment (SendFile only).
	Caption string
	// MediaType overrides the media type guessed from the file name.
	MediaType string
	// Mentions, when not nil, are the users the message mentions,
	// instead of the members that its "@name" words name: for a
	// UI that lets the user pick them. Users that are not members of the
	// conversation are left out; an empty slice mentions no one.
	Mentions []string
}

// Send sends a text message. It is encrypted and stored (history and
// outbox) before the server is contacted, and the returned message is in
// the history: if the server could not be reached it stays Pending in the
// outbox (the error wraps ErrServerUnreachable) and is sent by the next
// Run or Sync; if it can never be delivered it becomes Failed (the error
// wraps ErrNotDelivered).
//
// Words "@name" that name a member of the conversation become mentions
// (Message.Mentions): those members are notified even where they muted
// the conversation.
func (c *Client) Send(ctx context.Context, conv protocol.ConversationID, text string, opts SendOptions) (*Message, error) {
	m := content.New(content.KindText, c.cfg.Now())
	m.Text, m.ReplyTo = text, opts.ReplyTo
	m.Mentions = c.resolveMentions(ctx, conv, text, opts.Mentions)
	return c.sendContent(ctx, conv, m, "send")
}

// React adds (or with remove, removes) this user's reaction to a message.
func (c *Client) React(ctx context.Context, conv protocol.ConversationID, target content.MessageID, emoji string, remove bool) error {
	m := content.New(content.KindReaction, c.cfg.Now())
	m.Target, m.Emoji, m.Remove = target, emoji, remove
	_, err := c.sendContent(ctx, conv, m, "react")
	return err
}

// Edit replaces the text of one of this user's messages.
func (c *Client) Edit(ctx context.Context, conv protocol.ConversationID, target content.MessageID, text string) error {
	if err := c.checkOwnMessage(ctx, conv, target); err != nil {
		return fmt.Errorf("client: edit message %s: %w", target, err)
	}
	m := content.New(content.KindEdit, c.cfg.Now())
	m.Target, m.Text = target, text
	_, err := c.sendContent(ctx, conv, m, "edit")
	return err
}

// Delete deletes one of this user's messages for everyone.
func (c *Client) Delete(ctx context.Context, conv protocol.ConversationID, target content.MessageID) error {
	if err := c.checkOwnMessage(ctx, conv, target); err != nil {
		return fmt.Errorf("client: delete message %s: %w", target, err)
	}
	m := content.New(content.KindDelete, c.cfg.Now())
	m.Target = target
	_, err := c.sendContent(ctx, conv, m, "delete")
	return err
}

// checkOwnMessage checks that target is a message of this user.
func (c *Client) checkOwnMessage(ctx context.Context, conv protocol.ConversationID, target content.MessageID) error {
	return c.st.View(ctx, func(tx store.Tx) error {
		t, err := tx.MessageByID(conv, target)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownMessage
		}
		if err != nil {
			return err
		}
		if t.System != nil {
			return ErrUnknownMessage
		}
		if t.Sender != c.id.User {
			return fmt.Errorf("message of %s, not of this user", t.Sender)
		}
		return nil
	})
}

// SetName and SetTopic change the conversation's name or topic, for every
// member, inside MLS.
func (c *Client) SetName(ctx context.Context, conv protocol.ConversationID, name string) error {
	m := content.New(content.KindGroupMetadata, c.cfg.Now())
	m.Name = &name
	if err := c.checkMetadataAllowed(ctx, conv, m); err != nil {
		return fmt.Errorf("client: set name in conversation %d: %w", conv, err)
	}
	_, err := c.sendContent(ctx, conv, m, "set name")
	return err
}

// SetTopic changes the conversation's topic (see SetName).
func (c *Client) SetTopic(ctx context.Context, conv protocol.ConversationID, topic string) error {
	m := content.New(content.KindGroupMetadata, c.cfg.Now())
	m.Topic = &topic
	if err := c.checkMetadataAllowed(ctx, conv, m); err != nil {
		return fmt.Errorf("client: set topic in conversation %d: %w", conv, err)
	}
	_, err := c.sendContent(ctx, conv, m, "set topic")
	return err
}

// MarkRead records that the user read the conversation (Conversation.Unread
// drops to zero) and sends a read receipt for every message up to the
// newest one from another user. The read state and the queued receipt
// are written in one transaction.
func (c *Client) MarkRead(ctx context.Context, conv protocol.ConversationID) error {
	if c.id == nil {
		return ErrNotRegistered
	}
	var newest int64
	var last *store.Message
	err := c.st.View(ctx, func(tx store.Tx) error {
		// The newest message is most often the one to acknowledge: the
		// 200 before it are read only when it is this user's own or a
		// system line.
		for _, n := range []int{1, 200} {
			all, err := tx.LastMessages(conv, n)
			if err != nil || len(all) == 0 {
				return err
			}
			newest = max(newest, all[len(all)-1].Seq)
			for i := len(all) - 1; i >= 0; i-- {
				if all[i].Sender != c.id.User && all[i].System == nil {
					last = &all[i]
					return nil
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("client: mark conversation %d read: %w", conv, err)
	}
	if newest == 0 {
		return nil
	}
	advance := func(tx store.Tx) error { return advanceMarker(tx, readSetting(conv), newest) }
	if last != nil {
		m := content.New(content.KindReadReceipt, c.cfg.Now())
		m.ReadUpTo = content.MessageID(last.ID)
		c.mu.Lock()
		// In a channel, only those who may post send read receipts.
		if !c.postRefused(conv, m, c.id.User) {
			_, err := c.sendLockedWith(ctx, conv, m, advance)
			c.mu.Unlock()
			if err == nil {
				return nil
			}
			// The read state is this device's own: it stands even when
			// no receipt could be queued (advance writes nothing if the
			// receipt's transaction already did).
			err = fmt.Errorf("client: mark read in conversation %d: %w", conv, err)
			if uerr := c.st.Update(ctx, advance); uerr != nil {
				return errors.Join(err, fmt.Errorf("client: mark conversation %d read: %w", conv, uerr))
			}
			return err
		}
		c.mu.Unlock()
	}
	if err := c.st.Update(ctx, advance); err != nil {
		return fmt.Errorf("client: mark conversation %d read: %w", conv, err)
	}
	return nil
}

// sendContent sends one content message and names the operation in errors.
func (c *Client) sendContent(ctx context.Context, conv protocol.ConversationID, m *content.Message, op string) (*Message, error) {
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	c.mu.Lock()
	msg, err := c.sendLocked(ctx, conv, m)
	c.mu.Unlock()
	if err != nil {
		return msg, fmt.Errorf("client: %s in conversation %d: %w", op, conv, err)
	}
	return msg, nil
}

// sendLocked encrypts m, writes the new ratchet state (not the full group
// state, see groupWriter), the message's effect on the history and the
// outgoing ciphertext in one transaction, then posts the ciphertext.
// c.mu is held.
func (c *Client) sendLocked(ctx context.Context, conv protocol.ConversationID, m *content.Message) (*Message, error) {
	return c.sendLockedWith(ctx, conv, m, nil)
}

// sendLockedWith is sendLocked with the writes of also (if not nil) in
// the same transaction. c.mu is held.
func (c *Client) sendLockedWith(ctx context.Context, conv protocol.ConversationID, m *content.Message, also func(store.Tx) error) (*Message, error) {
	if err := c.checkSendable(ctx, conv); err != nil {
		return nil, err
	}
	if err := c.checkPostLocked(conv, m); err != nil {
		return nil, err
	}
	data, err := content.Encode(m)
	if err != nil {
		return nil, err
	}
	out := &store.Outgoing{Conversation: conv, MessageID: m.ID, Content: data, Created: c.cfg.Now()}
	// Encrypted only from state known to be current (stale.go); while
	// the server cannot be reached, the message waits unencrypted.
	caughtUp, offline := c.ensureCurrentLocked(ctx, conv)
	if offline != nil && !errors.Is(offline, ErrServerUnreachable) && !errors.Is(offline, ErrCertificateMismatch) {
		return nil, offline
	}
	put := func(store.Tx) error { return nil }
	if offline == nil {
		if caughtUp { // the conversation may have changed meanwhile
			if err := c.checkSendable(ctx, conv); err != nil {
				return nil, err
			}
		}
		g := c.groups[conv]
		if out.Ciphertext, err = g.Encrypt(data, nil); err != nil {
			return nil, err
		}
		if put, err = groupWriter(g, conv, messageWrite()); err != nil {
			c.reloadGroupLocked(ctx, conv)
			return nil, err
		}
	}
	var events []Event
	var due bool
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := put(tx); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		evs, err := c.applyContent(tx, conv, m, c.id.User, c.id.Device, 0, time.Time{})
		if err != nil {
			return err
		}
		events = evs
		if err := tx.Enqueue(out); err != nil {
			return err
		}
		due, err = c.noteSentLocked(tx, conv)
		return err
	})
	if err != nil {
		c.reloadGroupLocked(ctx, conv)
		return nil, err
	}
	c.wakeExpiry()
	for _, ev := range events {
		c.ev.push(ev)
	}
	if (m.Kind == content.KindText || m.Kind == content.KindAttachment) && c.idx.active() {
		c.idx.update(c.storedMessage(ctx, conv, m.ID))
	}
	if offline != nil {
		return c.storedMessage(ctx, conv, m.ID), offline
	}
	msg, err := c.postLocked(ctx, out)
	if due && err == nil {
		if err := c.selfUpdateLocked(ctx, conv); err != nil {
			c.log.Warn("self-update", "conversation", conv, "err", err)
		}
	}
	return msg, err
}

// maxReencrypt bounds how often one post encrypts a refused message again
// before giving it up.
const maxReencrypt = 2

// postLocked posts a queued message; once the server stored it, it leaves
// the outbox and its history entry becomes Sent. It returns the message
// as the history holds it, also on failure:
//
//   - while the server cannot be reached (or refuses for a while: rate
//     limits, faults), the message stays Pending in the outbox and the
//     next flush posts the same ciphertext again;
//   - when the server refuses the ciphertext (its epoch is too old: the
//     conversation moved on while the message waited), the conversation
//     is caught up and the message encrypted again in the current epoch,
//     at most maxReencrypt times;
//   - when it cannot be delivered at all (this device is no longer a
//     member, the conversation is unsafe, the server keeps refusing), it
//     leaves the outbox, becomes Failed and is reported (giveUpLocked);
//     the error wraps ErrNotDelivered.
//
// c.mu is held.
func (c *Client) postLocked(ctx context.Context, out *store.Outgoing) (*Message, error) {
	conv := out.Conversation
	for try := 0; ; try++ {
		if err := c.unsafeError(conv); err != nil {
			return c.giveUpLocked(ctx, out, err)
		}
		var res protocol.SendResponse
		err := c.call(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/messages", conv), true, protocol.SendRequest{ClientID: fmt.Sprint(out.ID), Message: out.Ciphertext}, &res)
		if err == nil {
			return c.postedLocked(ctx, out, res.Seq)
		}
		if _, gone := isCode(err, protocol.CodeNotMember); gone {
			return c.giveUpLocked(ctx, out, err)
		}
		if _, bad := isCode(err, protocol.CodeBadMessage); !bad {
			return c.storedMessage(ctx, conv, out.MessageID), err
		}
		if try >= maxReencrypt {
			return c.giveUpLocked(ctx, out, err)
		}
		// Refused ciphertext: learn the conversation's current epoch,
		// then encrypt again in it.
		if cerr := c.catchUpLocked(ctx, conv); cerr != nil {
			return c.storedMessage(ctx, conv, out.MessageID), fmt.Errorf("%w (catching up: %w)", err, cerr)
		}
		if err := c.reencryptLocked(ctx, out); err != nil {
			if errors.Is(err, ErrNotMember) || errors.Is(err, ErrConversationUnsafe) {
				return c.giveUpLocked(ctx, out, err)
			}
			return c.storedMessage(ctx, conv, out.MessageID), err
		}
	}
}

// encryptQueuedLocked encrypts a message queued without ciphertext once
// its conversation is current; one that can no longer be sent is given
// up. c.mu is held.
func (c *Client) encryptQueuedLocked(ctx context.Context, out *store.Outgoing) error {
	if _, err := c.ensureCurrentLocked(ctx, out.Conversation); err != nil {
		return err
	}
	err := c.reencryptLocked(ctx, out)
	if errors.Is(err, ErrNotMember) || errors.Is(err, ErrConversationUnsafe) {
		_, err = c.giveUpLocked(ctx, out, err)
	}
	return err
}

// reencryptLocked encrypts a queued message again in the conversation's
// current epoch and stores the new ciphertext with the ratchet state that
// made it. c.mu is held.
func (c *Client) reencryptLocked(ctx context.Context, out *store.Outgoing) error {
	conv := out.Conversation
	if err := c.unsafeError(conv); err != nil {
		return err
	}
	g := c.groups[conv]
	if g == nil || !g.Active() {
		return fmt.Errorf("this device left the conversation: %w", ErrNotMember)
	}
	ct, err := g.Encrypt(out.Content, nil)
	if err != nil {
		return err
	}
	put, err := groupWriter(g, conv, messageWrite())
	if err != nil {
		c.reloadGroupLocked(ctx, conv)
		return err
	}
	out.Ciphertext, out.Attempts = ct, out.Attempts+1
	if err := c.st.Update(ctx, func(tx store.Tx) error {
		if err := put(tx); err != nil {
			return err
		}
		return tx.UpdateOutgoing(out)
	}); err != nil {
		c.reloadGroupLocked(ctx, conv)
		return err
	}
	return nil
}

// postedLocked records that the server stored a queued message at seq:
// it leaves the outbox and its history entry becomes Sent.
func (c *Client) postedLocked(ctx context.Context, out *store.Outgoing, seq uint64) (*Message, error) {
	var msg *Message
	err := c.st.Update(ctx, func(tx store.Tx) error {
		var err error
		msg, err = markPosted(tx, out, seq)
		return err
	})
	if err != nil {
		return nil, err
	}
	if msg != nil {
		c.ev.push(Event{Kind: EventDelivered, Conversation: out.Conversation, Message: msg})
	}
	return msg, nil
}

// markPosted dequeues out, stored by the server at seq, and marks its
// history entry Sent; it returns the entry (nil if the history has none:
// a receipt, reaction or edit).
func markPosted(tx store.Tx, out *store.Outgoing, seq uint64) (*Message, error) {
	if err := tx.Dequeue(out.ID); err != nil {
		return nil, err
	}
	if err := advanceMarker(tx, postedSetting(out.Conversation), int64(seq)); err != nil {
		return nil, err
	}
	sm, err := tx.MessageByID(out.Conversation, out.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if sm.State == Pending || sm.State == Failed {
		sm.State = Sent
	}
	sm.ServerSeq = seq
	return viewMessage(sm), tx.UpdateMessage(sm)
}

// giveUpLocked takes a queued message that cannot be delivered out of the
// outbox, marks its history entry Failed and reports it in an EventError.
// The returned error wraps ErrNotDelivered and why.
func (c *Client) giveUpLocked(ctx context.Context, out *store.Outgoing, why error) (*Message, error) {
	conv := out.Conversation
	id := content.MessageID(out.MessageID)
	var msg *Message
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Dequeue(out.ID); err != nil {
			return err
		}
		sm, err := tx.MessageByID(conv, out.MessageID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		sm.State = Failed
		msg = viewMessage(sm)
		return tx.UpdateMessage(sm)
	})
	if err != nil {
		return nil, fmt.Errorf("client: give up message %s of conversation %d: %w", id, conv, err)
	}
	failed := fmt.Errorf("message %s of conversation %d: %w: %w", id, conv, ErrNotDelivered, why)
	c.log.Warn("queued message given up", "conversation", conv, "message", id, "err", why)
	c.ev.push(Event{Kind: EventError, Conversation: conv, Message: msg, Err: failed})
	return msg, failed
}

// storedMessage returns a message of the history, or nil.
func (c *Client) storedMessage(ctx context.Context, conv protocol.ConversationID, id [16]byte) *Message {
	var msg *Message
	c.st.View(ctx, func(tx store.Tx) error {
		if sm, err := tx.MessageByID(conv, id); err == nil {
			msg = viewMessage(sm)
		}
		return nil
	})
	return msg
}

// flushOutbox posts every queued message (after a crash or an outage), in
// queue order. It stops at the first message the server cannot be reached
// for (it returns that error); messages given up are reported by
// postLocked and do not stop it.
func (c *Client) flushOutbox(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var queue []store.Outgoing
	if err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		queue, err = tx.Outbox(0)
		return err
	}); err != nil {
		return err
	}
	for i := range queue {
		if len(queue[i].Ciphertext) == 0 {
			// Queued before the conversation was known current.
			if err := c.encryptQueuedLocked(ctx, &queue[i]); err != nil {
				if errors.Is(err, ErrServerUnreachable) || errors.Is(err, ErrCertificateMismatch) || ctx.Err() != nil {
					return err
				}
				c.log.Warn("queued message not encrypted", "conversation", queue[i].Conversation, "err", err)
				continue
			}
		}
		if _, err := c.postLocked(ctx, &queue[i]); err != nil {
			if errors.Is(err, ErrServerUnreachable) || errors.Is(err, ErrCertificateMismatch) || ctx.Err() != nil {
				return err
			}
			if !errors.Is(err, ErrNotDelivered) {
				c.log.Warn("queued message not sent", "conversation", queue[i].Conversation, "err", err)
			}
		}
	}
	return nil
}

// Messages returns the messages of a conversation (History returns
// them with the system lines): with last > 0 the last messages, otherwise
// every message after local position after (Message.Seq, the order in
// which this device stored them). They are returned in the order of the
// server's log, which every member device shares; this device's messages
// that the server has not stored yet come last.
func (c *Client) Messages(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*Message, error) {
	out, err := c.history(ctx, conv, after, last, false)
	if err != nil {
		return nil, fmt.Errorf("client: messages of conversation %d: %w", conv, err)
	}
	return out, nil
}

// sortByLog sorts a history in the order of the server's log, the same
// on every device (stable: entries of one log position, such as the
// system lines of one commit, keep their local order); this device's
// messages that the server has not stored yet come last.
func sortByLog(ms []*Message) {
	order := func(m *Message) uint64 {
		if m.ServerSeq == 0 {
			return math.MaxUint64
		}
		return m.ServerSeq
	}
	slices.SortStableFunc(ms, func(a, b *Message) int { return cmp.Compare(order(a), order(b)) })
}

// SendFile encrypts the file at path with a fresh key, uploads the
// ciphertext as an opaque blob and sends the key and hash in an attachment
// message. In a conversation with a disappearing-message timer the upload
// asks the server to delete the blob once the timer has passed (no later
// than the server's retention; see attachmentTTL). The ciphertext waits
// for the upload in a temporary file in the profile directory.
func (c *Client) SendFile(ctx context.Context, conv protocol.ConversationID, path string, opts SendOptions) (*Message, error) {
	op := fmt.Sprintf("client: send file %s to conversation %d", path, conv)
	ttl, err := c.attachmentTTLFor(ctx, conv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(c.cfg.ProfileDir, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	return c.sendAttachment(ctx, conv, op, src, fileSpool{tmp}, filepath.Base(path), ttl, opts)
}

// SendData is SendFile for a file that is not on a file system (the web
// client's): it reads the file from r and names it name, a file name
// without directories. The ciphertext waits for the upload in memory,
// so r should be no larger than memory allows.
func (c *Client) SendData(ctx context.Context, conv protocol.ConversationID, r io.Reader, name string, opts SendOptions) (*Message, error) {
	op := fmt.Sprintf("client: send file %q to conversation %d", name, conv)
	ttl, err := c.attachmentTTLFor(ctx, conv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return c.sendAttachment(ctx, conv, op, r, &memSpool{}, name, ttl, opts)
}

// attachmentTTLFor checks that this device can send to conv and returns
// the lifetime of an attachment sent there (attachmentTTL).
func (c *Client) attachmentTTLFor(ctx context.Context, conv protocol.ConversationID) (time.Duration, error) {
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	c.mu.Lock()
	err := c.checkSendable(ctx, conv)
	timer := c.timerLocked(conv)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.attachmentTTL(ctx, timer)
}

// spool holds the ciphertext of an attachment between its encryption and
// its upload.
type spool interface {
	io.Writer
	// rewind returns the ciphertext written, from its start.
	rewind() (io.Reader, error)
}

// fileSpool is a spool in a temporary file.
type fileSpool struct{ f *os.File }

func (s fileSpool) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s fileSpool) rewind() (io.Reader, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

// memSpool is a spool in memory.
type memSpool struct{ b bytes.Buffer }

func (s *memSpool) Write(p []byte) (int, error) { return s.b.Write(p) }

func (s *memSpool) rewind() (io.Reader, error) { return bytes.NewReader(s.b.Bytes()), nil }

// sendAttachment encrypts the file read from src into sp, uploads the
// ciphertext with the lifetime ttl and sends the attachment message of
// the file, named name. op names the operation in errors.
func (c *Client) sendAttachment(ctx context.Context, conv protocol.ConversationID, op string, src io.Reader, sp spool, name string, ttl time.Duration, opts SendOptions) (*Message, error) {
	plain := &countingReader{r: src}
	key, hash, size, err := attach.Encrypt(sp, plain)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt: %v", op, err)
	}
	body, err := sp.rewind()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	info, err := c.uploadAttachment(ctx, body, ttl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if info.ID != hash.String() || info.Size != size {
		return nil, fmt.Errorf("%s: server stored %s (%d bytes), expected %s (%d bytes)", op, info.ID, info.Size, hash, size)
	}
	mt := opts.MediaType
	if mt == "" {
		mt = mime.TypeByExtension(filepath.Ext(name))
	}
	m := content.New(content.KindAttachment, c.cfg.Now())
	m.Text, m.ReplyTo = opts.Caption, opts.ReplyTo
	m.Mentions = c.resolveMentions(ctx, conv, opts.Caption, opts.Mentions)
	m.Attachment = &content.Attachment{BlobID: info.ID, Size: plain.n, MediaType: mt, FileName: name, Key: key, Hash: hash}
	return c.sendContent(ctx, conv, m, "send file "+name)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// uploadAttachment uploads an encrypted attachment with the lifetime ttl
// (0: none).
func (c *Client) uploadAttachment(ctx context.Context, body io.Reader, ttl time.Duration) (protocol.AttachmentInfo, error) {
	path := "/v1/attachments"
	if ttl > 0 {
		path += "?ttl_seconds=" + strconv.FormatInt(int64(ttl/time.Second), 10)
	}
	resp, err := c.request(ctx, "POST", path, true, io.NopCloser(body), "application/octet-stream")
	if err != nil {
		return protocol.AttachmentInfo{}, err
	}
	var info protocol.AttachmentInfo
	if err := decodeResponse(resp, &info); err != nil {
		var se *ServerError
		if ttl > 0 && errors.As(err, &se) && se.Err.Code == protocol.CodeBadRequest {
			// The server's retention may have shrunk below the
			// lifetime: ask for it again next time.
			c.retention.Store(nil)
		}
		return protocol.AttachmentInfo{}, fmt.Errorf("upload: %w", err)
	}
	return info, nil
}

// findAttachment looks up an attachment's key and hash in the history.
func (c *Client) findAttachment(ctx context.Context, id string) (*content.Attachment, error) {
	var found *content.Attachment
	err := c.st.View(ctx, func(tx store.Tx) error {
		convs, err := tx.Conversations()
		if err != nil {
			return err
		}
		for _, cv := range convs {
			ms, err := tx.Messages(cv.ID, 0, 0)
			if err != nil {
				return err
			}
			for _, sm := range ms {
				if cm, err := content.Decode(sm.Content); err == nil && cm.Attachment != nil && cm.Attachment.BlobID == id {
					found = cm.Attachment
					return nil
				}
			}
		}
		return ErrUnknownAttachment
	})
	return found, err
}

// DownloadOptions are the options of DownloadWith.
type DownloadOptions struct {
	// Force replaces an existing file at the destination. Without it a
	// download never overwrites anything: a destination file that exists
	// is an error wrapping fs.ErrExist, and a file name of the sender's
	// that is taken gets a suffix ("name (1).ext").
	Force bool
}

// Download is DownloadWith without options: it never overwrites a file.
func (c *Client) Download(ctx context.Context, attachmentID, dst string) (string, error) {
	return c.DownloadWith(ctx, attachmentID, dst, DownloadOptions{})
}

// DownloadData fetches the attachment with the given id (from a message
// of the history), checks the hash of the ciphertext and writes the
// decrypted file to w: DownloadWith for a caller without a file system
// (the web client). On error w may hold a prefix of the file, which the
// caller must discard. It returns the attachment's description (its file
// name is the sender's, not made safe).
func (c *Client) DownloadData(ctx context.Context, attachmentID string, w io.Writer) (*Attachment, error) {
	op := fmt.Sprintf("client: download attachment %s", attachmentID)
	a, err := c.findAttachment(ctx, attachmentID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.fetchAttachment(ctx, attachmentID, a, w); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &Attachment{ID: a.BlobID, Size: a.Size, MediaType: a.MediaType, FileName: a.FileName}, nil
}

// fetchAttachment downloads the ciphertext of attachment a, whose id is
// id, and decrypts it to w (see attach.Decrypt).
func (c *Client) fetchAttachment(ctx context.Context, id string, a *content.Attachment, w io.Writer) error {
	resp, err := c.request(ctx, "GET", "/v1/attachments/"+id, true, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != statusOK {
		return decodeResponse(resp, nil)
	}
	return attach.Decrypt(w, resp.Body, a.Key, a.Hash)
}

// DownloadWith fetches the attachment with the given id (from a message
// of the history), checks the hash of the ciphertext, decrypts it and
// writes the file to dst. If dst is a directory, the file goes into it
// under the sender's file name made safe (SafeFileName), with a suffix
// if that name is taken (unless opts.Force). Nothing is left at dst if
// any check fails. It returns the path written.
func (c *Client) DownloadWith(ctx context.Context, attachmentID, dst string, opts DownloadOptions) (string, error) {
	op := fmt.Sprintf("client: download attachment %s", attachmentID)
	a, err := c.findAttachment(ctx, attachmentID)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	intoDir := false
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		intoDir = true
		dst = filepath.Join(dst, SafeFileName(a.FileName, "attachment-"+attachmentID[:min(12, len(attachmentID))]))
	}
	if !opts.Force && !intoDir {
		if _, err := os.Lstat(dst); err == nil {
			return "", fmt.Errorf("%s: %s: %w", op, dst, fs.ErrExist)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return "", fmt.Errorf("%s: %v", op, err)
	}
	defer os.Remove(tmp.Name())
	if err := c.fetchAttachment(ctx, attachmentID, a, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("%s: %v", op, err)
	}
	if opts.Force {
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return "", fmt.Errorf("%s: %v", op, err)
		}
		return dst, nil
	}
	path, err := placeNew(tmp.Name(), dst, intoDir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	return path, nil
}

// maxNameSuffix bounds the " (N)" suffixes tried for a taken file name.
const maxNameSuffix = 1000

// placeNew gives the file tmp the name dst without replacing anything: a
// hard link fails if the name exists, where a rename would replace it.
// With suffix, a taken name becomes "name (1).ext", "name (2).ext"…
func placeNew(tmp, dst string, suffix bool) (string, error) {
	dir, base := filepath.Split(dst)
	ext := filepath.Ext(base)
	if ext == base {
		ext = ""
	}
	stem := strings.TrimSuffix(base, ext)
	for n := 0; n <= maxNameSuffix; n++ {
		path := dst
		if n > 0 {
			path = filepath.Join(dir, fmt.Sprintf("%s (%d)%s", stem, n, ext))
		}
		err := os.Link(tmp, path)
		if err == nil {
			return path, nil
		}
		if !errors.Is(err, fs.ErrExist) || !suffix {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: %w (and %d other names)", dst, fs.ErrExist, maxNameSuffix)
}

// maxFileName bounds the length in bytes of a file name from a sender.
const maxFileName = 120

// SafeFileName makes a file name chosen by another user safe to create in
// a directory: its last path element only, with path separators, control,
// format (bidirectional overrides, zero-width) and other invisible
// characters replaced or removed, no leading dots or spaces (no hidden
// file, no "..") nor trailing ones, at most maxFileName bytes with the
// extension kept. An empty result becomes fallback.
func SafeFileName(name, fallback string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError:
		case r == '/' || r == '\\' || r == ':':
			b.WriteRune('_')
		case unicode.IsSpace(r):
			b.WriteRune(' ')
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r):
		default:
			b.WriteRune(r)
		}
	}
	name = strings.TrimLeft(b.String(), ". ")
	name = strings.TrimRight(name, ". ")
	if len(name) > maxFileName {
		ext := filepath.Ext(name)
		if len(ext) > 16 || ext == name {
			ext = ""
		}
		stem := strings.TrimSuffix(name, ext)
		cut := maxFileName - len(ext)
		for cut > 0 && !utf8.RuneStart(stem[cut]) {
			cut--
		}
		name = strings.TrimRight(stem[:cut], ". ") + ext
	}
	if name == "" {
		return fallback
	}
	return name
}
