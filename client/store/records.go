package store

import (
	"time"

	"github.com/parley-chat/parley/protocol"
)

// Identity is the account of this store: the user's long-term identity
// key and this device's keys and certificate. Private keys are secret.
type Identity struct {
	// Server is the server's base URL.
	Server string `json:"server"`
	// User is the account name.
	User string `json:"user"`
	// Device is this device's id.
	Device protocol.DeviceID `json:"device"`
	// IdentityKey is the Ed25519 identity private key (64 bytes).
	IdentityKey []byte `json:"identity_key"`
	// DeviceScheme is the signature scheme of DeviceKey.
	DeviceScheme protocol.SignatureScheme `json:"device_scheme"`
	// DeviceKey is this device's signature private key.
	DeviceKey []byte `json:"device_key"`
	// Certificate is this device's encoded certificate.
	Certificate []byte `json:"certificate"`
	// Created is when the identity was created.
	Created time.Time `json:"created"`
}

// Device is a device of a user known to this client (this user's own
// other devices and contacts' devices).
type Device struct {
	// ID is the device id.
	ID protocol.DeviceID `json:"id"`
	// User is the user the device belongs to.
	User string `json:"user"`
	// Certificate is the device's encoded certificate.
	Certificate []byte `json:"certificate"`
	// Revoked is set once the device is known to be removed.
	Revoked bool `json:"revoked,omitempty"`
	// Seen is when this client first saw the device.
	Seen time.Time `json:"seen"`
}

// Contact is another user with the identity key this client pinned on
// first use.
type Contact struct {
	// User is the account name.
	User string `json:"user"`
	// IdentityKey is the pinned Ed25519 identity public key.
	IdentityKey []byte `json:"identity_key"`
	// Verified is set when the user compared safety numbers for IdentityKey.
	Verified bool `json:"verified,omitempty"`
	// ChangedKey, when not empty, is a new identity key the server
	// presented that differs from the pinned one: sending to the user is
	// blocked until the UI shows the change and the user accepts it.
	ChangedKey []byte `json:"changed_key,omitempty"`
	// Pinned is when IdentityKey was pinned.
	Pinned time.Time `json:"pinned"`
	// RolledBack marks the row that Open put in place of one that failed
	// the trust check (see [TrustAlarm]): it holds only User, and
	// [Tx.Contact] refuses it with ErrTrustRollback until the contact is
	// written again.
	RolledBack bool `json:"rolled_back,omitempty"`
}

// Conversation is the local view of a conversation.
type Conversation struct {
	// ID is the server's conversation number.
	ID protocol.ConversationID `json:"id"`
	// GroupID is the MLS group id.
	GroupID []byte `json:"group_id"`
	// Direct is set for a 1:1 conversation.
	Direct bool `json:"direct,omitempty"`
	// Name is the conversation name (from encrypted metadata).
	Name string `json:"name,omitempty"`
	// Topic is the conversation topic (from encrypted metadata).
	Topic string `json:"topic,omitempty"`
	// Members are the member user names as last seen in the group.
	Members []string `json:"members,omitempty"`
	// Left is set once this device left or was removed.
	Left bool `json:"left,omitempty"`
	// RemovedBy names the user who removed this device, when Left and
	// its user did not leave by itself.
	RemovedBy string `json:"removed_by,omitempty"`
	// Created is when this client joined or created it.
	Created time.Time `json:"created"`
}

// DeliveryState is the state of an outgoing message.
type DeliveryState uint8

// The delivery states, in order.
const (
	// Received marks a message from another user.
	Received DeliveryState = iota
	// Pending is an outgoing message not yet accepted by the server.
	Pending
	// Sent is an outgoing message the server has stored.
	Sent
	// Read is an outgoing message some member has read.
	Read
	// Failed is an outgoing message given up: the server refused it for
	// good, and it was never delivered.
	Failed
)

// Reaction is one user's reaction to a message.
type Reaction struct {
	// User is who reacted.
	User string `json:"user"`
	// Emoji is the reaction.
	Emoji string `json:"emoji"`
}

// SystemEvent is what a system line of a conversation's history
// records: a change of its membership, name or topic that no message
// carries (see Message.System). The SDK defines the kinds.
type SystemEvent struct {
	// Kind names the change ("added", "removed", "renamed"…).
	Kind string `json:"kind"`
	// Users are the users the change concerns.
	Users []string `json:"users,omitempty"`
	// Devices are the devices it concerns, when it adds or removes
	// devices of a user who stays a member.
	Devices []protocol.DeviceID `json:"devices,omitempty"`
	// Value is the new name or topic, Previous the one it replaced.
	Value    string `json:"value,omitempty"`
	Previous string `json:"previous,omitempty"`
}

