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
	// User; sending to conversations with User is blocked until
	// Client.AcknowledgeIdentity. UIs must show this loudly.
	EventIdentityChanged
	// EventDeviceRejected: a device (Device of User) whose certificate is
	// not signed by User's identity key was refused (Err).
	EventDeviceRejected
	// EventConnection: the connection state changed to Connection.
	EventConnection
	// EventError: processing failed (Err), for example an entry that
	// could not be decrypted.
	EventError
)

var eventNames = map[EventKind]string{
	EventMessage: "message", EventEdited: "edited", EventDeleted: "deleted",
	EventReaction: "reaction", EventRead: "read", EventDelivered: "delivered",
	EventMemberJoined: "member_joined", EventMemberLeft: "member_left",
	EventConversationJoined: "conversation_joined", EventConversationLeft: "conversation_left",
	EventConversationChanged: "conversation_changed", EventIdentityChanged: "identity_changed",
	EventDeviceRejected: "device_rejected", EventConnection: "connection", EventError: "error",
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
}

// eventQueue is an unbounded queue feeding a channel, so that processing
// never blocks on a slow UI.
type eventQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	q      []Event
	closed bool
	ch     chan Event
}

func newEventQueue() *eventQueue {
	e := &eventQueue{ch: make(chan Event)}
	e.cond = sync.NewCond(&e.mu)
	go e.pump()
	return e
}

func (e *eventQueue) push(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Err != nil {
		ev.Error = ev.Err.Error()
	}
	e.mu.Lock()
	if !e.closed {
		e.q = append(e.q, ev)
		e.cond.Signal()
	}
	e.mu.Unlock()
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
		e.q = e.q[1:]
		e.mu.Unlock()
		e.ch <- ev
	}
}

func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	e.cond.Signal()
	e.mu.Unlock()
	// Unblock a pump waiting on a reader that is gone.
	go func() {
		for range e.ch {
		}
	}()
}

// Events returns the stream of events, in the order they happened. It is
// closed by Close. Events are queued without bound until read: a UI should
// read them continuously (or never call Events).
func (c *Client) Events() <-chan Event { return c.ev.ch }
