package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// Typing indicators: while the user writes a message in the open
// conversation the others learn it (at most every typingEvery), and that
// they stopped when the composer is emptied (but by sending a message,
// which tells them itself) or they open another conversation; the
// others' typing shows above the composer for typingShown after their
// last indicator, until they stop or their message arrives. Sending
// runs in a command and its errors are ignored: indicators are best
// effort, and the daemon sends nothing when they are off
// (PARLEY_TYPING=off).
const (
	typingEvery = 3 * time.Second
	typingShown = 5 * time.Second
)

// typingState is this user's typing and what others type.
type typingState struct {
	active bool                    // an indicator "typing" was sent and no "stopped" since
	conv   protocol.ConversationID // where it was sent
	sentAt time.Time

	// others holds, per conversation, until when each user is shown as
	// typing.
	others map[protocol.ConversationID]map[string]time.Time
}

// typingExpiredMsg says that a typing indicator may have run out.
type typingExpiredMsg struct{}

// sendTyping returns the command that sends an indicator.
func (m *Model) sendTyping(conv protocol.ConversationID, typing bool) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		_ = b.SendTyping(ctx, conv, typing) // best effort
		return nil
	}
}

// composerTyped sends an indicator after the composer's text changed from
// before: "typing" when there is text (not a command) and none was sent
// in this conversation for typingEvery, "stopped" when it became empty.
func (m *Model) composerTyped(before string) tea.Cmd {
	text := m.composer.Value()
	if text == before {
		return nil
	}
	command := strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//")
	if m.conv == nil || strings.TrimSpace(text) == "" || command {
		return m.stopTyping()
	}
	now := m.now()
	t := &m.typing
	if t.active && t.conv == m.conv.id && now.Sub(t.sentAt) < typingEvery {
		return nil
	}
	var stop tea.Cmd
	if t.active && t.conv != m.conv.id {
		stop = m.stopTyping()
	}
	t.active, t.conv, t.sentAt = true, m.conv.id, now
	return tea.Batch(stop, m.sendTyping(t.conv, true))
}

// stopTyping sends "stopped" if "typing" was sent.
func (m *Model) stopTyping() tea.Cmd {
	if !m.typing.active {
		return nil
	}
	m.typing.active = false
	return m.sendTyping(m.typing.conv, false)
}

// sawTyping records another user's indicator.
func (m *Model) sawTyping(ev client.Event) tea.Cmd {
	if ev.User == m.self || ev.User == "" {
		return nil
	}
	if !ev.Typing {
		m.clearTyper(ev.Conversation, ev.User)
		return nil
	}
	t := &m.typing
	if t.others == nil {
		t.others = map[protocol.ConversationID]map[string]time.Time{}
	}
	if t.others[ev.Conversation] == nil {
		t.others[ev.Conversation] = map[string]time.Time{}
	}
	t.others[ev.Conversation][ev.User] = m.now().Add(typingShown)
	return m.tick(typingShown, func(time.Time) tea.Msg { return typingExpiredMsg{} })
}

// clearTyper stops showing user as typing in conv.
func (m *Model) clearTyper(conv protocol.ConversationID, user string) {
	if us := m.typing.others[conv]; us != nil {
		delete(us, user)
		if len(us) == 0 {
			delete(m.typing.others, conv)
		}
	}
}

// expireTyping forgets the indicators that ran out.
func (m *Model) expireTyping() {
	now := m.now()
	for conv, us := range m.typing.others {
		for u, until := range us {
			if !now.Before(until) {
				m.clearTyper(conv, u)
			}
		}
	}
}

// typingLine says who types in the open conversation, or "".
func (m *Model) typingLine() string {
	if m.conv == nil {
		return ""
	}
	now := m.now()
	var users []string
	for u, until := range m.typing.others[m.conv.id] {
		if now.Before(until) {
			users = append(users, printable(u))
		}
	}
	slices.Sort(users)
	switch len(users) {
	case 0:
		return ""
	case 1:
		return users[0] + " is typing…"
	case 2:
		return users[0] + " and " + users[1] + " are typing…"
	}
	return fmt.Sprintf("%d people are typing…", len(users))
}

// tickFunc is tea.Tick (tests replace it).
type tickFunc func(time.Duration, func(time.Time) tea.Msg) tea.Cmd
