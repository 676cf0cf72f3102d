package tui

import (
	"context"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/parley-chat/parley/client"
)

// composerHeight is the number of text lines of the composer.
const composerHeight = 3

// newComposer returns the message input: Enter sends (the model handles
// it), Alt-Enter or Ctrl-J starts a new line; no limit on pasted text
// beyond what a message may hold.
func newComposer(plain bool) textarea.Model {
	ta := textarea.New()
	ta.Prompt = "> "
	ta.Placeholder = "Message · Enter send · Alt-Enter newline · /help"
	ta.ShowLineNumbers = false
	ta.CharLimit = 0
	ta.MaxHeight = 0
	ta.MaxWidth = 0
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"))
	s := textarea.DefaultDarkStyles()
	if plain {
		none := lipgloss.NewStyle()
		for _, st := range []*textarea.StyleState{&s.Focused, &s.Blurred} {
			*st = textarea.StyleState{Base: none, Text: none, LineNumber: none, CursorLineNumber: none,
				CursorLine: none, EndOfBuffer: none, Placeholder: none, Prompt: none}
		}
		s.Cursor.Color = nil
	}
	s.Cursor.Blink = false // no timer: the cursor shows where typing goes
	ta.SetStyles(s)
	ta.SetHeight(composerHeight)
	return ta
}

// setFocus gives the keys to the list or the composer.
func (m *Model) setFocus(f focus) {
	m.focus = f
	if f == focusComposer {
		m.composer.Focus()
	} else {
		m.composer.Blur()
	}
}

// updateComposer passes a message to the composer.
func (m *Model) updateComposer(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	m.composer, cmd = m.composer.Update(msg)
	return cmd
}

// handleComposerKey handles a key while the composer has the focus, and
// tells the others when the user starts or stops typing.
func (m *Model) handleComposerKey(k tea.KeyPressMsg) tea.Cmd {
	before := m.composer.Value()
	cmd := m.composerKey(k)
	return tea.Batch(cmd, m.composerTyped(before))
}

// channelMark marks a channel in the list.
const channelMark = "# "

// readOnlyLine replaces the composer where this user may not post.
const readOnlyLine = "only admins post in this channel · ↑ select a message to react · / command"

// readOnly reports whether the open conversation is a channel where this
// user may not post: the composer takes only commands ("/...").
func (m *Model) readOnly() bool {
	cv := m.convView()
	return cv != nil && cv.Channel && !cv.Admin && !cv.Left
}

// convView returns the open conversation's view, nil when none.
func (m *Model) convView() *client.Conversation {
	if m.conv == nil {
		return nil
	}
	return m.conv.cv
}

// composerKey is handleComposerKey without the typing indicators.
func (m *Model) composerKey(k tea.KeyPressMsg) tea.Cmd {
	empty := m.composer.Value() == ""
	if m.readOnly() && empty && k.Text != "" && k.Text != "/" {
		return nil // only a command may be typed
	}
	switch k.String() {
	case "enter":
		return m.submit()
	case "esc":
		return m.cancelCompose()
	case "tab":
		m.setFocus(focusList)
		return nil
	case "ctrl+up":
		m.startSelect()
		return nil
	case "pgup":
		return m.scrollBy(m.pageLines())
	case "pgdown":
		return m.scrollBy(-m.pageLines())
	case "f1":
		m.overlay = overlayHelp
		return nil
	}
	if empty && k.String() == "up" {
		m.startSelect()
		return nil
	}
	return m.updateComposer(k)
}

// pageLines is how far PgUp and PgDn scroll.
func (m *Model) pageLines() int {
	_, h := m.convAreas()
	return max(h-2, 1)
}

// cancelCompose ends a reply or an edit; without one it goes back to the
// list.
func (m *Model) cancelCompose() tea.Cmd {
	switch {
	case m.editing != nil:
		m.editing = nil
		m.composer.Reset()
	case m.replyTo != nil:
		m.replyTo = nil
	default:
		m.setFocus(focusList)
	}
	return nil
}

// submit sends the composer's text, applies it as an edit, or runs it
// as a command (a leading "//" sends a text starting with "/").
func (m *Model) submit() tea.Cmd {
	text := m.composer.Value()
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
		m.composer.Reset()
		return m.runCommand(text)
	}
	text = strings.TrimPrefix(text, "/")
	if m.conv == nil {
		m.setError("open a conversation first (Tab, then Enter)")
		return nil
	}
	if m.readOnly() {
		m.setError("only admins post in this channel")
		return nil
	}
	m.composer.Reset()
	conv := m.conv.id
	if m.editing == nil {
		// The message tells the others that the user stopped typing
		// (they clear the indicator on a message of its sender): no
		// "stopped" for the emptied composer. An edit does not.
		m.typing.active = false
	}
	if e := m.editing; e != nil {
		m.editing = nil
		return m.call("message edited", true, func(ctx context.Context) error {
			return m.b.Edit(ctx, conv, e.ID, text)
		})
	}
	opts := m.takeReply()
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		msg, err := b.Send(ctx, conv, text, opts)
		return sentMsg{msg, err}
	}
}

// composerLines renders the line above the composer (what a reply
// answers, or that an edit is under way) and the composer.
func (m *Model) composerLines(w int) []string {
	top := m.st.separator.Render(strings.Repeat("─", max(w, 0)))
	switch {
	case m.editing != nil:
		top = m.st.dim.Render("editing: " + m.summary(m.editing) + " · esc cancel")
	case m.replyTo != nil:
		top = m.st.quote.Render("replying to " + oneLine(m.replyTo.Sender) + ": " + m.summary(m.replyTo) + " · esc cancel")
	case m.typingLine() != "":
		top = m.st.dim.Render(fit(m.typingLine(), w))
	}
	lines := []string{top}
	if m.readOnly() && m.composer.Value() == "" {
		lines = append(lines, m.st.dim.Render(fit(readOnlyLine, w)))
		for len(lines) < 1+composerHeight {
			lines = append(lines, "")
		}
		return lines
	}
	return append(lines, strings.Split(m.composer.View(), "\n")...)
}

// takeReply returns the options of the next message: a reply to the
// message being answered, which it then forgets.
func (m *Model) takeReply() client.SendOptions {
	var opts client.SendOptions
	if m.replyTo != nil {
		opts.ReplyTo = m.replyTo.ID
		m.replyTo = nil
	}
	return opts
}
