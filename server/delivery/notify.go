package delivery

import (
	"sync"

	"github.com/parley-chat/parley/server/store"
)

// Topic names what an Event is about: a conversation's log, or one
// device (its inbox and its memberships). Exactly one field is set.
type Topic struct {
	Conversation store.ConversationID
	Device       store.DeviceID
}

// Typing is an ephemeral typing signal.
type Typing struct {
	Device store.DeviceID // Device is the typing device.
	Typing bool           // Typing is false when the device stopped.
}

// Ephemeral is an ephemeral application message (an encrypted typing
// indicator): relayed to a conversation's connected members, never stored.
type Ephemeral struct {
	Device  store.DeviceID // Device is the sending device.
	Message []byte         // Message is the MLSMessage-framed PrivateMessage; receivers must not modify it.
}

// Event is a notification. Without Typing or Ephemeral it is a wake-up:
// "the topic has new entries" (or, for a device, "your inbox or
// memberships changed"); receivers read the store to learn what. With
// Typing or Ephemeral (at most one of them) it is an ephemeral signal for
// the conversation's connected members.
type Event struct {
	Topic     Topic
	Typing    *Typing
	Ephemeral *Ephemeral
	// Head, when not zero, is a conversation's last seq that the
	// publisher committed: a receiver has everything new once it read up
	// to Head. Zero means unknown (read until the store has no more).
	Head uint64
}

// Subscriber receives events. Notify must not block: it is called from
// the publisher's goroutine.
type Subscriber interface {
	Notify(Event)
}

// Notifier carries events from publishers (the writer, commits, typing)
// to subscribers (connections). Delivery never depends on an event
// arriving: connections read the store from their cursors, so a notifier
// may coalesce or, after a reconnect to a broker, lose wake-ups without
// losing entries. The in-process Hub is the default; a NATS notifier can
// replace it across nodes.
type Notifier interface {
	// Publish sends an event to the subscribers of its topic.
	Publish(Event)
	// Subscribe registers s for the topic until the returned function is
	// called.
	Subscribe(t Topic, s Subscriber) (unsubscribe func())
}

// Hub is the in-process Notifier.
type Hub struct {
	mu   sync.RWMutex
	subs map[Topic]map[Subscriber]struct{}
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{subs: make(map[Topic]map[Subscriber]struct{})} }

// Publish calls Notify of every subscriber of the event's topic.
func (h *Hub) Publish(e Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs[e.Topic] {
		s.Notify(e)
	}
}

// Subscribe registers s for t.
func (h *Hub) Subscribe(t Topic, s Subscriber) func() {
	h.mu.Lock()
	m := h.subs[t]
	if m == nil {
		m = make(map[Subscriber]struct{}, 1)
		h.subs[t] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if m := h.subs[t]; m != nil {
				delete(m, s)
				if len(m) == 0 {
					delete(h.subs, t)
				}
			}
			h.mu.Unlock()
		})
	}
}
