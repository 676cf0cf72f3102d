// Package store defines the Parley client's local store: the records the
// SDK keeps (the account's identity and device keys, devices, contacts
// with their pinned identity keys, conversations, the MLS group state of
// each conversation, message history, sync cursors, the queue of
// outgoing messages, the private keys of published KeyPackages, and
// settings) and the [Store] and [Tx] interfaces through which it keeps
// them. Two packages implement it: client/sqlitestore, one SQLite file
// for native clients, and client/kvstore, records held in memory and
// persisted as sealed values in a key-value backend (IndexedDB in the
// browser). Package client/store/storetest is the conformance suite
// both pass.
//
// # What every implementation guarantees
//
// Values are encrypted at rest under a store key, and names that would
// reveal who the user talks to are not stored in clear. [Store.Update]
// commits every change made by its function at once, or none of them,
// also if the process dies at any point; the commit is durable when
// Update returns nil. The SDK therefore writes the new MLS group state
// (or ratchet state) together with the messages it decrypted and the
// advanced cursor in one Update, and the encrypted outgoing message into
// the outbox in the same Update as the MLS state that encrypted it, so
// that a crash neither loses a message nor makes MLS reuse a key and
// nonce.
//
// MLS group state is kept in two parts, following the rule of the mls
// package: the full state ([Tx.PutGroupState]), written after every
// merge and proposal, and the ratchet state ([Tx.PutRatchetState]),
// small, written after every application message in the same Update as
// the message and the cursor. The current state is the full state with
// the ratchet state applied; writing a full state deletes the ratchet
// state.
//
// Contacts are protected against a rollback of their rows by someone
// who holds the stored data but not the key (see [TrustAlarm]).
//
// A Store is safe for concurrent use; transactions are serialized. The
// function given to Update or View must use only its [Tx], never the
// Store, and must not keep the Tx after returning.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// Errors callers may branch on (with errors.Is).
var (
	// ErrWrongKey means the passphrase or key does not open the store.
	ErrWrongKey = errors.New("wrong passphrase or key file")
	// ErrCorrupt means a sealed value fails to open: the stored data was
	// damaged or tampered with (for example values were swapped).
	ErrCorrupt = errors.New("sealed value corrupt or moved")
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTrustRollback means a contact's record failed the trust check
	// made when the store was opened: it was deleted, replaced by another
	// copy, or the contacts were rolled back as a whole (see
	// [TrustAlarm]). [Tx.Contact] returns it, instead of the record or
	// ErrNotFound, until the contact is written again with
	// [Tx.PutContact]: the caller must not pin a key on first use for the
	// user without the user's explicit consent.
	ErrTrustRollback = errors.New("trust row deleted or rolled back")
)

// TrustAlarm is what opening the store found wrong with the contacts'
// records (see [Store.TrustAlarm]).
type TrustAlarm struct {
	// Users are the contacts whose records were deleted or replaced by
	// another copy, sorted. Their records now hold only the user name and
	// RolledBack.
	Users []string
	// Lost is set when the contacts were rolled back as a whole, or the
	// value that authenticates them is missing or does not open:
	// contacts pinned after the copy that was put back are forgotten and
	// cannot be named. Every contact not refused already is then in
	// Users, and for every user without a record [Tx.Contact] returns
	// ErrTrustRollback instead of ErrNotFound, from now on: no key is
	// pinned on first use in this store any more.
	Lost bool
}

// KDFParams are the Argon2id parameters that derive a store key from a
// passphrase. They are chosen when the store is created and kept with it.
type KDFParams struct {
	// Time is the number of passes.
	Time uint32
	// MemoryKiB is the memory in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultKDFParams returns the parameters used for new stores unless the
// caller says otherwise: time 3, 64 MiB, 2 threads.
func DefaultKDFParams() KDFParams {
	return KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 2}
}

