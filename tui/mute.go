package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// mutedMark marks a muted conversation in the list (two cells wide).
const mutedMark = "🔕"

func cmdMute(m *Model, _ []string, _ string) tea.Cmd {
	return m.setMuted(true)
}

func cmdUnmute(m *Model, _ []string, _ string) tea.Cmd {
	return m.setMuted(false)
}

// setMuted mutes or unmutes the open conversation on this device, then
// reloads the list that shows it.
func (m *Model) setMuted(muted bool) tea.Cmd {
	text := "unmuted"
	if muted {
		text = "muted: only messages that mention you stand out"
	}
	return m.convCall(text, func(ctx context.Context, conv protocol.ConversationID) error {
		op := "unmute"
		if muted {
			op = "mute"
		}
		return wrapErr(op, m.b.SetMuted(ctx, conv, muted))
	})
}

// unreadLoud says whether a conversation's unread count stands out: it
// does unless the conversation is muted, where only an unread latest
// message that mentions this user does.
func unreadLoud(cv *client.Conversation) bool {
	if cv.Unread == 0 {
		return false
	}
	return !cv.Muted || mentionUnread(cv)
}

// mentionUnread says whether the unread latest message of a conversation
// mentions this user.
func mentionUnread(cv *client.Conversation) bool {
	return cv.Unread > 0 && cv.Last != nil && cv.Last.MentionsMe && !cv.Last.Deleted
}

// unreadStyle is the style of a conversation's unread count: loud, or
// dim in a muted conversation.
func (m *Model) unreadStyle(cv *client.Conversation) lipgloss.Style {
	switch {
	case mentionUnread(cv):
		return m.st.mention
	case unreadLoud(cv):
		return m.st.unread
	}
	return m.st.dim
}
