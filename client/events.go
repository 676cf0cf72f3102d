package client

import (
	"sync"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of events.
const (
	// EventMessage: a new message (text or attachment) in Message,
	// received or sent by another device of this user.
	EventMessage EventKind = iota + 1
	// EventEdited: Message was edited.
	EventEdited
	// EventDeleted: Message was deleted.
	EventDeleted
	// EventReaction: the reactions of Message changed (User reacted).
	EventReaction
	// EventRead: User read this user's messages up to Message.
	EventRead
	// EventDelivered: this device's Message was stored by the server.
	EventDelivered
	// EventMemberJoined / EventMemberLeft: Device of User joined or left
	// Conversation.
	EventMemberJoined
	EventMemberLeft
	// EventConversationJoined: this device joined Conversation.
	EventConversationJoined
	// EventConversationLeft: this device left or was removed from
	// Conversation.
	EventConversationLeft
	// EventConversationChanged: the name or topic of Conversation changed.
	EventConversationChanged
	// EventIdentityChanged: the server presents a new identity key for
	// User, or the key pinned for User is lost (Err is a
	// *TrustRollbackError); sending to conversations with User is
	// blocked until Client.AcknowledgeIdentity. UIs must show this
	// loudly.
	EventIdentityChanged
	// EventDeviceRejected: a device (Device of User) whose certificate is
	// not signed by User's identity key, or that User revoked, was
	// refused (Err).
	EventDeviceRejected
	// EventConnection: the connection state changed to Connection.
	EventConnection
	// EventError: processing failed (Err), for example an entry that
	// could not be decrypted.
	EventError
	// EventOverflow: the reader of Events fell Config.EventBuffer events
	// behind, and Dropped events were dropped. Everything they reported
	// is in the store: reload Conversations, Messages and Members (errors
	// and rejected devices among them were logged). Connection is the
	// connection state at the last dropped event. See Client.Events.
	EventOverflow
	// EventConversationUnsafe: the server accepted a membership change
	// of Conversation that this device rejected (docs/protocol.md,
	// "Membership rules"): User's Device would have been added. This
	// device stays in the epoch before the change, so the joiner reads
	// nothing it sends, and it sends nothing more in the conversation
	// (sending fails with ErrConversationUnsafe); Err is an *UnsafeError
	// that says so. The conversation's Unsafe field keeps the alarm
	// across restarts. UIs must show this loudly and offer
	// Client.Recreate. The same event, with an Alarm marked
	// Unrecoverable, reports a conversation this device cannot follow
	// any more (see EventBadCommit); User's Device sent the commit.
	EventConversationUnsafe
	// EventStateRestored: the server holds messages this device sent in
	// Conversation that its store does not know: the profile was
	// restored from an older copy. Sending with that state would use
	// message keys a second time, so the device rejoined the
	// conversation with fresh keys (Err says how that went). UIs should
	// tell the user that copying a profile is not a backup.
	EventStateRestored
	// EventSystem: a system line was added to the history of
	// Conversation (Message, whose System says what changed: members
	// added, removed or left, devices added or removed, the name or the
	// topic; see Client.History). User and Device made the change.
	EventSystem
	// EventBadCommit: a commit the server accepted in Conversation (entry
	// Seq), sent by Device of User, could not be used by this device;
	// Err, a *BadCommitError, says why and what this device did
	// (docs/protocol.md, "Recovery from bad commits"): it could not
	// process the commit and rejoined the conversation by external
	// commit (messages sent in between are lost to it), or could not
	// rejoin (the conversation is then marked unrecoverable:
	// EventConversationUnsafe follows); or the commit's GroupInfo was
	// bad and this device replaced it. When this device only found that
	// it had missed a commit, User and Device are empty. UIs should show
	// who sent it.
	EventBadCommit
	// EventDeviceRevoked: this device removed Device of User from
	// Conversation because User revoked it (its revocation, signed by
	// User's identity key, verified) or the server's administrator
	// disabled it (on the server's word); Reason says which. The other
	// members see EventMemberLeft.
	EventDeviceRevoked
	// EventTyping: Device of User started (Typing) or stopped typing in
	// Conversation. It comes from an ephemeral message: never stored, not
	// in the history, lost while this device is offline; a UI shows it
	// for a few seconds at most (see Client.SendTyping). Not reported when
	// Config.DisableTyping is set.
	EventTyping
	// EventExpired: Message expired under its conversation's
	// disappearing-message timer; this device erased its text,
	// reactions and attachment key, and Message is the tombstone
	// (Expired set, no content). A UI removes it from view.
	EventExpired
)

var eventNames = map[EventKind]string{
	EventMessage: "message", EventEdited: "edited", EventDeleted: "deleted",
	EventReaction: "reaction", EventRead: "read", EventDelivered: "delivered",
	EventMemberJoined: "member_joined", EventMemberLeft: "member_left",
	EventConversationJoined: "conversation_joined", EventConversationLeft: "conversation_left",
	EventConversationChanged: "conversation_changed", EventIdentityChanged: "identity_changed",
	EventDeviceRejected: "device_rejected", EventConnection: "connection", EventError: "error",
	EventOverflow: "overflow", EventConversationUnsafe: "conversation_unsafe",
	EventStateRestored: "state_restored", EventSystem: "system", EventBadCommit: "bad_commit",
	EventDeviceRevoked: "device_revoked", EventTyping: "typing",
	EventExpired: "expired",
}

// String names the kind ("message", "identity_changed", …).
func (k EventKind) String() string {
	if s, ok := eventNames[k]; ok {
		return s
	}
	return "unknown"
}

// MarshalText encodes the kind by name.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ConnState is the state of the connection to the server.
type ConnState int

// The connection states.
const (
	Disconnected ConnState = iota
	Connecting
	Connected
)

// String names the state.
func (s ConnState) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	}
	return "disconnected"
}