// Message is a message in a conversation's history, or a system line.
type Message struct {
	// Conversation is the conversation.
	Conversation protocol.ConversationID `json:"conversation"`
	// Seq is the message's position in the local history, assigned by
	// [Tx.AddMessage]: 1, 2, 3… per conversation.
	Seq int64 `json:"seq"`
	// ID is the message id from its content.
	ID [16]byte `json:"id"`
	// Sender and SenderDevice name the author.
	Sender       string            `json:"sender"`
	SenderDevice protocol.DeviceID `json:"sender_device"`
	// Sent is the sender's claimed time; Received is this client's.
	Sent     time.Time `json:"sent"`
	Received time.Time `json:"received"`
	// ServerSeq is the entry's seq in the server log, 0 while pending.
	ServerSeq uint64 `json:"server_seq,omitempty"`
	// Content is the encoded content as received (see client/content).
	Content []byte `json:"content"`
	// Text is the current text, after edits.
	Text string `json:"text,omitempty"`
	// Edited is when the text was last edited; zero if never.
	Edited time.Time `json:"edited,omitzero"`
	// Deleted is set when the sender deleted the message; Content and
	// Text are then cleared.
	Deleted bool `json:"deleted,omitempty"`
	// Reactions are the current reactions.
	Reactions []Reaction `json:"reactions,omitempty"`
	// ReadBy are the users who sent a read receipt covering the message.
	ReadBy []string `json:"read_by,omitempty"`
	// State is the delivery state.
	State DeliveryState `json:"state"`
	// Expires is when the message expires under its conversation's
	// disappearing-message timer; zero if it never does.
	Expires time.Time `json:"expires,omitzero"`
	// Expired is set once it expired: Content, Text, Reactions, ReadBy
	// and Edited are then cleared, and the record is a tombstone kept
	// so that the entry is not stored again when replayed.
	Expired bool `json:"expired,omitempty"`
	// System, when set, makes the record a system line: a change that
	// Sender (on SenderDevice) made, written by the SDK itself. It has no
	// Content, and it takes a position (Seq) in the history like a
	// message.
	System *SystemEvent `json:"system,omitempty"`
}

// Outgoing is a queued outgoing message. The SDK enqueues it, with the
// MLS ciphertext once encrypted, in the same transaction as the MLS state
// that encrypted it, and removes it once the server acknowledged it; after
// a crash it sends the same ciphertext again.
type Outgoing struct {
	// ID is the queue position, assigned by [Tx.Enqueue].
	ID int64 `json:"id"`
	// Conversation is the destination.
	Conversation protocol.ConversationID `json:"conversation"`
	// MessageID is the id in Content.
	MessageID [16]byte `json:"message_id"`
	// Content is the encoded content.
	Content []byte `json:"content"`
	// Ciphertext is the MLS message, empty until encrypted.
	Ciphertext []byte `json:"ciphertext,omitempty"`
	// Created is when it was queued.
	Created time.Time `json:"created"`
	// Attempts counts send attempts.
	Attempts int `json:"attempts,omitempty"`
}

// MessageHead is the part of a history entry (a Message) that says who
// wrote it and what it is, without its content: what counting entries
// needs, read at a fraction of the cost of the whole Message.
type MessageHead struct {
	Conversation protocol.ConversationID
	Seq          int64
	Sender       string
	SenderDevice protocol.DeviceID
	Deleted      bool
	// Expired is set for an expired message's tombstone.
	Expired bool
	// System is set for a system line.
	System bool
}

// MessageText is the part of a history entry (a Message) that a search
// index needs: who wrote it, when, and its text and content.
type MessageText struct {
	Conversation protocol.ConversationID
	Seq          int64
	Sender       string    `json:"sender"`
	Sent         time.Time `json:"sent"`
	Text         string    `json:"text"`
	Deleted      bool      `json:"deleted"`
	Content      []byte    `json:"content"`
	// System is set for a system line.
	System bool `json:"-"`
}

// Erase clears what an expired message holds (see Message.Expired).
func (m *Message) Erase() {
	m.Expired = true
	m.Content, m.Text, m.Reactions, m.ReadBy, m.Edited = nil, "", nil, nil, time.Time{}
}
