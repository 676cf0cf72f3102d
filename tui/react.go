package tui

import (
	"context"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
)

// quickReactions are offered by number in the reaction picker.
var quickReactions = []string{"👍", "❤️", "😂", "😮", "😢", "🙏"}

// reactState is the reaction picker for a message: a number picks a
// quick reaction, or an emoji typed and Enter.
type reactState struct {
	target *client.Message
	input  string
}

func (m *Model) startReact() tea.Cmd {
	if e := m.usable(); e != nil {
		m.react = &reactState{target: e}
	}
	return nil
}

func (m *Model) reactPrompt() string {
	var b strings.Builder
	b.WriteString("React:")
	for i, r := range quickReactions {
		b.WriteString(" " + strconv.Itoa(i+1) + " " + r)
	}
	b.WriteString(" · or type one: " + m.react.input + "▏")
	return b.String()
}

// handleReactKey picks a reaction, or collects a typed one.
func (m *Model) handleReactKey(k tea.KeyPressMsg) tea.Cmd {
	r := m.react
	switch s := k.String(); {
	case s == "esc":
		m.react = nil
	case s == "enter":
		if strings.TrimSpace(r.input) == "" {
			return nil
		}
		return m.sendReaction(strings.TrimSpace(r.input))
	case s == "backspace":
		if rs := []rune(r.input); len(rs) > 0 {
			r.input = string(rs[:len(rs)-1])
		}
	case r.input == "" && len(s) == 1 && s[0] >= '1' && int(s[0]-'1') < len(quickReactions):
		return m.sendReaction(quickReactions[s[0]-'1'])
	default:
		r.input += k.Text
	}
	return nil
}

// sendReaction reacts to the picked message; choosing this user's
// reaction again takes it back.
func (m *Model) sendReaction(emoji string) tea.Cmd {
	t := m.react.target
	m.react = nil
	if m.conv != nil {
		m.conv.sel = -1
	}
	remove := false
	for _, r := range t.Reactions {
		if r.User == m.self && r.Emoji == emoji {
			remove = true
		}
	}
	conv, id := t.Conversation, t.ID
	return m.call("", true, func(ctx context.Context) error {
		return wrapErr("react", m.b.React(ctx, conv, id, emoji, remove))
	})
}