// MarshalText encodes the state by name.
func (s ConnState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Event is something a UI should show. Which fields are set depends on
// Kind.
type Event struct {
	Kind         EventKind               `json:"kind"`
	Time         time.Time               `json:"time"`
	Conversation protocol.ConversationID `json:"conversation,omitempty"`
	Message      *Message                `json:"message,omitempty"`
	User         string                  `json:"user,omitempty"`
	Device       protocol.DeviceID       `json:"device,omitempty"`
	Connection   ConnState               `json:"connection,omitempty"`
	Err          error                   `json:"-"`
	// Error is Err's text, for JSON.
	Error string `json:"error,omitempty"`
	// Dropped is the number of events an EventOverflow stands for.
	Dropped int `json:"dropped,omitempty"`
	// Seq is the server's entry an EventBadCommit is about.
	Seq uint64 `json:"seq,omitempty"`
	// Reason says why an EventDeviceRevoked removed the device.
	Reason string `json:"reason,omitempty"`
	// Typing is true when an EventTyping says that User started typing,
	// false when User stopped.
	Typing bool `json:"typing,omitempty"`
	// Muted is set on the events of a conversation muted on this device
	// (Client.SetMuted). A notifier stays quiet about them, except for a
	// message that mentions this user (Message.MentionsMe).
	Muted bool `json:"muted,omitempty"`
}

// DefaultEventBuffer is the default of Config.EventBuffer.
const DefaultEventBuffer = 1024

// eventQueue is a bounded queue feeding a channel, so that processing
// never blocks on a slow UI (see Client.Events for the overflow policy).
type eventQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	q      []Event
	limit  int
	conn   ConnState // the last connection state pushed
	closed bool
	ch     chan Event
	// observe, when set, sees (and may complete) every event before it
	// is queued; set before the first push.
	observe func(*Event)
}

func newEventQueue(limit int) *eventQueue {
	e := &eventQueue{ch: make(chan Event), limit: limit}
	e.cond = sync.NewCond(&e.mu)
	go e.pump()
	return e
}

// push queues ev. When limit events wait already, they and ev are
// replaced by one EventOverflow; while that waits for the reader, further
// events are counted into it.
func (e *eventQueue) push(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Err != nil {
		ev.Error = ev.Err.Error()
	}
	if e.observe != nil {
		e.observe(&ev)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if ev.Kind == EventConnection {
		e.conn = ev.Connection
	}
	switch {
	case len(e.q) > 0 && e.q[0].Kind == EventOverflow:
		o := &e.q[0]
		o.Dropped++
		o.Time, o.Connection = ev.Time, e.conn
		return
	case len(e.q) >= e.limit:
		n := len(e.q) + 1
		clear(e.q) // let the dropped messages be collected
		e.q = append(e.q[:0], Event{Kind: EventOverflow, Time: ev.Time, Connection: e.conn, Dropped: n})
		return
	}
	e.q = append(e.q, ev)
	e.cond.Signal()
}

func (e *eventQueue) pump() {
	for {
		e.mu.Lock()
		for len(e.q) == 0 && !e.closed {
			e.cond.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			close(e.ch)
			return
		}
		ev := e.q[0]
		e.q[0] = Event{}
		e.q = e.q[1:]
		if len(e.q) == 0 {
			e.q = nil // do not keep a large backing array
		}
		e.mu.Unlock()
		e.ch <- ev
	}
}

func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	e.q = nil
	e.cond.Signal()
	e.mu.Unlock()
	// Unblock a pump waiting on a reader that is gone.
	go func() {
		for range e.ch {
		}
	}()
}

// Events returns the stream of events, in the order they happened. It is
// closed by Close.
//
// Events wait in a queue of Config.EventBuffer events (DefaultEventBuffer
// by default) until read, so that processing never waits for the UI. The
// store, not the stream, is the record: every event reports a change
// already committed to the store. If the reader falls behind by a full
// queue, the queued events are dropped and one EventOverflow (with the
// number dropped) takes their place; events that happen before the reader
// receives it are counted into it too. On EventOverflow a UI reloads what
// it shows from Conversations, Messages and Members; events after it may
// repeat changes the reload already showed, so apply them by message id.
// A program that never calls Events holds at most one queue of events.
// Events still queued at Close, or at a crash, are lost; Client.Unseen
// returns the messages among them on the next start (see MarkShown).
func (c *Client) Events() <-chan Event { return c.ev.ch }
