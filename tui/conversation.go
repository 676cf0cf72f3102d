package tui

import (
	"context"
	"fmt"
	"slices"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// convState is the open conversation.
type convState struct {
	id      protocol.ConversationID
	cv      *client.Conversation
	msgs    []*client.Message
	members []client.Member
	loaded  bool
	atStart bool // the whole history is loaded
	loading bool // older entries are being loaded
	scroll  int  // lines scrolled up from the bottom
	sel     int  // selected entry, -1 for none
	// policy is the conversation's roles (nil: none), once policyKnown.
	policy      *protocol.Policy
	policyKnown bool
	cache       entryCache
	// touched is Model.changes when an event last changed the entries;
	// asked, when the history was last asked for.
	touched, asked uint64
}

// openConversation shows conversation id and loads its history and
// members; it marks the conversation read.
func (m *Model) openConversation(id protocol.ConversationID) tea.Cmd {
	return m.openConversationWith(id, m.loadHistory(id, m.page, false))
}

// openConversationWith is openConversation with the command that loads
// the history.
func (m *Model) openConversationWith(id protocol.ConversationID, history tea.Cmd) tea.Cmd {
	stop := m.stopTyping() // typing was for the conversation left
	m.conv = &convState{id: id, sel: -1}
	if cv := m.findConv(id); cv != nil {
		c := *cv
		m.conv.cv = &c
	}
	m.replyTo, m.editing, m.react, m.confirm = nil, nil, nil, nil
	if m.overlay != overlayHelp {
		m.overlay = overlayNone
	}
	if cv := m.findConv(id); cv != nil {
		cv.Unread = 0
	}
	m.selectConv(id)
	m.setFocus(focusComposer)
	b, ctx := m.b, m.ctx
	markRead := func() tea.Msg {
		if err := b.MarkRead(ctx, id); err != nil {
			return doneMsg{err: fmt.Errorf("mark read: %w", err)}
		}
		return nil
	}
	return tea.Batch(stop, history, m.loadMembers(id), m.loadConversation(id), markRead)
}

// applyHistory shows loaded history entries.
func (m *Model) applyHistory(msg historyMsg) tea.Cmd {
	c := m.conv
	if c == nil || c.id != msg.conv {
		return nil
	}
	if msg.err != nil {
		c.loading = false
		m.setError("history: %v", msg.err)
		return nil
	}
	if m.staleHistory(msg) {
		if c.asked < c.touched {
			return m.loadHistory(c.id, max(len(c.msgs), len(msg.msgs)), msg.older)
		}
		return nil
	}
	c.loading = false
	if msg.older && len(msg.msgs) <= len(c.msgs) {
		c.atStart = true
	}
	var selID content.MessageID
	if c.sel >= 0 && c.sel < len(c.msgs) {
		selID = c.msgs[c.sel].ID
	}
	c.msgs, c.loaded = msg.msgs, true
	if len(msg.msgs) < m.page {
		c.atStart = true
	}
	for _, e := range c.msgs {
		m.observe(e)
	}
	if c.sel >= 0 {
		c.sel = max(c.indexOf(selID), 0)
	}
	return nil
}

// staleHistory says whether msg was asked for before a change to the
// open conversation's entries that it may lack.
func (m *Model) staleHistory(msg historyMsg) bool {
	c := m.conv
	return c != nil && c.id == msg.conv && msg.err == nil && msg.at < c.touched
}

// applyMembers keeps the members of the open conversation.
func (m *Model) applyMembers(msg membersMsg) {
	if msg.err != nil {
		m.setError("members: %v", msg.err)
		return
	}
	if m.conv != nil && m.conv.id == msg.conv {
		m.conv.members = msg.members
	}
}

// applySent shows a message this device sent.
func (m *Model) applySent(msg sentMsg) tea.Cmd {
	if msg.msg != nil {
		m.observe(msg.msg)
		m.upsert(msg.msg)
		m.touchList(msg.msg, false)
	}
	switch {
	case msg.err != nil && msg.msg != nil:
		m.setError("queued: %v", msg.err)
	case msg.err != nil:
		m.setError("send: %v", msg.err)
	}
	return nil
}

// indexOf returns the index of the entry with id, or -1.
func (c *convState) indexOf(id content.MessageID) int {
	if id.IsZero() {
		return -1
	}
	return slices.IndexFunc(c.msgs, func(e *client.Message) bool { return e.ID == id })
}

// find returns the entry with id, or nil.
func (c *convState) find(id content.MessageID) *client.Message {
	if i := c.indexOf(id); i >= 0 {
		return c.msgs[i]
	}
	return nil
}

// upsert puts an entry into the open conversation: it replaces the one
// with its id, or comes last.
func (m *Model) upsert(e *client.Message) {
	c := m.conv
	if c == nil || c.id != e.Conversation {
		return
	}
	c.touched = m.touch()
	if !c.loaded {
		return // the history asked for after this event will hold it
	}
	if i := c.indexOf(e.ID); i >= 0 && e.System == nil {
		c.msgs[i] = e
		c.forgetQuotes(e.ID)
		return
	}
	if e.System != nil && slices.ContainsFunc(c.msgs, func(x *client.Message) bool { return x.Seq == e.Seq && x.System != nil }) {
		return
	}
	c.msgs = append(c.msgs, e)
	c.forgetQuotes(e.ID) // replies that arrived first quote it now
}

// selected returns the selected entry, or nil.
func (m *Model) selected() *client.Message {
	c := m.conv
	if c == nil || c.sel < 0 || c.sel >= len(c.msgs) {
		return nil
	}
	return c.msgs[c.sel]
}

// startSelect selects the latest message.
func (m *Model) startSelect() {
	if m.conv == nil || len(m.conv.msgs) == 0 {
		return
	}
	m.conv.sel = len(m.conv.msgs) - 1
	m.conv.scroll = 0
	m.status = "" // the status line shows selectHint while a message is selected
}

// selectHint lists the keys that act on the selected message.
const selectHint = "r reply · e edit · d delete · + react · s save file · esc done"

// handleSelectKey handles a key while a message is selected.
func (m *Model) handleSelectKey(k tea.KeyPressMsg) tea.Cmd {
	c := m.conv
	switch k.String() {
	case "up", "k", "ctrl+up":
		if c.sel > 0 {
			c.sel--
		} else {
			return m.loadOlder()
		}
	case "down", "j", "ctrl+down":
		if c.sel++; c.sel >= len(c.msgs) {
			c.sel = -1
		}
	case "esc", "enter":
		c.sel = -1
		m.status = ""
	case "r":
		return m.startReply()
	case "e":
		return m.startEdit()
	case "d":
		return m.askDelete()
	case "+":
		return m.startReact()
	case "s":
		return m.saveAttachment(".")
	case "v":
		if e := m.selected(); e != nil && e.Sender != m.self {
			return m.openVerify(e.Sender)
		}
	case "?":
		m.overlay = overlayHelp
	default:
		c.sel = -1 // typing ends the selection
		m.status = ""
		return m.updateComposer(k)
	}
	return nil
}

// usable returns the selected message when it can be answered or
// changed (not a system line, not deleted).
func (m *Model) usable() *client.Message {
	e := m.selected()
	if e == nil || e.System != nil || e.Deleted {
		m.setError("select a message first")
		return nil
	}
	return e
}

func (m *Model) startReply() tea.Cmd {
	if e := m.usable(); e != nil {
		m.replyTo, m.editing = e, nil
		m.conv.sel = -1
		m.status = ""
	}
	return nil
}

func (m *Model) startEdit() tea.Cmd {
	e := m.usable()
	if e == nil {
		return nil
	}
	if e.Sender != m.self || e.Attachment != nil {
		m.setError("only your own text messages can be edited")
		return nil
	}
	m.editing, m.replyTo = e, nil
	m.composer.SetValue(e.Text)
	m.conv.sel = -1
	m.status = ""
	return nil
}

func (m *Model) askDelete() tea.Cmd {
	e := m.usable()
	if e == nil {
		return nil
	}
	if e.Sender != m.self {
		m.setError("only your own messages can be deleted")
		return nil
	}
	conv, id := m.conv.id, e.ID
	m.confirm = &confirmState{prompt: "Delete this message for everyone? (y/n)", yes: m.call("message deleted", false, func(ctx context.Context) error {
		return m.b.Delete(ctx, conv, id)
	})}
	return nil
}

// loadOlder loads older history, unless all of it is loaded.
func (m *Model) loadOlder() tea.Cmd {
	c := m.conv
	if c == nil || c.atStart || c.loading || !c.loaded {
		return nil
	}
	c.loading = true
	return m.loadHistory(c.id, len(c.msgs)+m.page, true)
}

// scrollBy scrolls the history by d lines (positive: up, to older ones);
// at the top it loads older entries.
func (m *Model) scrollBy(d int) tea.Cmd {
	c := m.conv
	if c == nil {
		return nil
	}
	_, msgH := m.convAreas()
	total := len(m.historyLines(m.convWidth()).lines)
	top := max(total-msgH, 0)
	c.scroll = min(max(c.scroll+d, 0), top)
	if c.scroll >= top && d > 0 {
		return m.loadOlder()
	}
	return nil
}