// Validate bounds parameters read from storage, so that tampered
// parameters cannot make opening run for hours or exhaust memory.
func (p KDFParams) Validate() error {
	if p.Time < 1 || p.Time > 64 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 4<<20 || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters out of range: time %d, memory %d KiB, threads %d", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// InboxCursor is the conversation number under which [Tx.Cursor] and
// [Tx.SetCursor] keep the cursor of the device's Welcome inbox.
const InboxCursor protocol.ConversationID = 0

// Store is an open local store. Close it when done.
type Store interface {
	// Update runs fn in a write transaction and commits it if fn returns
	// nil; otherwise (or if fn panics) it rolls back, leaving the store
	// as it was. The commit is durable when Update returns nil.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a transaction that may only read.
	View(ctx context.Context, fn func(Tx) error) error
	// TrustAlarm returns what opening the store found wrong with the
	// contacts' records, or nil.
	TrustAlarm() *TrustAlarm
	// Close releases the store.
	Close() error
}

// Tx is a transaction of a [Store]: the records' reads and writes. It is
// valid only during the function given to Update or View; a write in a
// View fails.
type Tx interface {
	// Identity returns the account's identity, or ErrNotFound before
	// [Tx.PutIdentity].
	Identity() (*Identity, error)
	// PutIdentity stores the account's identity, replacing any.
	PutIdentity(id *Identity) error
	// PutDevice stores a device, replacing the one with the same id.
	PutDevice(d *Device) error
	// Device returns the device with the given id, or ErrNotFound.
	Device(id protocol.DeviceID) (*Device, error)
	// Devices returns the known devices of user ("" for all), by id.
	Devices(user string) ([]Device, error)
	// DeleteDevice removes a device; removing an unknown one is not an error.
	DeleteDevice(id protocol.DeviceID) error
	// PutContact stores a contact, replacing the one with the same user name
	// (a row refused with ErrTrustRollback among them), and records the row
	// in the trust root (see [TrustAlarm]).
	PutContact(c *Contact) error
	// Contact returns the contact with the given user name, or ErrNotFound.
	// It returns an error wrapping ErrTrustRollback instead when Open found
	// the user's row deleted or replaced by another copy, and, once the trust
	// rows were found rolled back as a whole, for every user without a row.
	Contact(user string) (*Contact, error)
	// Contacts returns every contact, in no particular order, rows refused
	// with ErrTrustRollback among them (RolledBack set).
	Contacts() ([]Contact, error)
	// PutConversation stores a conversation, replacing the one with its id.
	PutConversation(c *Conversation) error
	// Conversation returns a conversation, or ErrNotFound.
	Conversation(id protocol.ConversationID) (*Conversation, error)
	// Conversations returns every conversation, by id.
	Conversations() ([]Conversation, error)
	// DeleteConversation removes a conversation with its group and ratchet
	// state, history, cursor and queued messages.
	DeleteConversation(id protocol.ConversationID) error
	// PutGroupState stores the opaque full MLS group state of a conversation
	// (mls.Group.MarshalBinary), replacing the previous one, and deletes the
	// conversation's ratchet state: a full state is complete by itself.
	PutGroupState(conv protocol.ConversationID, state []byte) error
	// PutRatchetState stores the opaque MLS ratchet state of a conversation
	// (mls.Group.RatchetState), replacing the previous one. It is written
	// after application messages instead of the full state, and applies on
	// top of the full state from [Tx.GroupState] (mls.Group.ApplyRatchetState)
	// until the next [Tx.PutGroupState] deletes it.
	PutRatchetState(conv protocol.ConversationID, state []byte) error
	// RatchetState returns the MLS ratchet state of a conversation written
	// since its last full group state, or ErrNotFound if there is none.
	RatchetState(conv protocol.ConversationID) ([]byte, error)
	// GroupState returns the MLS group state of a conversation, or ErrNotFound.
	GroupState(conv protocol.ConversationID) ([]byte, error)
	// AddMessage appends a message to its conversation's history and sets
	// m.Seq. If the conversation already holds a message with the same id,
	// it changes nothing and returns false: replaying an entry after a crash
	// never shows a message twice.
	AddMessage(m *Message) (added bool, err error)
	// ExpiredBy returns the conversation and Seq of every message whose
	// expiry is at or before now, in order of expiry.
	ExpiredBy(now time.Time) ([][2]int64, error)
	// NextExpiry returns when the next message expires; ok is false when
	// none will.
	NextExpiry() (at time.Time, ok bool, err error)
	// ExpireMessage erases message conv/seq (Message.Erase) and forgets its
	// expiry. It returns the tombstone, or nil when the message was already
	// gone or expired.
	ExpireMessage(conv protocol.ConversationID, seq int64) (*Message, error)
	// UpdateMessage replaces the stored message m.Conversation/m.Seq with m
	// (for edits, deletions, reactions, receipts and delivery state). The id
	// must not change.
	UpdateMessage(m *Message) error
	// MessageByID returns the message with the given id in a conversation,
	// or ErrNotFound.
	MessageByID(conv protocol.ConversationID, id [16]byte) (*Message, error)
	// Messages returns up to limit messages of a conversation with Seq above
	// after, in order. A limit of 0 or less means no limit.
	Messages(conv protocol.ConversationID, after int64, limit int) ([]Message, error)
	// LastMessages returns the last n messages of a conversation, in order.
	LastMessages(conv protocol.ConversationID, n int) ([]Message, error)
	// LatestMessages returns the last entry (the highest Seq) of every
	// conversation's history, by conversation, in one query: a conversation
	// whose history is empty has none.
	LatestMessages() ([]Message, error)
	// MessageHeadsAfter calls each with the head of every entry of the
	// conversations in after whose Seq is above the position after gives
	// it, reading them in one query, in no particular order (the rows are
	// not sorted: this is for counting). The MessageHead is valid only
	// during the call.
	MessageHeadsAfter(after map[protocol.ConversationID]int64, each func(*MessageHead) error) error
	// Cursor returns the last server seq processed in a conversation (or
	// [InboxCursor]); 0 if none was set.
	Cursor(conv protocol.ConversationID) (uint64, error)
	// SetCursor sets the cursor of a conversation (or [InboxCursor]).
	SetCursor(conv protocol.ConversationID, seq uint64) error
	// Cursors returns every conversation cursor (not the inbox), by
	// conversation.
	Cursors() ([]protocol.Cursor, error)
	// Enqueue adds a message to the outgoing queue and sets o.ID.
	Enqueue(o *Outgoing) error
	// UpdateOutgoing replaces the queued message o.ID (for example to add the
	// ciphertext or count an attempt).
	UpdateOutgoing(o *Outgoing) error
	// Outbox returns the queued messages of a conversation (0 for all), in
	// queue order.
	Outbox(conv protocol.ConversationID) ([]Outgoing, error)
	// Dequeue removes a message from the outgoing queue; removing an unknown
	// one is not an error.
	Dequeue(id int64) error
	// PutKeyPackage stores the private keys of a published KeyPackage under
	// its reference.
	PutKeyPackage(ref, private []byte) error
	// KeyPackage returns the private keys stored under ref, or ErrNotFound.
	KeyPackage(ref []byte) ([]byte, error)
	// DeleteKeyPackage removes the private keys under ref (once used, for
	// forward secrecy); removing an unknown one is not an error.
	DeleteKeyPackage(ref []byte) error
	// KeyPackageCount returns the number of stored KeyPackage private keys.
	KeyPackageCount() (int, error)
	// Setting returns the value of a setting, or ErrNotFound.
	Setting(name string) ([]byte, error)
	// Settings returns the settings whose names start with prefix, keyed by
	// name, in one query.
	Settings(prefix string) (map[string][]byte, error)
	// SetSetting sets a setting.
	SetSetting(name string, value []byte) error
	// MessageTexts calls each with the text of every entry of a
	// conversation's history, in order of Seq, reading only what
	// MessageText holds. The MessageText is valid only during the call.
	MessageTexts(conv protocol.ConversationID, each func(*MessageText) error) error
}
